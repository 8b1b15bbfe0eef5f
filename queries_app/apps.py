"""App configuration for the read side; subscribes the projections to every event of the aggregates they follow."""

from django.apps import AppConfig

PROJECT_EVENTS_TASK = "queries_app.project_events"


class QueriesAppConfig(AppConfig):
    name = "queries_app"
    verbose_name = "Read models"

    def ready(self) -> None:
        from outbox_app import registry
        from queries_app import metrics, tasks  # noqa: F401  (metrics registers its collector; tasks for eager mode)
        from queries_app.projections import PROJECTIONS

        for projection in PROJECTIONS:
            for event_type in projection.subscribes_to:
                registry.subscribe(event_type, PROJECT_EVENTS_TASK)
