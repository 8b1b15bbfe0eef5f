"""App configuration for the sagas: subscribes the fulfilment saga to the order events that start and stop it."""

from django.apps import AppConfig

HANDLE_ORDER_EVENTS_TASK = "sagas_app.handle_order_events"


class SagasAppConfig(AppConfig):
    name = "sagas_app"
    verbose_name = "Sagas"

    def ready(self) -> None:
        from outbox_app import registry
        from sagas_app import checks, metrics, tasks  # noqa: F401  (registers checks, the collector and the tasks)

        for event_type in ("OrderPlaced", "OrderCancelled"):
            registry.subscribe(event_type, HANDLE_ORDER_EVENTS_TASK)
