"""Beat's heartbeat for Prometheus, read from its row at scrape time (so any process serving /metrics has it)."""

from collections.abc import Iterator

import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)


class BeatCollector(Collector):
    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        from operations_app import heartbeat

        families = self._families()
        try:
            beat = heartbeat.last()
        except Exception:
            log.warning("operations.metrics_unavailable", exc_info=True)
            return iter(())
        age, up = families
        if beat is not None:
            age.add_metric([], beat.age_seconds())
        up.add_metric([], 1.0 if beat is not None and beat.alive() else 0.0)
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("beat_heartbeat_age_seconds", "Seconds since beat's last heartbeat (absent: never)."),
            GaugeMetricFamily(
                "beat_up", "1 while beat's last heartbeat is younger than two of its periods (BEAT_HEARTBEAT_SECONDS)."
            ),
        ]


COLLECTOR = BeatCollector()
REGISTRY.register(COLLECTOR)
