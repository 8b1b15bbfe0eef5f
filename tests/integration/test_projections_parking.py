"""Parking: an event that keeps failing, or keeps waiting on a gap, is parked and retried; nothing else waits."""

import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command

from queries_app.models import CustomerReadModel, OrderReadModel, ParkedEvent
from queries_app.projection_engine.apply import Outcome, apply_once, project
from queries_app.projections import BY_NAME
from queries_app.tasks import project_events
from tests.streams import CustomerStream, OrderStream, line, write_to_log

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def few_attempts(settings):
    settings.PROJECTION_MAX_ATTEMPTS = 3
    settings.PROJECTION_GAP_RETRY_SECONDS = 0


def deliver(*envelopes):
    """Run the Celery task in this process, retries included (as a worker would, without the waits)."""
    project_events.apply(args=[list(envelopes)])


def poisoned_order(ada: CustomerStream) -> OrderStream:
    order = OrderStream(customer_id=ada.customer_id)
    placed = order.placed(line("SKU-1", 1, "10.00"))
    placed["payload"]["total"] = "ten euros"
    deliver(ada.registered(), placed)
    return order


def test_an_event_whose_apply_keeps_failing_is_parked_and_other_projections_go_on():
    # given
    ada = CustomerStream()

    # when
    order = poisoned_order(ada)

    # then
    parked = ParkedEvent.objects.get()
    assert (parked.projection, parked.event_type, parked.reason, parked.attempts) == (
        "orders",
        "OrderPlaced",
        "failed",
        3,
    )
    assert "InvalidOperation" in parked.error
    assert parked.envelope["aggregate_id"] == order.order_id
    assert CustomerReadModel.objects.get(customer_id=ada.customer_id).orders_count == 1
    assert not OrderReadModel.objects.exists()


def test_later_events_of_a_parked_aggregate_wait_behind_it_and_are_parked_too():
    # given
    ada = CustomerStream()
    order = poisoned_order(ada)

    # when
    deliver(order.payment_authorized())

    # then
    assert list(ParkedEvent.objects.order_by("aggregate_version").values_list("event_type", "reason")) == [
        ("OrderPlaced", "failed"),
        ("PaymentAuthorized", "gap"),
    ]


def test_an_event_parked_on_a_gap_is_applied_as_soon_as_the_gap_fills():
    # given
    ada = CustomerStream()
    registered, changed = ada.registered(email="ada@example.org"), ada.email_changed("countess@example.org")
    deliver(changed)
    assert set(ParkedEvent.objects.values_list("projection", "reason")) == {("customers", "gap"), ("orders", "gap")}

    # when
    run = project([registered])

    # then
    assert run.applied == 4
    assert not ParkedEvent.objects.exists()
    assert CustomerReadModel.objects.get(customer_id=ada.customer_id).email == "countess@example.org"


def parked_behind_an_event_applied_another_way() -> CustomerStream:
    ada = CustomerStream()
    registered, changed = ada.registered(email="ada@example.org"), ada.email_changed("countess@example.org")
    deliver(changed)
    for name in ("customers", "orders"):
        assert apply_once(BY_NAME[name], registered)[0] is Outcome.APPLIED
    return ada


def test_retry_parked_events_applies_the_parked_events_that_can_go_now():
    # given
    ada = parked_behind_an_event_applied_another_way()

    # when
    call_command("retry_parked_events")

    # then
    assert not ParkedEvent.objects.exists()
    assert CustomerReadModel.objects.get(customer_id=ada.customer_id).email == "countess@example.org"


def test_the_admin_action_retries_the_selected_parked_events(admin_client):
    # given
    ada = parked_behind_an_event_applied_another_way()
    selected = list(ParkedEvent.objects.values_list("pk", flat=True))

    # when
    response = admin_client.post(
        "/admin/queries_app/parkedevent/", {"action": "retry", "_selected_action": selected}, follow=True
    )

    # then
    assert response.status_code == 200
    assert "Applied 2 event(s); 0 still parked." in response.content.decode()
    assert CustomerReadModel.objects.get(customer_id=ada.customer_id).email == "countess@example.org"


def test_a_parked_event_that_still_fails_stays_parked_with_one_more_attempt(capsys):
    # given
    poisoned_order(CustomerStream())

    # when
    call_command("retry_parked_events", "orders")

    # then
    assert "applied 0 event(s); 1 still parked" in capsys.readouterr().out
    assert ParkedEvent.objects.get().attempts == 4


def test_projection_status_shows_the_lag_behind_the_log_and_the_parked_events(capsys):
    # given: three customer events in the log, one of them applied
    ada, grace = CustomerStream(), CustomerStream()
    logged = write_to_log([ada.registered(), ada.email_changed("countess@example.org"), grace.registered()])
    project(logged[:1])
    poisoned_order(CustomerStream())

    # when
    call_command("projection_status", "customers", "orders")

    # then
    lines = {row.split()[0]: row.split() for row in capsys.readouterr().out.splitlines()[1:]}
    applied, behind, parked = lines["customers"][1], lines["customers"][2], lines["customers"][4]
    assert (applied, behind, parked) == ("3", "2", "0")  # the poisoned order's events never reached the log
    assert lines["orders"][4] == "1"
    assert CustomerReadModel.objects.get(customer_id=ada.customer_id).lifetime_value == Decimal("0")


def test_recording_an_attempt_on_a_parked_event_another_worker_just_applied_is_harmless():
    # given: a parked event whose row another worker deleted (it applied the event) after we read it
    from queries_app.models import ParkedEvent
    from queries_app.projection_engine.apply import Outcome, _record_attempt

    parked = ParkedEvent.objects.create(
        projection="customers",
        event_id=uuid.uuid4(),
        event_type="CustomerRegistered",
        aggregate_type="Customer",
        aggregate_id="c-1",
        aggregate_version=2,
        envelope={},
        reason=ParkedEvent.Reason.GAP,
    )
    ParkedEvent.objects.filter(pk=parked.pk).delete()

    # when / then: no DatabaseError, so the rest of the batch goes on
    _record_attempt(parked, Outcome.WAITING, "")
    assert not ParkedEvent.objects.exists()
