"""Top-level URLs: commands, queries, the event feed and webhooks, schema and docs, admin, health."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api_common.problems import json_problem_view, server_error
from config.health import healthz, livez, readyz
from config.metrics import metrics
from webhooks_app.api.views import asyncapi_document

urlpatterns = [
    path("api/commands/", include("commands_app.api.urls")),
    path("api/", include("queries_app.api.urls")),
    path("api/", include("webhooks_app.api.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/asyncapi.yaml", asyncapi_document, name="asyncapi"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
    path("livez", livez, name="livez"),
    path("readyz", readyz, name="readyz"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]

# Django's own answers outside DRF (a query string of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields is a 400) are
# problem documents too, never its HTML pages.
handler400 = json_problem_view(400, "MALFORMED_REQUEST", "The request could not be read.")
handler403 = json_problem_view(403, "FORBIDDEN", "Forbidden.")
handler404 = json_problem_view(404, "NOT_FOUND", "No such resource.")
handler500 = server_error
