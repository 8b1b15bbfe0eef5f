"""The saga executor in-process against PostgreSQL and Redis: steps, compensations, leases, the tick, operators.

The executor runs here without a worker (the end-to-end tests in tests/e2e/test_fulfilment_saga.py run it on
the real stack); providers that misbehave on purpose are fakes built on the fake provider, not mocks.
"""

import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from commands_app.bootstrap import build_mediator
from commands_app.commands import CancelOrder, OrderLineRequest, PlaceOrder, ReserveInventory
from commands_app.mediator import CommandContext
from commands_app.models import IdempotencyRecord, OrderRecord, ProductRecord
from commands_app.payments.fake import FakePaymentProvider
from commands_app.payments.port import PaymentProviderUnavailable
from outbox_app.models import OutboxEvent
from sagas_app import definitions, executor, faults, lifecycle
from sagas_app.models import Saga
from tests.factories import CustomerRecordFactory, ProductRecordFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = CommandContext(client_id="shop", scopes=frozenset({"write"}), correlation_id="corr-saga")
PROVIDER = FakePaymentProvider(cache=cache, timeout_seconds=0.01)


class SlowAuthorizationsAndBrokenVoids(FakePaymentProvider):
    """Answers authorizations after a delay and cannot void: a provider having a bad day."""

    def authorize(self, **kwargs):
        time.sleep(0.3)
        return super().authorize(**kwargs)

    def void(self, *, idempotency_key, authorization_id):
        raise PaymentProviderUnavailable("voids are down")


@pytest.fixture
def mediator():
    return build_mediator(payment_provider=PROVIDER)


def place(mediator, token="tok_ok", quantity=2, stock=5):
    customer = CustomerRecordFactory()
    product = ProductRecordFactory(stock=stock, price=Decimal("4.00"))
    placed = mediator.send(
        PlaceOrder(
            idempotency_key=uuid.uuid4(),
            customer_id=customer.customer_id,
            lines=(OrderLineRequest(product.sku, quantity),),
            payment_token=token,
        ),
        CLIENT,
    )
    return uuid.UUID(placed.body["order_id"]), product.sku


def envelope(order_id, event_type="OrderPlaced") -> dict:
    return OutboxEvent.objects.filter(aggregate_id=str(order_id), event_type=event_type).get().to_envelope()


def start(order_id) -> uuid.UUID:
    (saga_id,) = definitions.on_events([envelope(order_id)])
    return saga_id


def timeline(saga_id) -> list[tuple[str, str, str, int]]:
    saga = Saga.objects.get(pk=saga_id)
    return [(s.step, s.direction, s.status, s.attempts) for s in saga.steps.order_by("started_at", "id")]


def event_types(order_id) -> list[str]:
    rows = OutboxEvent.objects.filter(payload__order_id=str(order_id)).order_by("created_at")
    return list(rows.values_list("event_type", flat=True))


def test_an_order_placed_delivered_twice_starts_one_saga(mediator):
    order_id, _ = place(mediator)

    first = definitions.on_events([envelope(order_id)])
    second = definitions.on_events([envelope(order_id)])

    assert len(first) == 1
    assert second == []
    saga = Saga.objects.get()
    assert (saga.saga_type, saga.correlation_id) == ("fulfilment", str(order_id))
    assert (saga.status, saga.current_step) == ("running", "reserve_inventory")
    assert saga.context["causation_id"] == envelope(order_id)["event_id"]
    assert saga.context["correlation_id"] == "corr-saga"


def test_the_saga_reserves_authorizes_and_confirms_with_deterministic_keys(mediator):
    # given
    order_id, sku = place(mediator)
    saga_id = start(order_id)

    # when
    status = executor.advance(saga_id, send_through=mediator).status

    # then
    saga = Saga.objects.get()
    assert (status, saga.outcome, saga.lease_owner, saga.next_attempt_at) == ("completed", "confirmed", "", None)
    assert timeline(saga_id) == [
        ("reserve_inventory", "forward", "succeeded", 1),
        ("authorize_payment", "forward", "succeeded", 1),
        ("confirm_order", "forward", "succeeded", 1),
    ]
    keys = {s.step: s.idempotency_key for s in saga.steps.all()}
    assert keys["authorize_payment"] == uuid.uuid5(saga_id, "authorize_payment:forward")
    product = ProductRecord.objects.get(sku=sku)
    assert (product.stock, product.reserved, product.sold) == (5, 0, 2)
    assert OrderRecord.objects.get().payment_status == "authorized"
    assert event_types(order_id) == [
        "OrderPlaced",
        "InventoryReserved",
        "PaymentAuthorized",
        "OrderConfirmed",
    ]
    correlations = OutboxEvent.objects.filter(payload__order_id=str(order_id)).values_list(
        "metadata__correlation_id", flat=True
    )
    assert set(correlations) == {"corr-saga"}


def test_a_step_whose_command_ran_before_a_crash_replays_instead_of_acting_twice(mediator):
    # given: the reservation went through, but the saga never recorded it
    order_id, sku = place(mediator)
    saga_id = start(order_id)
    key = executor.step_key(saga_id, "reserve_inventory", "forward")
    saga_context = CommandContext(client_id="saga", scopes=frozenset({"system"}), correlation_id="corr-saga")
    mediator.send(ReserveInventory(idempotency_key=key, order_id=order_id), saga_context)

    # when
    executor.advance(saga_id, send_through=mediator)

    # then
    assert event_types(order_id).count("InventoryReserved") == 1
    assert ProductRecord.objects.get(sku=sku).sold == 2


class Killed(BaseException):
    """Stops the executor where it stands, as a SIGKILL would (no handler of the executor catches it)."""


@pytest.fixture
def fault():
    """Install a hook called right after a step's command answered (sagas_app/faults.py); uninstalled after."""
    installed = []

    def install(hook):
        faults.install(hook)
        installed.append(hook)

    yield install
    for hook in installed:
        faults.uninstall(hook)


def raising_once_at(step_name, error):
    """A fault hook that raises `error` right after the step's command answered, the first time only."""
    raised = set()

    def hook(saga, step, direction):
        if step == step_name and saga not in raised:
            raised.add(saga)
            raise error

    return hook


def test_a_local_step_killed_before_its_commit_keeps_neither_its_command_nor_its_record(mediator, fault):
    # given: the executor dies after the reservation answered, inside the transaction that records it
    order_id, sku = place(mediator)
    saga_id = start(order_id)

    fault(raising_once_at("reserve_inventory", Killed()))
    with pytest.raises(Killed):
        executor.advance(saga_id, send_through=mediator)

    # then: nothing of the step is kept (no reservation, no event, no idempotency record of its key)
    assert "InventoryReserved" not in event_types(order_id)
    assert ProductRecord.objects.get(sku=sku).reserved == 0
    key = executor.step_key(saga_id, "reserve_inventory", "forward")
    assert not IdempotencyRecord.objects.filter(key=key).exists()
    assert timeline(saga_id) == [("reserve_inventory", "forward", "running", 1)]

    # when: the saga resumes
    assert executor.advance(saga_id, send_through=mediator).status == "completed"

    # then: the step ran once more, and took effect once
    assert timeline(saga_id)[0] == ("reserve_inventory", "forward", "succeeded", 2)
    assert event_types(order_id).count("InventoryReserved") == 1
    product = ProductRecord.objects.get(sku=sku)
    assert (product.reserved, product.sold) == (0, 2)


def test_a_local_step_whose_transaction_raised_is_sent_again_the_regular_way_in_the_same_attempt(mediator, fault):
    # given: something raises inside the reservation's transaction, once (the database dropping the query, say)
    order_id, sku = place(mediator)
    saga_id = start(order_id)

    fault(raising_once_at("reserve_inventory", RuntimeError("connection lost mid-step")))

    # when
    status = executor.advance(saga_id, send_through=mediator).status

    # then: the rolled-back reservation ran again, outside a transaction of the executor's, and took effect once
    assert status == "completed"
    assert timeline(saga_id)[0] == ("reserve_inventory", "forward", "succeeded", 1)
    assert event_types(order_id).count("InventoryReserved") == 1
    assert ProductRecord.objects.get(sku=sku).sold == 2


def test_a_cancellation_that_lands_while_a_local_step_runs_rolls_the_step_back(mediator, fault):
    # given: the customer's cancellation reaches the saga (from another connection) while its reservation runs
    order_id, sku = place(mediator)
    saga_id = start(order_id)

    def cancel_meanwhile(saga, step, direction):
        if step != "reserve_inventory" or direction != "forward":
            return

        def request():
            try:
                lifecycle.request_cancellation("fulfilment", str(order_id), "customer_request")
            finally:
                connection.close()

        elsewhere = threading.Thread(target=request)
        elsewhere.start()
        elsewhere.join()

    fault(cancel_meanwhile)

    # when
    executor.advance(saga_id, send_through=mediator)

    # then: the reservation was rolled back with the saga's record of it, and the saga compensated from there
    saga = Saga.objects.get()
    assert (saga.status, saga.outcome, saga.reason) == ("completed", "cancelled", "customer_request")
    assert "InventoryReserved" not in event_types(order_id)
    assert ProductRecord.objects.get(sku=sku).reserved == 0
    assert OrderRecord.objects.get().cancellation_reason == "customer_request"


def test_a_declined_payment_is_compensated_in_reverse(mediator):
    order_id, sku = place(mediator, token="tok_declined")
    saga_id = start(order_id)

    executor.advance(saga_id, send_through=mediator)

    saga = Saga.objects.get()
    assert (saga.status, saga.outcome, saga.reason) == ("completed", "cancelled", "payment_declined")
    assert timeline(saga_id) == [
        ("reserve_inventory", "forward", "succeeded", 1),
        ("authorize_payment", "forward", "failed", 1),
        ("authorize_payment", "compensate", "succeeded", 1),
        ("reserve_inventory", "compensate", "succeeded", 1),
        ("place_order", "compensate", "succeeded", 1),
    ]
    assert ProductRecord.objects.get(sku=sku).reserved == 0
    order = OrderRecord.objects.get()
    assert (order.status, order.cancellation_reason, order.reserved) == ("cancelled", "payment_declined", False)


def test_not_enough_stock_cancels_the_order_with_nothing_reserved(mediator):
    order_id, sku = place(mediator, quantity=3, stock=2)
    saga_id = start(order_id)

    executor.advance(saga_id, send_through=mediator)

    saga = Saga.objects.get()
    assert (saga.outcome, saga.reason) == ("cancelled", "insufficient_stock")
    assert ProductRecord.objects.get(sku=sku).reserved == 0
    assert "PaymentAuthorized" not in event_types(order_id)


def test_a_held_lease_keeps_a_second_executor_out_until_it_expires(mediator):
    # given: another executor holds the lease
    order_id, _ = place(mediator)
    saga_id = start(order_id)
    assert executor.claim(saga_id, "other-worker")

    # when / then
    assert executor.advance(saga_id, send_through=mediator).status is None
    assert timeline(saga_id) == []

    Saga.objects.filter(pk=saga_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert executor.advance(saga_id, send_through=mediator).status == "completed"


def test_the_tick_dispatches_each_due_saga_once_until_its_lease_expires(mediator):
    # given
    now = timezone.now()
    due, waiting, leased, past_deadline = (start(place(mediator)[0]) for _ in range(4))
    Saga.objects.filter(pk=waiting).update(next_attempt_at=now + timedelta(minutes=1))
    executor.claim(leased, "busy-worker")
    Saga.objects.filter(pk=past_deadline).update(
        next_attempt_at=now + timedelta(minutes=1), deadline=now - timedelta(seconds=1)
    )

    # when
    first = executor.dispatch_due()
    second = executor.dispatch_due()

    # then
    assert set(first) == {due, past_deadline}
    assert second == []
    assert executor.advance(due, send_through=mediator).status == "completed"


def test_a_customer_cancellation_makes_a_waiting_saga_compensate(mediator):
    # given: the saga holds stock and waits on a provider that does not answer
    order_id, sku = place(mediator, token="tok_timeout")
    saga_id = start(order_id)
    assert executor.advance(saga_id, send_through=mediator).status == "running"
    assert ProductRecord.objects.get(sku=sku).reserved == 2

    # when: the customer cancels, and the OrderCancelled event arrives
    mediator.send(CancelOrder(idempotency_key=uuid.uuid4(), order_id=order_id, reason="customer_request"), CLIENT)
    assert definitions.on_events([envelope(order_id, "OrderCancelled")]) == [saga_id]
    executor.advance(saga_id, send_through=mediator)

    # then
    saga = Saga.objects.get()
    assert (saga.status, saga.outcome, saga.reason) == ("completed", "cancelled", "customer_request")
    assert ProductRecord.objects.get(sku=sku).reserved == 0
    assert event_types(order_id).count("OrderCancelled") == 1
    assert timeline(saga_id)[1] == ("authorize_payment", "forward", "abandoned", 1)


def test_a_late_authorization_is_voided_and_a_failing_void_ends_failed_until_an_operator_retries(mediator, settings):
    # given: the provider answers after the payment deadline, and cannot void for now
    settings.SAGA_PAYMENT_TIMEOUT_SECONDS = 0.1
    settings.SAGA_MAX_ATTEMPTS = 2
    order_id, sku = place(mediator)
    saga_id = start(order_id)
    bad_day = build_mediator(payment_provider=SlowAuthorizationsAndBrokenVoids(cache=cache, timeout_seconds=1))

    # when
    assert executor.advance(saga_id, send_through=bad_day).status == "compensating"
    assert executor.advance(saga_id, send_through=bad_day).status == "failed"

    # then: failed, visibly, holding what it could not undo
    saga = Saga.objects.get()
    assert (saga.current_step, saga.reason) == ("authorize_payment", "payment_timeout")
    assert "voids are down" in saga.last_error
    assert OrderRecord.objects.get().payment_status == "authorized"

    # when: an operator retries once the provider is back
    assert lifecycle.retry(saga_id)
    assert executor.advance(saga_id, send_through=mediator).status == "completed"

    # then
    saga = Saga.objects.get()
    assert (saga.outcome, saga.reason) == ("cancelled", "payment_timeout")
    assert [a.voided for a in PROVIDER.authorizations(order_id)] == [True]
    assert ProductRecord.objects.get(sku=sku).reserved == 0
    assert ("authorize_payment", "compensate", "succeeded", 3) in timeline(saga_id)


def test_an_operator_abort_compensates_a_waiting_saga_and_completed_sagas_refuse_it(mediator):
    waiting_order, sku = place(mediator, token="tok_timeout")
    waiting = start(waiting_order)
    executor.advance(waiting, send_through=mediator)
    done = start(place(mediator)[0])
    executor.advance(done, send_through=mediator)

    assert lifecycle.abort(waiting)
    assert not lifecycle.abort(done)
    executor.advance(waiting, send_through=mediator)

    saga = Saga.objects.get(pk=waiting)
    assert (saga.outcome, saga.reason) == ("cancelled", "customer_request")
    assert ProductRecord.objects.get(sku=sku).reserved == 0


class AuthorizesThenDies(FakePaymentProvider):
    """Authorizes, then its caller dies before the command commits: the order's side rolls back, the provider's
    authorization stays (a worker killed inside AuthorizePayment; the end-to-end test kills a real one)."""

    def authorize(self, **kwargs):
        super().authorize(**kwargs)
        raise RuntimeError("the worker died here")


def test_an_authorization_the_order_never_recorded_is_voided_when_the_step_times_out(mediator, settings):
    # given: the provider authorized under the step's key, the order never recorded it, and the deadline passed
    settings.SAGA_PAYMENT_TIMEOUT_SECONDS = 0.2
    order_id, sku = place(mediator)
    saga_id = start(order_id)
    dying = build_mediator(payment_provider=AuthorizesThenDies(cache=cache, timeout_seconds=1))
    assert executor.advance(saga_id, send_through=dying).status == "running"
    assert OrderRecord.objects.get().payment_status == "none"
    assert [a.voided for a in PROVIDER.authorizations(order_id)] == [False]
    time.sleep(0.3)

    # when
    assert executor.advance(saga_id, send_through=mediator).status == "completed"

    # then: cancelled for the timeout, and nothing authorized survives it
    saga = Saga.objects.get()
    assert (saga.outcome, saga.reason) == ("cancelled", "payment_timeout")
    (authorization,) = PROVIDER.authorizations(order_id)
    assert authorization.voided
    assert saga.steps.get(step="authorize_payment", direction="compensate").result == {
        "order_id": str(order_id),
        "voided": True,
        "authorization_id": authorization.authorization_id,
    }
    assert ProductRecord.objects.get(sku=sku).reserved == 0
    # and the key authorizes nothing any more
    key = str(executor.step_key(saga_id, "authorize_payment", "forward"))
    assert PROVIDER.authorize(idempotency_key=key, order_id=order_id, amount=Decimal(8), token="tok_ok").reason
