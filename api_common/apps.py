"""App configuration for the shared API layer."""

from django.apps import AppConfig


class ApiCommonConfig(AppConfig):
    name = "api_common"
    verbose_name = "API clients"

    def ready(self) -> None:
        from api_common import schema  # noqa: F401  (registers the token scheme with drf-spectacular)
