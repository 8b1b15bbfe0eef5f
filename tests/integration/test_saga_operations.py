"""What operators see and do: the saga admin (list, timeline, retry, abort) and `manage.py sagas`."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.utils import timezone

from sagas_app import domain, fulfilment
from sagas_app.models import Saga, SagaStep

pytestmark = pytest.mark.django_db


def a_saga(**fields) -> Saga:
    defaults = {
        "saga_type": fulfilment.FULFILMENT,
        "correlation_id": str(uuid.uuid4()),
        "current_step": fulfilment.RESERVE_INVENTORY,
        "next_attempt_at": timezone.now(),
    }
    return Saga.objects.create(**{**defaults, **fields})


def a_failed_compensation() -> Saga:
    saga = a_saga(
        status=domain.FAILED,
        current_step=fulfilment.AUTHORIZE_PAYMENT,
        reason=fulfilment.PAYMENT_TIMEOUT,
        attempts=10,
        last_error="503 PAYMENT_PROVIDER_UNAVAILABLE: voids are down (after 10 attempts)",
        next_attempt_at=None,
    )
    now = timezone.now()
    for step, direction, status in [
        (fulfilment.RESERVE_INVENTORY, domain.FORWARD, "succeeded"),
        (fulfilment.AUTHORIZE_PAYMENT, domain.FORWARD, "abandoned"),
        (fulfilment.AUTHORIZE_PAYMENT, domain.COMPENSATE, "failed"),
    ]:
        SagaStep.objects.create(
            saga=saga, step=step, direction=direction, status=status, idempotency_key=uuid.uuid4(), started_at=now
        )
    return saga


def test_the_admin_lists_sagas_by_status_and_age_and_shows_the_timeline(admin_client):
    # given
    failed = a_failed_compensation()
    a_saga(status=domain.COMPLETED, outcome=fulfilment.CONFIRMED)
    Saga.objects.filter(pk=failed.pk).update(created_at=timezone.now() - timedelta(days=2))

    # when
    by_status = admin_client.get("/admin/sagas_app/saga/", {"status": "failed"})
    by_age = admin_client.get("/admin/sagas_app/saga/", {"age": "1d"})
    detail = admin_client.get(f"/admin/sagas_app/saga/{failed.pk}/change/")

    # then
    assert by_status.status_code == by_age.status_code == detail.status_code == 200
    assert by_status.context["cl"].result_count == by_age.context["cl"].result_count == 1
    page = detail.content.decode()
    assert "voids are down" in page
    assert page.count("authorize_payment") >= 2
    assert "abandoned" in page
    assert 'name="_save"' not in page  # read-only


def test_admin_actions_retry_and_abort_queue_the_saga(admin_client, django_capture_on_commit_callbacks):
    # given
    failed = a_failed_compensation()
    running = a_saga()
    done = a_saga(status=domain.COMPLETED, outcome=fulfilment.CONFIRMED)

    # when
    with django_capture_on_commit_callbacks() as queued:
        admin_client.post(
            "/admin/sagas_app/saga/", {"action": "retry_sagas", "_selected_action": [str(failed.pk), str(done.pk)]}
        )
        admin_client.post("/admin/sagas_app/saga/", {"action": "abort_sagas", "_selected_action": [str(running.pk)]})

    # then
    failed.refresh_from_db()
    running.refresh_from_db()
    assert (failed.status, failed.attempts) == (domain.COMPENSATING, 0)
    assert (running.status, running.requested_cancellation) == (domain.RUNNING, fulfilment.CUSTOMER_REQUEST)
    assert Saga.objects.get(pk=done.pk).status == domain.COMPLETED
    assert len(queued) == 2


def test_the_admin_actions_need_the_operate_permission(client, django_user_model):
    staff = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_saga"))
    client.force_login(staff)

    page = client.get("/admin/sagas_app/saga/")

    assert page.status_code == 200
    assert "retry_sagas" not in page.content.decode()


def test_the_sagas_command_lists_resumes_and_aborts():
    # given
    failed = a_failed_compensation()
    running = a_saga()
    out = StringIO()

    # when
    call_command("sagas", "list", "--status", "failed", stdout=out)
    call_command("sagas", "resume", str(failed.pk), stdout=out)
    call_command("sagas", "abort", str(running.pk), "--reason", "payment_timeout", stdout=out)

    # then
    text = out.getvalue()
    assert str(failed.pk) in text
    assert str(running.pk) not in text.split("resumed")[0]
    assert "voids are down" in text
    assert Saga.objects.get(pk=failed.pk).status == domain.COMPENSATING
    assert Saga.objects.get(pk=running.pk).requested_cancellation == fulfilment.PAYMENT_TIMEOUT


def test_the_sagas_command_refuses_a_completed_or_unknown_saga():
    done = a_saga(status=domain.COMPLETED, outcome=fulfilment.CONFIRMED)

    with pytest.raises(CommandError):
        call_command("sagas", "resume", str(done.pk))
    with pytest.raises(CommandError):
        call_command("sagas", "abort", str(uuid.uuid4()))
