"""The consistency map, built from the query views' own declarations (and the projections' measured lag)."""

from dataclasses import dataclass

from django.urls import URLPattern

from queries_app.api.urls import urlpatterns
from queries_app.api.views import QueryView
from queries_app.consistency import Consistency
from queries_app.lag import Lag, lag, replica_delay_seconds
from queries_app.projections import BY_NAME

HEADER = ("endpoint", "level", "data source", "current lag")


@dataclass(frozen=True)
class Entry:
    endpoint: str
    level: str
    source: str
    projection: str


def entries() -> list[Entry]:
    found = []
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        assert issubclass(view, QueryView)
        route = str(pattern.pattern).replace("<uuid:", "{").replace("<str:", "{").replace(">", "}")
        found.append(Entry(f"GET /api/{route}", view.consistency, view.source, view.projection))
    return found


def current_rows() -> list[tuple[str, str, str, str]]:
    lags: dict[str, Lag] = {}
    delay = replica_delay_seconds()
    rows = []
    for entry in entries():
        if entry.projection not in lags:
            lags[entry.projection] = lag(BY_NAME[entry.projection])
        measured = f"{entry.projection}: {lags[entry.projection]}"
        if entry.level == Consistency.STRONG:
            measured = f"none: a read waits until {measured} are applied"
        elif delay is not None and "replica" in entry.source:
            measured += f"; replica {delay:.1f}s"
        rows.append((entry.endpoint, entry.level, entry.source, measured))
    return rows


def table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
