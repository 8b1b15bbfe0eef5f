"""App configuration for the outbox."""

from django.apps import AppConfig


class OutboxAppConfig(AppConfig):
    name = "outbox_app"
    verbose_name = "Outbox"

    def ready(self) -> None:
        from outbox_app import metrics  # noqa: F401  (registers the outbox metrics with Prometheus)
