"""App configuration for the shared API layer."""

from django.apps import AppConfig


class ApiCommonConfig(AppConfig):
    name = "api_common"
    verbose_name = "API clients"

    def ready(self) -> None:
        # Imported for their side effects: forget cached clients when one changes; register the token scheme
        # with drf-spectacular.
        from api_common import authentication, schema  # noqa: F401
