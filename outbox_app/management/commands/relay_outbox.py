"""Run the outbox relay from the command line: one drain, or a loop until SIGTERM or SIGINT.

The loop is an alternative to Celery beat for deployments that prefer a dedicated relay process; run as many
as you like, side by side.
"""

import signal
import threading
import time
from types import FrameType
from typing import Any

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from outbox_app.bus import bus_publisher
from outbox_app.operations import read_backlog
from outbox_app.relay import RelayReport, drained, relay_once, relay_until_drained

log = structlog.get_logger(__name__)
PROGRESS_EVERY_SECONDS = 1.0


class Command(BaseCommand):
    help = "Publish unpublished outbox events to the bus: once (until drained), or in a loop with --loop."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="Keep relaying until SIGTERM or SIGINT.")
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.OUTBOX_RELAY_INTERVAL,
            help="Seconds to wait when the outbox is drained (default: OUTBOX_RELAY_INTERVAL).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.OUTBOX_BATCH_SIZE,
            help="Events claimed per batch (default: OUTBOX_BATCH_SIZE).",
        )

    def handle(self, *args: Any, loop: bool, interval: float, batch_size: int, **options: Any) -> None:
        if not loop:
            started = time.monotonic()
            report = relay_until_drained(batch_size=batch_size, max_batches=1_000_000)
            self._progress(report, time.monotonic() - started)
            return
        stop = threading.Event()
        stopped_by: list[str] = []

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stopped_by.append(signal.Signals(signum).name)
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            total = self._loop(stop, interval=interval, batch_size=batch_size)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self._say(f"relay_outbox: stopped by {stopped_by[0] if stopped_by else 'request'}; published {total} in total")

    def _loop(self, stop: threading.Event, *, interval: float, batch_size: int) -> int:
        self._say(f"relay_outbox: relaying in batches of {batch_size}, polling every {interval}s")
        total = 0
        window, window_started = RelayReport(), time.monotonic()
        while not stop.is_set():
            # One broker connection per drain, as in relay_until_drained (opened on the first publish only).
            with bus_publisher() as publish:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        report = relay_once(batch_size=batch_size, publish=publish)
                    except (OperationalError, InterfaceError):
                        # The database went away; the claim rolled back. Reconnect on the next round.
                        log.warning("outbox.relay_database_error", exc_info=True)
                        connection.close()
                        break
                    if report.claimed and not window.claimed:
                        window_started = started
                    total += report.published
                    window += report
                    stop_here = drained(report, batch_size)
                    elapsed = time.monotonic() - window_started
                    if window.claimed and (stop_here or elapsed >= PROGRESS_EVERY_SECONDS):
                        self._progress(window, elapsed, total=total)
                        window = RelayReport()
                    if stop_here:
                        break
            close_old_connections()
            stop.wait(interval)
        return total

    def _progress(self, report: RelayReport, elapsed: float, *, total: int | None = None) -> None:
        rate = report.published / elapsed if elapsed > 0 else 0.0
        backlog = read_backlog().pending
        eta = f"{backlog / rate:.0f}s" if rate > 0 and backlog else "-"
        line = (
            f"published {report.published} in {elapsed:.2f}s ({rate:.1f} events/s); "
            f"failed {report.failed}, dead {report.dead}, held {report.held}; backlog {backlog}, ETA {eta}"
        )
        self._say(line if total is None else f"{line}; {total} published since start")

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
