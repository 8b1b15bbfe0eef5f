"""Prometheus metrics of the webhooks, registered with the default registry on import (WebhooksAppConfig.ready()).

As for the outbox: the pending deliveries, the age of the oldest due one, the failed deliveries and the disabled
endpoints are read from the database at scrape time, so whichever process serves /metrics reports the truth. The
counters count what this process's workers did: scrape the webhooks workers too, or use prometheus_client's
multiprocess mode, to see them all.
"""

from collections.abc import Iterator

import structlog
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

OUTCOMES = ("delivered", "http_error", "timeout", "connection_error", "tls_error", "address_refused")

ATTEMPTS = Counter("webhook_attempts", "Webhook delivery attempts, by outcome.", ["outcome"])
DELIVERIES_DELIVERED = Counter("webhook_deliveries_delivered", "Deliveries an endpoint accepted (2xx).")
DELIVERIES_FAILED = Counter(
    "webhook_deliveries_failed", "Deliveries given up: retried until their window closed, or their endpoint disabled."
)
ENDPOINTS_DISABLED = Counter("webhook_endpoints_disabled", "Endpoints disabled after failing for too long.")
for outcome in OUTCOMES:
    ATTEMPTS.labels(outcome=outcome)


def record_attempt(outcome: str, *, gave_up: bool) -> None:
    ATTEMPTS.labels(outcome=outcome).inc()
    if outcome == "delivered":
        DELIVERIES_DELIVERED.inc()
    elif gave_up:
        DELIVERIES_FAILED.inc()


class WebhooksCollector(Collector):
    """Gauges computed from the deliveries and endpoints tables when scraped."""

    def describe(self) -> Iterator[Metric]:
        # Without describe(), registering would call collect() and query the database at import time.
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        from webhooks_app.operations import read_status

        families = self._families()
        try:
            status = read_status()
        except Exception:
            log.warning("webhooks.metrics_unavailable", exc_info=True)
            return iter(())
        deliveries, age, endpoints = families
        deliveries.add_metric(["pending"], status.pending)
        deliveries.add_metric(["failed"], status.failed)
        age.add_metric([], status.oldest_due_age_seconds or 0.0)
        endpoints.add_metric(["enabled"], status.enabled_endpoints)
        endpoints.add_metric(["disabled"], status.disabled_endpoints)
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "webhook_deliveries",
                "Deliveries by status: pending (to be attempted again), failed (given up, kept for operators).",
                labels=["status"],
            ),
            GaugeMetricFamily(
                "webhook_oldest_due_delivery_age_seconds", "How long the oldest due delivery has waited; 0 when none."
            ),
            GaugeMetricFamily("webhook_endpoints", "Endpoints not deleted, by status.", labels=["status"]),
        ]


REGISTRY.register(WebhooksCollector())
