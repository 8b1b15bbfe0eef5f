"""App configuration for the webhooks: subscribes the fan-out to every event type in the log's catalog."""

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

FAN_OUT_TASK = "webhooks_app.fan_out_events"


class WebhooksAppConfig(AppConfig):
    name = "webhooks_app"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from outbox_app import catalog, registry
        from webhooks_app import metrics, tasks  # noqa: F401  (metrics registers its collector; tasks for eager mode)

        event_types = catalog.names()
        if not event_types:
            raise ImproperlyConfigured(
                "No event type is declared in outbox_app.catalog: list webhooks_app after the apps that declare "
                "their events (commands_app) in INSTALLED_APPS."
            )
        # Every type: which endpoint wants which is the fan-out's business, and changes without a restart.
        for event_type in event_types:
            registry.subscribe(event_type, FAN_OUT_TASK)
