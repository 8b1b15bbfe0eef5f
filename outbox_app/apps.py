"""App configuration for the outbox."""

from django.apps import AppConfig


class OutboxAppConfig(AppConfig):
    name = "outbox_app"
    verbose_name = "Outbox"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from outbox_app import metrics  # noqa: F401  (registers the outbox metrics with Prometheus)
        from outbox_app.outbox import request_began, request_ended

        # Each request's commits are relayed as one, after its response (outbox.one_relay()).
        request_started.connect(request_began, dispatch_uid="outbox.request_began")
        request_finished.connect(request_ended, dispatch_uid="outbox.request_ended")
