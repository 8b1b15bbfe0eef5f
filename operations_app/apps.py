"""App configuration for what operators watch: beat's heartbeat, the status document, the in-process scheduler."""

from django.apps import AppConfig


class OperationsAppConfig(AppConfig):
    name = "operations_app"
    verbose_name = "Operations"

    def ready(self) -> None:
        from operations_app import metrics  # noqa: F401  (registers beat's heartbeat with Prometheus)
