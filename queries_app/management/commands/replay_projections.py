"""Rebuild read models from the event log, beside the live ones, and swap them in atomically."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]

from queries_app.management.commands._select import projections_named
from queries_app.projections.replay import ReplayError, log_size, replay


class Command(BaseCommand):
    help = "Rebuild the named projections (all by default) from the event log while live events keep flowing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="Projections to rebuild (default: all).")
        parser.add_argument(
            "--cache-rows", type=int, default=100_000, help="Rows held in memory while folding (default 100000)."
        )

    def handle(self, *args: Any, names: list[str], cache_rows: int, **options: Any) -> None:
        for projection in projections_named(names):
            started = time.monotonic()
            with tqdm(
                total=log_size(projection), desc=projection.name, unit="event", unit_scale=True, file=self.stderr
            ) as bar:
                try:
                    report = replay(projection, progress=bar.update, cache_rows=cache_rows)
                except ReplayError as error:
                    raise CommandError(
                        f"{projection.name} was not rebuilt (the live model is untouched): {error}"
                    ) from error
            seconds = time.monotonic() - started
            self.stdout.write(
                f"{projection.name}: rebuilt from {report.folded} event(s), {report.caught_up} caught up "
                f"during the rebuild, in {seconds:.1f}s"
            )
