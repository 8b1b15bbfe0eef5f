"""Schedulers of the periodic tasks (CELERY_BEAT_SCHEDULE), each recording a heartbeat as it ticks.

`celery -A config beat` runs HeartbeatScheduler (settings.CELERY_BEAT_SCHEDULER): Celery's own scheduler, with the
heartbeat recorded by the loop that sends the tasks, so a beat that died or hangs stops it, whatever the workers
do. A tick happens at least once a heartbeat period, and the heartbeat is written after the tick's sends: a beat
stuck on a broker that does not answer shows as stalled.

The embedded default has no beat: the served process (runserver or gunicorn, from config/wsgi.py) runs the same
schedule on a thread with InProcessScheduler, whose tasks run in that thread (eager Celery). One process per
DATA_DIR runs it (a file lock), so several gunicorn workers do not each run every task. Tests and management
commands never start it.
"""

import logging
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from celery import current_app
from celery.beat import PersistentScheduler, ScheduleEntry, Scheduler
from celery.result import EagerResult
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from operations_app import heartbeat

log = structlog.get_logger(__name__)


class HeartbeatMixin:
    """Records a heartbeat every BEAT_HEARTBEAT_SECONDS from tick(), and ticks at least that often."""

    runner = "celery beat"
    _started_at: datetime | None = None
    _next_heartbeat = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)  # type: ignore[misc]
        period = settings.BEAT_HEARTBEAT_SECONDS
        now = time.monotonic()
        if now >= self._next_heartbeat:
            if self._started_at is None:
                self._started_at = timezone.now()
            heartbeat.record(
                name=heartbeat.BEAT, runner=self.runner, period_seconds=period, started_at=self._started_at
            )
            self._next_heartbeat = now + period
        return min(interval, max(self._next_heartbeat - time.monotonic(), 0.0))


class HeartbeatScheduler(HeartbeatMixin, PersistentScheduler):
    """Celery beat's default scheduler (its schedule kept in a shelve file), with a heartbeat."""


class InProcessScheduler(HeartbeatMixin, Scheduler):
    """The embedded default's scheduler: the schedule in memory, each due task run in this thread (eager)."""

    runner = "in-process scheduler (embedded default)"

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        # Celery's logs every send at INFO (every second here) and loses an eager task's failure: log that instead.
        result = self.apply_async(entry, producer=producer, advance=False)
        if isinstance(result, EagerResult) and result.failed():
            log.error("scheduler.task_failed", task=entry.task, error=repr(result.result), traceback=result.traceback)


class _QuietSchedulerThread(logging.Filter):
    """Drops the INFO lines Celery logs for each task the scheduler thread runs (several a second)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.threadName != SCHEDULER_THREAD


LOCK_RETRY_SECONDS = 5.0
SCHEDULER_THREAD = "scheduler"
_started = threading.Event()


def start_in_process_scheduler() -> None:
    """Run the periodic tasks on a daemon thread of this process (once per process; one process per DATA_DIR)."""
    if _started.is_set():
        return
    _started.set()
    # As beat and the workers do on start: import every app's tasks, so no scheduled task is unknown here (an
    # unknown task would be sent to the in-memory broker and lost).
    current_app.loader.import_default_modules()
    logging.getLogger("celery.app.trace").addFilter(_QuietSchedulerThread())
    lock = Path(settings.DATA_DIR) / "scheduler.lock"
    threading.Thread(target=_run, args=(lock,), name=SCHEDULER_THREAD, daemon=True).start()


def _run(lock_path: Path) -> None:
    lock = _ProcessLock(lock_path)
    while not lock.acquire():
        time.sleep(LOCK_RETRY_SECONDS)  # another process runs the schedule; take over if it stops
    log.info("scheduler.started", runner=InProcessScheduler.runner, tasks=sorted(settings.CELERY_BEAT_SCHEDULE))
    scheduler = InProcessScheduler(app=current_app)
    while True:
        try:
            interval = scheduler.tick()
        except Exception:  # the thread must outlive any one tick
            log.exception("scheduler.tick_failed")
            interval = 1.0
        finally:
            close_old_connections()
        time.sleep(max(interval, 0.0))  # Celery's drift adjustment can make it slightly negative


class _ProcessLock:
    """An exclusive lock on a file, held until the process exits (flock: the kernel drops it with the process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def acquire(self) -> bool:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): every served process runs the schedule
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a")  # noqa: SIM115 (held open for the life of the process)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.close()
            return False
        self._file = file
        return True
