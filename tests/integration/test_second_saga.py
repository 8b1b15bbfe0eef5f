"""A second saga, defined in the tests only (tests/sagas/promotion.py), run by the same executor as fulfilment's:
its steps go through the mediator with deterministic keys, a refusal compensates, a step times out."""

import time
import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache

from commands_app.bootstrap import build_mediator, default_fast_path
from commands_app.commands import AddProduct
from commands_app.mediator import CommandContext
from commands_app.middleware.idempotency import fingerprint
from commands_app.models import ProductRecord
from commands_app.payments.fake import FakePaymentProvider
from outbox_app.models import OutboxEvent
from sagas_app import definitions, domain, executor
from sagas_app.models import Saga
from tests.sagas import promotion

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = CommandContext(client_id="shop", scopes=frozenset({"write", "catalog"}), correlation_id="corr-promotion")


@pytest.fixture(autouse=True)
def registered():
    promotion.register()
    yield
    definitions.unregister(promotion.PROMOTION)


@pytest.fixture
def mediator():
    return build_mediator(payment_provider=FakePaymentProvider(cache=cache, timeout_seconds=0.01))


def a_promotion(mediator, *, quantity: int, stock: int = 10) -> uuid.UUID:
    sku = f"PROMO-{uuid.uuid4().hex[:8]}"
    added = mediator.send(
        AddProduct(
            idempotency_key=uuid.uuid4(), sku=sku, name="Lamp", description="", price=Decimal("20.00"), stock=stock
        ),
        CLIENT,
    )
    assert added.ok, added
    envelope = OutboxEvent.objects.get(aggregate_id=sku, event_type="ProductAdded").to_envelope()
    saga_id = promotion.start(envelope, promotion_price=Decimal("15.00"), quantity=quantity)
    assert saga_id is not None
    assert promotion.start(envelope, promotion_price=Decimal("15.00"), quantity=quantity) is None  # keyed by sku
    return saga_id


def timeline(saga: Saga) -> list[tuple[str, str, str]]:
    return [(s.step, s.direction, s.status) for s in saga.steps.order_by("started_at", "id")]


def test_the_second_saga_runs_its_steps_through_the_mediator_with_deterministic_keys(mediator):
    saga_id = a_promotion(mediator, quantity=5)

    assert executor.advance(saga_id, send_through=mediator).status == "completed"

    saga = Saga.objects.get(pk=saga_id)
    assert (saga.saga_type, saga.outcome) == ("promotion", "promoted")
    assert timeline(saga) == [("discount", "forward", "succeeded"), ("restock", "forward", "succeeded")]
    assert {s.step: s.idempotency_key for s in saga.steps.all()} == {
        "discount": executor.step_key(saga_id, "discount", "forward"),
        "restock": executor.step_key(saga_id, "restock", "forward"),
    }
    product = ProductRecord.objects.get(sku=saga.correlation_id)
    assert (product.price, product.stock) == (Decimal("15.00"), 15)


def test_a_refused_step_compensates_the_steps_before_it(mediator):
    # given: a restock over the product's stock limit
    saga_id = a_promotion(mediator, quantity=10**9)

    # when
    executor.advance(saga_id, send_through=mediator)

    # then: the restock has nothing to undo; the discount is taken back
    saga = Saga.objects.get(pk=saga_id)
    assert (saga.status, saga.outcome, saga.reason) == ("completed", "withdrawn", "stock_limit")
    assert timeline(saga) == [
        ("discount", "forward", "succeeded"),
        ("restock", "forward", "failed"),
        ("discount", "compensate", "succeeded"),
    ]
    product = ProductRecord.objects.get(sku=saga.correlation_id)
    assert (product.price, product.stock) == (Decimal("20.00"), 10)


def test_a_step_past_its_timeout_is_abandoned_and_compensated(mediator, settings):
    # given: the restock step's key held by an executor that died mid-step (its claim in the fast path), and the
    # step's timeout, read from its setting, short
    settings.PROMOTION_RESTOCK_TIMEOUT_SECONDS = 0.5
    saga_id = a_promotion(mediator, quantity=5)
    saga = Saga.objects.get(pk=saga_id)
    key = executor.step_key(saga_id, "restock", "forward")
    restock = promotion.restock_command(
        domain.StepInput(saga_id, saga.correlation_id, saga.context, key, "", lambda *_: key)
    )
    default_fast_path().claim(f"saga:{key}", fingerprint(restock), 60)

    # when: the step waits on the claim until its deadline, then gives up
    runs = [executor.advance(saga_id, send_through=mediator)]
    while runs[-1].status == "running" and len(runs) < 20:
        time.sleep(runs[-1].resume_in or 0.05)
        runs.append(executor.advance(saga_id, send_through=mediator))

    # then
    saga = Saga.objects.get(pk=saga_id)
    assert (saga.status, saga.outcome, saga.reason) == ("completed", "withdrawn", "restock_timeout")
    assert timeline(saga) == [
        ("discount", "forward", "succeeded"),
        ("restock", "forward", "abandoned"),
        ("discount", "compensate", "succeeded"),
    ]
    restock = saga.steps.get(step="restock")
    assert (restock.attempts, restock.error) == (1, "restock_timeout")  # it waited for the claim, then its deadline
    product = ProductRecord.objects.get(sku=saga.correlation_id)
    assert (product.price, product.stock) == (Decimal("20.00"), 10)


def test_a_saga_type_registered_twice_with_another_definition_is_refused():
    other = domain.SagaDefinition(promotion.PROMOTION, steps=(domain.Step("x", forward=str),))

    with pytest.raises(ValueError, match="registered already"):
        definitions.register(other)
    assert definitions.definition(promotion.PROMOTION) is promotion.DEFINITION
