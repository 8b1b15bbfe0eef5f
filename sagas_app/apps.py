"""App configuration for the sagas: registers the fulfilment saga and subscribes it to the order events that start and
stop it."""

from django.apps import AppConfig


class SagasAppConfig(AppConfig):
    name = "sagas_app"
    verbose_name = "Sagas"

    def ready(self) -> None:
        from sagas_app import checks, fulfilment, metrics, tasks  # noqa: F401  (registers checks, the collector and the tasks)

        fulfilment.register()
