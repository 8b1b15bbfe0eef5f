"""App configuration for the write side; installs the process's mediator for other apps to send commands through."""

from django.apps import AppConfig


class CommandsAppConfig(AppConfig):
    name = "commands_app"
    verbose_name = "Write model"

    def ready(self) -> None:
        from commands_app import bootstrap, mediator

        mediator.install(bootstrap.mediator)
