"""The service's URLs with the query endpoints bare: the same views without authentication, scopes or rate limit.

The command endpoints are the service's own; bench/bare_wsgi.py has them send through the bare mediator.
"""

from typing import Any

from django.urls import URLPattern, include, path

from config.urls import urlpatterns as service_urlpatterns
from queries_app.api.urls import urlpatterns as query_urlpatterns


def bare(pattern: Any) -> URLPattern:
    view = pattern.callback.view_class
    unguarded: Any = type(
        f"Bare{view.__name__}",
        (view,),
        {"authentication_classes": [], "permission_classes": [], "throttle_classes": []},
    )
    return path(str(pattern.pattern), unguarded.as_view(), name=pattern.name)


urlpatterns = [path("api/", include([bare(pattern) for pattern in query_urlpatterns])), *service_urlpatterns]
