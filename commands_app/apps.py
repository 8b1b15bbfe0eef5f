"""App configuration for the write side; declares its event types in the log's catalog (outbox_app.catalog)."""

from django.apps import AppConfig


class CommandsAppConfig(AppConfig):
    name = "commands_app"
    verbose_name = "Write model"

    def ready(self) -> None:
        from commands_app.event_schemas import declare_events

        declare_events()
