"""What operators use: health, readiness, metrics, the OpenAPI schema and docs, the admin."""

import io
import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from commands_app.models import IdempotencyRecord
from outbox_app import outbox
from outbox_app.models import OutboxEvent
from tests.conftest import command

pytestmark = pytest.mark.django_db


def test_livez_answers_while_the_process_runs(client):
    response = client.get("/livez")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_checks_only_what_this_process_needs_to_serve(client):
    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"database"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


def test_an_old_outbox_backlog_fails_the_status_but_not_readiness(client, settings):
    # given: an event that has waited longer than the threshold
    settings.HEALTH_MAX_OUTBOX_AGE_SECONDS = 5
    with transaction.atomic():
        outbox.append(
            [outbox.NewEvent(event_type="T", aggregate_type="A", aggregate_id="1", aggregate_version=1, payload={})]
        )
    OutboxEvent.objects.update(created_at=timezone.now() - timedelta(seconds=30))

    # when
    status = client.get("/healthz")
    ready = client.get("/readyz")

    # then
    assert status.status_code == 503
    outbox_check = status.json()["checks"]["outbox"]
    assert (outbox_check["status"], outbox_check["backlog"]) == ("failing", 1)
    assert outbox_check["oldest_pending_age_seconds"] >= 30
    assert ready.status_code == 200


def test_metrics_expose_the_command_latency_histogram(client, writer):
    command(writer, "register-customer", {"first_name": "A", "last_name": "B", "email": "m@example.com"})

    response = client.get("/metrics")

    text = response.content.decode()
    assert response.status_code == 200
    assert 'cqrs_command_duration_seconds_count{command="RegisterCustomer",outcome="ok"}' in text


def test_the_openapi_schema_is_valid_and_complete():
    out = io.StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)

    schema = out.getvalue()
    for path in ("/api/commands/register-customer", "/api/commands/place-order", "/api/customers/{customer_id}"):
        assert path in schema
    assert "application/problem+json" in schema
    assert "Idempotency-Key" in schema and "X-Consistency-Token" in schema


def test_swagger_ui_and_redoc_are_served_offline(client):
    for url in ("/api/docs", "/api/redoc"):
        response = client.get(url)
        assert response.status_code == 200
        assert "drf_spectacular_sidecar" in response.content.decode()


def test_the_admin_is_for_staff_only_and_write_model_records_are_read_only(client, writer):
    # given
    command(writer, "register-customer", {"first_name": "A", "last_name": "B", "email": "adm@example.com"})
    record = IdempotencyRecord.objects.get()
    User.objects.create_user("clerk", password="pw-not-staff-123")
    User.objects.create_superuser("root", password="pw-root-123456")

    # when / then: not staff
    client.login(username="clerk", password="pw-not-staff-123")
    assert client.get("/admin/commands_app/idempotencyrecord/").status_code == 302

    # when / then: staff sees, cannot add or change
    client.login(username="root", password="pw-root-123456")
    listing = client.get("/admin/commands_app/idempotencyrecord/")
    assert listing.status_code == 200 and str(record.key) in listing.content.decode()
    assert client.get("/admin/commands_app/idempotencyrecord/add/").status_code == 403
    detail = client.get(f"/admin/commands_app/idempotencyrecord/{record.pk}/change/")
    assert detail.status_code == 200 and "customer_id" in detail.content.decode()
    assert client.post(f"/admin/commands_app/idempotencyrecord/{record.pk}/delete/").status_code == 403


def test_unknown_urls_answer_problem_json(client):
    response = client.get(f"/api/nothing-{uuid.uuid4()}")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.fixture
def forget_measured_lag():
    """A measurement of a test's unapplied events would fail the status document in the tests after it."""
    from queries_app.metrics import CACHE_KEY

    cache.delete(CACHE_KEY)
    yield
    cache.delete(CACHE_KEY)


def test_projection_lag_is_measured_by_beat_and_served_to_metrics_and_the_status(client, settings, forget_measured_lag):
    # given: one customer event in the log that no projection has applied
    from queries_app.tasks import measure_projection_lag

    with transaction.atomic():
        outbox.append(
            [
                outbox.NewEvent(
                    event_type="CustomerRegistered",
                    aggregate_type="Customer",
                    aggregate_id=str(uuid.uuid4()),
                    aggregate_version=1,
                    payload={"customer_id": str(uuid.uuid4()), "first_name": "A", "last_name": "B", "email": "l@x.io"},
                )
            ]
        )
    OutboxEvent.objects.update(created_at=timezone.now() - timedelta(seconds=90))
    settings.HEALTH_MAX_PROJECTION_LAG_SECONDS = 60
    settings.HEALTH_MAX_OUTBOX_AGE_SECONDS = 3600

    # when
    assert measure_projection_lag() >= 1
    metrics = client.get("/metrics").content.decode()
    status = client.get("/healthz")

    # then
    assert 'projection_lag_events{projection="customers"} 1.0' in metrics
    assert 'sagas{status="running"} 0.0' in metrics
    assert status.status_code == 503
    customers = status.json()["checks"]["projections"]["projections"]["customers"]
    assert (customers["status"], customers["events_behind"]) == ("failing", 1)
    assert customers["lag_seconds"] >= 90


def test_a_stale_lag_measurement_is_unknown_never_ok(client, settings, forget_measured_lag):
    # given: figures that said "up to date" when measured, three measurement periods ago
    from queries_app.metrics import CACHE_KEY

    settings.PROJECTION_LAG_INTERVAL = 15
    up_to_date = {"events_behind": 0, "age_seconds": 0.0, "parked": 0}
    cache.set(CACHE_KEY, {"customers": {**up_to_date, "measured_at": time.time() - 45}})

    # when
    response = client.get("/healthz")
    stale = response.json()["checks"]["projections"]

    # then
    assert response.status_code == 503
    assert (stale["status"], stale["projections"]["customers"]["status"]) == ("unknown", "unknown")
    assert stale["projections"]["customers"]["measured_seconds_ago"] >= 45

    # when: measured again just now
    cache.set(CACHE_KEY, {"customers": {**up_to_date, "measured_at": time.time()}})

    # then
    assert client.get("/healthz").json()["checks"]["projections"]["status"] == "ok"


def test_manage_py_status_exits_0_when_ok_2_when_failing_and_3_when_unknown(forget_measured_lag):
    from queries_app.metrics import CACHE_KEY

    def exit_code(*checks: str) -> int:
        try:
            call_command("status", *(f"--check={name}" for name in checks), stdout=io.StringIO())
        except SystemExit as exit:
            return int(exit.code or 0)
        return 0

    # given: nothing measured, no beat, one failed saga
    from tests.integration.test_saga_operations import a_saga

    a_saga(status="failed")

    # then
    assert exit_code("database", "outbox") == 0
    assert exit_code("projections") == 3
    assert exit_code("sagas") == 2
    assert exit_code("beat") == 2
    assert exit_code() == 2  # the worst of them

    # when: the lag was just measured
    cache.set(CACHE_KEY, {"customers": {"events_behind": 0, "age_seconds": 0, "parked": 0, "measured_at": time.time()}})

    # then
    assert exit_code("projections") == 0
