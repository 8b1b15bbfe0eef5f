"""App configuration for the write side: declares its event types in the log's catalog (outbox_app.catalog) with
their upcasters, tells the log's readers where the customers' keys are (outbox_app.sealing), and
installs the process's mediator for other apps to send commands through."""

from django.apps import AppConfig


class CommandsAppConfig(AppConfig):
    name = "commands_app"
    verbose_name = "Write model"

    def ready(self) -> None:
        from commands_app import bootstrap, keys, mediator
        from commands_app.event_schemas import declare_events
        from outbox_app import sealing

        declare_events()
        sealing.register_key_lookup(keys.customer_keys)
        mediator.install(bootstrap.mediator)
