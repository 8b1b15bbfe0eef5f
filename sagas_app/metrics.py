"""Sagas by status for Prometheus, counted from the saga table at scrape time (an indexed GROUP BY)."""

from collections.abc import Iterator

import structlog
from django.db.models import Count
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)


class SagaCollector(Collector):
    def describe(self) -> Iterator[Metric]:
        return iter([self._family()])

    def collect(self) -> Iterator[Metric]:
        from sagas_app.models import Saga

        family = self._family()
        try:
            counts = dict(Saga.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        except Exception:
            log.warning("sagas.metrics_unavailable", exc_info=True)
            return iter(())
        for status in Saga.Status.values:
            family.add_metric([status], counts.get(status, 0))
        return iter([family])

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("sagas", "Sagas by status.", labels=["status"])


COLLECTOR = SagaCollector()
REGISTRY.register(COLLECTOR)
