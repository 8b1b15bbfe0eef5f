"""Choosing projections by name on the command line."""

from django.core.management.base import CommandError

from queries_app.projection_engine.projection import Projection
from queries_app.projections import BY_NAME, PROJECTIONS


def projections_named(names: list[str]) -> list[Projection]:
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise CommandError(f"Unknown projection(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [BY_NAME[name] for name in names] if names else list(PROJECTIONS)
