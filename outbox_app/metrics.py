"""Prometheus metrics of the outbox, registered with the default registry on import (see OutboxAppConfig.ready()).

The backlog, the oldest pending age and the dead count are read from the database at scrape time, so whichever
process serves /metrics reports the truth. The counters count what this process's relays did: scrape every
relay process, or run prometheus_client in multiprocess mode, to see them all.
"""

from collections.abc import Iterator

import structlog
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

EVENTS_PUBLISHED = Counter("outbox_events_published", "Events the relay published to the bus and marked published.")
PUBLISH_FAILURES = Counter(
    "outbox_publish_failures",
    "Failed attempts to publish an event: reason is outage (broker unreachable) or rejected (the event itself).",
    ["reason"],
)
EVENTS_PARKED = Counter("outbox_events_parked", "Events parked as dead after OUTBOX_MAX_ATTEMPTS rejections.")
for reason in ("outage", "rejected"):
    PUBLISH_FAILURES.labels(reason=reason)


def record_relay(*, published: int, outages: int, rejections: int, dead: int) -> None:
    EVENTS_PUBLISHED.inc(published)
    PUBLISH_FAILURES.labels(reason="outage").inc(outages)
    PUBLISH_FAILURES.labels(reason="rejected").inc(rejections)
    EVENTS_PARKED.inc(dead)


class OutboxCollector(Collector):
    """Gauges computed from the outbox table when scraped."""

    def describe(self) -> Iterator[Metric]:
        # Without describe(), registering would call collect() and query the database at import time.
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        from outbox_app.operations import read_backlog

        families = self._families()
        try:
            backlog = read_backlog()
        except Exception:
            # Whatever goes wrong here (the database is down, or not reachable from this process), the rest of
            # the scrape must still be served: these gauges are left out of it instead.
            log.warning("outbox.metrics_unavailable", exc_info=True)
            return iter(())
        backlog_family, age_family, dead_family = families
        backlog_family.add_metric([], backlog.pending)
        age_family.add_metric([], backlog.oldest_pending_age_seconds or 0.0)
        dead_family.add_metric([], backlog.dead)
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("outbox_backlog_events", "Events waiting to be published (neither published nor dead)."),
            GaugeMetricFamily(
                "outbox_oldest_pending_age_seconds", "Age of the oldest event waiting to be published; 0 when none."
            ),
            GaugeMetricFamily("outbox_dead_events", "Events parked as dead, waiting for an operator to requeue them."),
        ]


COLLECTOR = OutboxCollector()
REGISTRY.register(COLLECTOR)
