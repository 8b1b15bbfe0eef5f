"""App configuration for the write side: declares its event types in the log's catalog (outbox_app.catalog), and
installs the process's mediator for other apps to send commands through."""

from django.apps import AppConfig


class CommandsAppConfig(AppConfig):
    name = "commands_app"
    verbose_name = "Write model"

    def ready(self) -> None:
        from commands_app import bootstrap, mediator
        from commands_app.event_schemas import declare_events

        declare_events()
        mediator.install(bootstrap.mediator)
