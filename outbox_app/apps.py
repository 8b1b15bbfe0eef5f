"""App configuration for the outbox."""

from django.apps import AppConfig


class OutboxAppConfig(AppConfig):
    name = "outbox_app"
    verbose_name = "Outbox"
