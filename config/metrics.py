"""The Prometheus endpoint: /metrics in the text exposition format, for one process or many.

Counters and histograms count what the process that incremented them did (the web workers' commands, the Celery
workers' relay runs). With PROMETHEUS_MULTIPROC_DIR set, every process of a host writes its samples to files
there and /metrics merges them all: set it, to the same empty directory, for gunicorn (several workers) and every
Celery worker of the host, and any web process serves the whole host's counts. The gauges are computed when
scraped (the outbox backlog, the projection lag, sagas by status, beat's heartbeat): their collectors are added to
the merged registry, since prometheus_client's multiprocess mode knows only the samples in the files.
"""

import os
import re
import socket
from functools import cache

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def use_host_qualified_process_ids() -> None:
    """Name each process's sample files after its host and pid, not its pid alone.

    Containers sharing the directory (docker-compose.yml mounts one volume in the web and worker containers)
    each number their processes from 1: by pid alone, two processes would write the same file. Called from the
    settings, before any metric exists.
    """
    if os.environ.get(MULTIPROCESS_DIR):
        host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())  # '_' separates the parts of the file name
        values.ValueClass = values.MultiProcessValue(lambda: f"{host}-{os.getpid()}")


@cache
def registry() -> CollectorRegistry:
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    from operations_app.metrics import COLLECTOR as BEAT
    from outbox_app.metrics import COLLECTOR as OUTBOX
    from queries_app.metrics import COLLECTOR as PROJECTIONS
    from sagas_app.metrics import COLLECTOR as SAGAS

    merged = CollectorRegistry()
    MultiProcessCollector(merged)
    for scraped in (OUTBOX, PROJECTIONS, SAGAS, BEAT):
        merged.register(scraped)
    return merged


def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
