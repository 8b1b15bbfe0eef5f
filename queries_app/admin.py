"""Admin: parked events (inspect and retry) and projection checkpoints."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from queries_app.models import ParkedEvent, ProjectionCheckpoint
from queries_app.projection_engine.apply import retry_parked


@admin.register(ParkedEvent)
class ParkedEventAdmin(admin.ModelAdmin):
    list_display = ["projection", "event_type", "aggregate_type", "aggregate_id", "aggregate_version", "reason"]
    list_display += ["attempts", "parked_at"]
    list_filter = ["projection", "reason", "event_type"]
    search_fields = ["event_id", "aggregate_id"]
    ordering = ["projection", "aggregate_type", "aggregate_id", "aggregate_version"]
    readonly_fields = [field.name for field in ParkedEvent._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry the selected parked events")
    def retry(self, request: HttpRequest, queryset: QuerySet[ParkedEvent]) -> None:
        report = retry_parked(list(queryset))
        level = messages.SUCCESS if not report.still_parked else messages.WARNING
        self.message_user(request, f"Applied {report.applied} event(s); {report.still_parked} still parked.", level)


@admin.register(ProjectionCheckpoint)
class ProjectionCheckpointAdmin(admin.ModelAdmin):
    list_display = ["projection", "events_applied", "last_event_at", "rebuilt_at", "updated_at"]
    readonly_fields = [field.name for field in ProjectionCheckpoint._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
