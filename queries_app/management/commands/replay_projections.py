"""Rebuild read models from the event log, beside the live ones, and swap them in atomically."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]

from queries_app.management.commands._select import projections_named
from queries_app.projection_engine.replay import ReplayError, log_size, passes, replay_order, replay_together


class Command(BaseCommand):
    help = "Rebuild the named projections (all by default) from the event log while live events keep flowing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="Projections to rebuild (default: all).")
        parser.add_argument(
            "--cache-rows",
            type=int,
            default=500_000,
            help=(
                "Rows held in memory per projection while folding (default 500000). Keep it above the rows every "
                "event reads back (the orders projection reads each order's customer copy): below that, rows are "
                "handed on and read back one by one, and a replay of 1,000,000 events with 100,000 customers takes "
                "many times longer (docs/outbox.md)."
            ),
        )

    def handle(self, *args: Any, names: list[str], cache_rows: int, **options: Any) -> None:
        # Projections that follow the same aggregate types are folded from one read of the log.
        for group in passes(projections_named(names)):
            started = time.monotonic()
            label = ", ".join(projection.name for projection in group)
            order = replay_order(group)
            assert order is not None
            with tqdm(total=log_size(order), desc=label, unit="event", unit_scale=True, file=self.stderr) as bar:
                try:
                    reports = replay_together(group, progress=bar.update, cache_rows=cache_rows)
                except ReplayError as error:
                    untouched = ", ".join(error.projections) or label
                    raise CommandError(f"{untouched} not rebuilt (the live model is untouched): {error}") from error
            seconds = time.monotonic() - started
            for report in reports:
                self.stdout.write(
                    f"{report.projection}: rebuilt from {report.folded} event(s), {report.caught_up} caught up "
                    f"during the rebuild; catch-up and swap {report.swap_seconds:.1f}s"
                )
            self.stdout.write(
                f"{label}: one pass over the log (fold {reports[0].fold_seconds:.1f}s), {seconds:.1f}s in all"
            )
