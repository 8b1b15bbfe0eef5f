"""Recompute read models from the event log in memory and list every row that drifted from it."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]

from queries_app.management.commands._select import projections_named
from queries_app.projection_engine.replay import ReplayError, log_size, verify


class Command(BaseCommand):
    help = "Compare the named projections (all by default) with the event log; exit non-zero on any drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="Projections to verify (default: all).")
        parser.add_argument(
            "--cache-rows", type=int, default=1_000_000, help="Rows held in memory while folding (default 1000000)."
        )

    def handle(self, *args: Any, names: list[str], cache_rows: int, **options: Any) -> None:
        drifted = []
        for projection in projections_named(names):
            total = log_size(projection.follows)
            with tqdm(total=total, desc=projection.name, unit="event", unit_scale=True, file=self.stderr) as bar:
                try:
                    drifts = verify(projection, progress=bar.update, cache_rows=cache_rows)
                except ReplayError as error:
                    raise CommandError(f"{projection.name} could not be verified: {error}") from error
            for drift in drifts:
                self.stdout.write(f"{projection.name}: {drift}")
            self.stdout.write(f"{projection.name}: {len(drifts)} drifting row(s)")
            if drifts:
                drifted.append(projection.name)
        if drifted:
            raise CommandError(f"Drift in {', '.join(drifted)}: rebuild with replay_projections.")
