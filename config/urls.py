"""Top-level URLs: commands, queries, schema and docs, admin, health."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api_common.problems import json_problem_view, server_error
from config.health import healthz, readyz
from config.metrics import metrics

urlpatterns = [
    path("api/commands/", include("commands_app.api.urls")),
    path("api/", include("queries_app.api.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
]

handler404 = json_problem_view(404, "NOT_FOUND", "No such resource.")
handler500 = server_error
