"""The production profile as deployed: gunicorn with DEBUG off and two workers, static files collected under hashed
names and served by WhiteNoise, and /metrics merging the counts of every web and Celery process of the host."""

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from celery import current_app

from api_common.models import ApiClient
from outbox_app.models import OutboxEvent
from tests.conftest import eventually
from tests.stack import Stack, Web, wait_until_idle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]
ONE_YEAR = "max-age=315360000"


def linked(html: str, pattern: str) -> str:
    """The path of the first src or href in the page that matches the pattern."""
    match = re.search(rf'(?:src|href)="(/static/{pattern})"', html)
    assert match, f"nothing links {pattern}"
    return match.group(1)


def test_the_admin_swagger_ui_and_redoc_get_their_static_files_hashed_compressed_and_cached(production_web: Web):
    # given: the pages as a browser gets them
    login = production_web.get("/admin/login/").body.decode()
    docs = production_web.get("/api/docs").body.decode()
    redoc = production_web.get("/api/redoc").body.decode()
    files = {
        linked(login, r"admin/css/base\.[0-9a-f]{12}\.css"): "text/css",
        linked(docs, r"drf_spectacular_sidecar/swagger-ui-dist/swagger-ui\.[0-9a-f]{12}\.css"): "text/css",
        linked(docs, r"drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle\.[0-9a-f]{12}\.js"): "text/javascript",
        linked(redoc, r"drf_spectacular_sidecar/redoc/bundles/redoc\.standalone\.[0-9a-f]{12}\.js"): "text/javascript",
    }

    for path, content_type in files.items():
        # when
        plain = production_web.get(path)
        gzipped = production_web.get(path, **{"Accept-Encoding": "gzip"})

        # then: served, typed, cached for a year under their hashed name, and compressed when asked
        assert plain.status == 200, path
        assert plain.headers["Content-Type"].startswith(content_type), (path, plain.headers["Content-Type"])
        assert ONE_YEAR in plain.headers["Cache-Control"] and "immutable" in plain.headers["Cache-Control"]
        assert gzipped.headers["Content-Encoding"] == "gzip"
        assert len(gzipped.body) < len(plain.body)
    assert production_web.get("/static/admin/css/base.css").status == 200  # the original name too


def metric(text: str, name: str) -> float:
    """The value of one sample line `name value` (name with its labels), or 0 when absent."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def files_by_pid(directory: Path, kind: str) -> set[int]:
    """The pids that wrote samples of this kind (counter, histogram) to the multiprocess directory."""
    return {int(path.stem.rsplit("-", 1)[1]) for path in directory.glob(f"{kind}_*.db")}


def test_metrics_merge_the_counts_of_every_gunicorn_and_celery_process_and_compute_the_gauges(
    production_web: Web, production_env: dict[str, str], tmp_path: Path
):
    # given: a Celery worker of two processes sharing the web's PROMETHEUS_MULTIPROC_DIR, and a client
    stack = Stack(env=production_env, logs=tmp_path)
    worker = stack.start_worker(concurrency=2)
    client = ApiClient(name=f"metrics-{uuid.uuid4().hex[:8]}", scopes=["write"])
    token = client.issue_token()
    client.save()
    published = "outbox_events_published_total"
    registered = 'cqrs_command_duration_seconds_count{command="RegisterCustomer",outcome="ok"}'
    before = production_web.get("/metrics").body.decode()

    def register() -> int:
        body = f'{{"first_name": "A", "last_name": "B", "email": "m-{uuid.uuid4().hex[:12]}@example.com"}}'
        headers = {"Authorization": f"Token {token}", "Idempotency-Key": str(uuid.uuid4())}
        headers["Content-Type"] = "application/json"
        return production_web.request("POST", "/api/commands/register-customer", body.encode(), headers).status

    try:
        # when: commands over parallel connections, until both gunicorn workers have served some
        directory = Path(production_env["PROMETHEUS_MULTIPROC_DIR"])
        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(10):
                assert set(pool.map(lambda _: register(), range(16))) == {201}
                sent += 16
                if production_web.worker_pids() <= files_by_pid(directory, "histogram"):
                    break
        eventually(lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists(), timeout=60)
        current_app.send_task("queries_app.measure_projection_lag")  # what beat would send

        def scrape_with_lag() -> str | None:
            text = production_web.get("/metrics").body.decode()
            return text if "projection_lag_events{" in text else None

        scrapes = [eventually(scrape_with_lag) for _ in range(6)]

        # then: both web workers counted commands and the Celery processes relayed them...
        assert production_web.worker_pids() <= files_by_pid(directory, "histogram")
        celery_children = {
            int(pid) for pid in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        }
        assert files_by_pid(directory, "counter") & celery_children
        # ...and every scrape, whichever worker serves it, has the whole host's counts and every gauge
        for text in scrapes:
            assert metric(text, registered) - metric(before, registered) == sent
            assert metric(text, published) - metric(before, published) == sent
            for gauge in (
                "outbox_backlog_events",
                "outbox_oldest_pending_age_seconds",
                'projection_lag_events{projection="customers"}',
                'projection_lag_seconds{projection="customers"}',
                'sagas{status="running"}',
                "beat_up",
            ):
                assert re.search(rf"^{re.escape(gauge)} ", text, re.MULTILINE), gauge
    finally:
        wait_until_idle()
        stack.stop_all()
