"""Beat's heartbeat in the admin: when it last ticked, and whether that makes it alive."""

from django.contrib import admin
from django.http import HttpRequest

from operations_app.models import SchedulerHeartbeat


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "alive",
        "seconds_since_last_heartbeat",
        "beaten_at",
        "period_seconds",
        "runner",
        "host",
        "pid",
    )
    readonly_fields = ("name", "runner", "host", "pid", "period_seconds", "started_at", "beaten_at")

    @admin.display(boolean=True, description="alive (heartbeat within two periods)")
    def alive(self, beat: SchedulerHeartbeat) -> bool:
        return beat.alive()

    @admin.display(description="seconds since last heartbeat")
    def seconds_since_last_heartbeat(self, beat: SchedulerHeartbeat) -> str:
        return f"{beat.age_seconds():.1f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SchedulerHeartbeat | None = None) -> bool:
        return False
