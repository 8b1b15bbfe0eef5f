"""Projection lag for operators: measured by beat, published in the cache, read by /metrics and the status.

Measuring lag exactly costs a pass over the event log (queries_app/lag.py), too much for every scrape or
readiness probe, so the periodic task `queries_app.measure_projection_lag` measures it and stores the result;
scrapes and probes only read the stored figures and their age.
"""

import time
from collections.abc import Iterator
from typing import Any

from django.core.cache import cache
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CACHE_KEY = "projections:lag"
REPLICA_CACHE_KEY = "projections:replica-delay"
CACHE_SECONDS = 300


def measure() -> dict[str, dict[str, Any]]:
    """Measure every projection's lag and parked events (and the replica's delay), store and return them."""
    from queries_app.lag import status
    from queries_app.projections import PROJECTIONS
    from queries_app.routers import replica_status

    replica = replica_status()
    if replica is not None:
        # -1: the replica did not answer (its reads go to the primary).
        delay = -1.0 if replica.delay_seconds is None else round(replica.delay_seconds, 3)
        cache.set(REPLICA_CACHE_KEY, {"delay_seconds": delay, "measured_at": time.time()}, CACHE_SECONDS)

    measured = {}
    for projection in PROJECTIONS:
        state = status(projection)
        measured[projection.name] = {
            "events_behind": state.lag.events_behind,
            "age_seconds": round(state.lag.age_seconds, 3),
            "parked": state.parked,
            "measured_at": time.time(),
        }
    cache.set(CACHE_KEY, measured, CACHE_SECONDS)
    return measured


def last_measured() -> dict[str, dict[str, Any]]:
    return cache.get(CACHE_KEY) or {}


def last_replica_delay() -> dict[str, float] | None:
    return cache.get(REPLICA_CACHE_KEY)


class ProjectionLagCollector(Collector):
    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        behind, age, parked, staleness = families
        now = time.time()
        for name, figures in last_measured().items():
            behind.add_metric([name], figures["events_behind"])
            age.add_metric([name], figures["age_seconds"])
            parked.add_metric([name], figures["parked"])
            staleness.add_metric([name], now - figures["measured_at"])
        replica = last_replica_delay()
        if replica is not None:
            families.append(
                GaugeMetricFamily(
                    "replica_delay_seconds",
                    "How far the read replica's replay is behind the primary (-1: not answering).",
                    value=replica["delay_seconds"],
                )
            )
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        labels = ["projection"]
        return [
            GaugeMetricFamily("projection_lag_events", "Events in the log not yet applied.", labels=labels),
            GaugeMetricFamily("projection_lag_seconds", "Age of the oldest event not yet applied.", labels=labels),
            GaugeMetricFamily("projection_parked_events", "Events parked after repeated failures.", labels=labels),
            GaugeMetricFamily("projection_lag_measured_seconds_ago", "Age of the lag figures above.", labels=labels),
        ]


COLLECTOR = ProjectionLagCollector()
REGISTRY.register(COLLECTOR)
