"""Beat's heartbeat: one row per scheduler, written by the scheduler itself on its ticks."""

from datetime import datetime

from django.db import models
from django.utils import timezone


class SchedulerHeartbeat(models.Model):
    """The last tick a scheduler recorded. It is alive while the tick is less than two of its periods old."""

    name = models.CharField(primary_key=True, max_length=50)
    runner = models.CharField(max_length=50, help_text="celery beat, or the embedded default's in-process scheduler")
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    period_seconds = models.FloatField(help_text="How often it records a heartbeat (BEAT_HEARTBEAT_SECONDS).")
    started_at = models.DateTimeField()
    beaten_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} ({self.runner} on {self.host}, pid {self.pid})"

    def age_seconds(self, now: datetime | None = None) -> float:
        return max(((now or timezone.now()) - self.beaten_at).total_seconds(), 0.0)

    @property
    def dead_after_seconds(self) -> float:
        return 2 * self.period_seconds

    def alive(self, now: datetime | None = None) -> bool:
        return self.age_seconds(now) <= self.dead_after_seconds
