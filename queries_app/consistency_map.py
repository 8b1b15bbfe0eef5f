"""The consistency map, built from the query views' own declarations (and the projections' measured lag)."""

from dataclasses import dataclass

from django.urls import URLPattern

from queries_app.api.urls import urlpatterns
from queries_app.api.views import QueryView
from queries_app.consistency import Consistency
from queries_app.lag import Lag, lag
from queries_app.projections import BY_NAME
from queries_app.routers import ReplicaStatus, replica_status

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
    replica = replica_status()
    rows = []
    for entry in entries():
        if entry.projection not in lags:
            lags[entry.projection] = lag(BY_NAME[entry.projection])
        measured = f"{entry.projection}: {lags[entry.projection]}"
        if entry.level == Consistency.STRONG:
            measured = f"none: a read waits until {measured} are applied"
        elif replica is not None and "replica" in entry.source:
            measured += f"; {through_replica(lags[entry.projection], replica)}"
        rows.append((entry.endpoint, entry.level, entry.source, measured))
    return rows


def through_replica(projection_lag: Lag, replica: ReplicaStatus) -> str:
    """The lag of a read through the replica: the projection's plus the replica's replay delay."""
    if not replica.serves_reads or replica.delay_seconds is None:
        return f"replica {replica}"
    return f"replica +{replica.delay_seconds:.1f}s = {projection_lag.age_seconds + replica.delay_seconds:.1f}s"


def table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
