"""Health as an orchestrator and an operator see it, on the real processes.

/readyz takes a web process out of rotation only for what it needs to serve (its database): gunicorn
on a PostgreSQL cluster and a broker of the test's own, each stopped for real. Beat's heartbeat: a real beat
killed, and the status document, the metric and the admin saying so within two of its periods.
"""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from celery import current_app

from bench.private_services import PrivatePostgres, ThrowawayRedis
from operations_app.models import SchedulerHeartbeat
from tests.conftest import eventually
from tests.stack import Stack, Web, gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


def statuses(web: Web, path: str, times: int = 6) -> set[int]:
    """The status codes of a few requests, so that both gunicorn workers are likely asked."""
    return {web.get(path).status for _ in range(times)}


def test_readyz_keeps_the_web_tier_ready_while_the_broker_is_down_but_not_while_the_database_is(stack_env, tmp_path):
    with PrivatePostgres.running() as database, ThrowawayRedis.running() as broker:
        env = {**stack_env, "DATABASE_URL": database.url(), "CELERY_BROKER_URL": broker.url}
        with gunicorn(env, tmp_path, workers=2) as web:
            # given
            assert statuses(web, "/readyz") == {200}

            # when: the broker goes away
            broker.stop()

            # then: still ready (commands are accepted, their events wait in the outbox); the status says why
            assert statuses(web, "/readyz") == {200}
            health = json.loads(web.get("/healthz").body)
            assert (health["status"], health["checks"]["broker"]["status"]) == ("failing", "failing")

            # when: the database goes away
            database.stop()

            # then: out of rotation, saying which dependency failed
            assert statuses(web, "/readyz") == {503}
            checks = json.loads(web.get("/readyz").body)["checks"]
            assert checks["database"]["status"] == "failing"

            # when: it is back
            database.start()

            # then: ready again, without a restart
            eventually(lambda: statuses(web, "/readyz") == {200}, timeout=30)


def test_a_dead_beat_shows_in_the_status_the_metrics_and_the_admin_within_two_heartbeat_periods(
    stack_env, tmp_path: Path, client, admin_client
):
    # given: beat, recording a heartbeat every second
    period = 1.0
    stack = Stack(env={**stack_env, "BEAT_HEARTBEAT_SECONDS": str(period)}, logs=tmp_path)
    beat = stack.start_beat()
    admin_page = "/admin/operations_app/schedulerheartbeat/"
    try:
        eventually(lambda: client.get("/healthz").json()["checks"]["beat"]["status"] == "ok", timeout=30)
        assert "beat_up 1.0" in client.get("/metrics").content.decode()
        assert 'alt="True"' in admin_client.get(admin_page).content.decode()

        # when: beat dies
        os.killpg(beat.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        beat.wait(timeout=10)
        time.sleep(max(killed_at + 2 * period + 0.2 - time.monotonic(), 0))

        # then: two periods later, all three say so
        check = client.get("/healthz").json()["checks"]["beat"]
        assert check["status"] == "failing", check
        assert check["last_heartbeat_seconds_ago"] > 2 * period
        assert "beat_up 0.0" in client.get("/metrics").content.decode()
        assert 'alt="False"' in admin_client.get(admin_page).content.decode()
        assert SchedulerHeartbeat.objects.get().runner == "celery beat"
    finally:
        stack.stop_all()
        current_app.control.purge()  # what beat sent, with no worker to take it
