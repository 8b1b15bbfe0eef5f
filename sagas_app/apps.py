"""App configuration for the sagas."""

from django.apps import AppConfig


class SagasAppConfig(AppConfig):
    name = "sagas_app"
    verbose_name = "Sagas"
