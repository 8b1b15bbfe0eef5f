"""The fulfilment saga end to end: HTTP in, a real worker and beat run the saga, the write model shows the outcome.

Each class runs its own worker and beat (one stack at a time), with the timeouts shortened through the
environment. After every test the invariants hold: no stock held for a cancelled order, no live
authorization for an order that is not confirmed, and available = stock - reserved - sold.
"""

from collections import Counter
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.utils import timezone

from commands_app.models import OrderRecord, ProductRecord
from commands_app.payments.fake import FakePaymentProvider
from outbox_app.models import OutboxEvent
from sagas_app.executor import step_key
from sagas_app.models import Saga
from sagas_app.reconcile import WATERMARK_KEY
from tests.conftest import command, eventually
from tests.saga_faults import PROVIDER_AUTHORIZED, marker
from tests.stack import Stack, wait_until_idle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]

FAST = {
    # Room for two retries of a flaky provider: on RabbitMQ a retry waits at least a second (the broker holds it).
    "SAGA_PAYMENT_TIMEOUT_SECONDS": "4",
    "PAYMENT_PROVIDER_TIMEOUT_SECONDS": "0.3",
    "SAGA_LEASE_SECONDS": "2",
    "SAGA_RETRY_BASE_SECONDS": "0.1",
    "SAGA_RETRY_MAX_SECONDS": "0.5",
}
EVERY_STEP = [
    "reserve_inventory:forward",
    "authorize_payment:forward",
    "confirm_order:forward",
    "authorize_payment:compensate",
    "reserve_inventory:compensate",
    "place_order:compensate",
]
PROVIDER = FakePaymentProvider(cache=cache, timeout_seconds=0)


def run_stack(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, app: str = "config", **env: str
) -> Iterator[Stack]:
    stack = Stack(env={**stack_env, **FAST, **env}, logs=tmp_path_factory.mktemp("saga-stack"))
    stack.start_worker(app=app)
    stack.start_beat()
    yield stack
    stack.stop_all()


@pytest.fixture(autouse=True)
def quiet_before_the_flush(transactional_db):
    """These stacks are the test's own (not celery_stack): wait for them before the flush, too."""
    yield
    wait_until_idle()


@pytest.fixture
def shop(make_api_client):
    return make_api_client("read", "write", "catalog")


def place_order(shop, *, token: str, quantity: int = 2, stock: int = 5) -> tuple[str, str]:
    sku = f"SKU-{token}-{quantity}-{stock}"
    product = {"sku": sku, "name": "Lamp", "description": "", "price": "9.90", "stock": stock}
    assert command(shop, "add-product", product).status_code == 201
    customer = command(shop, "register-customer", {"first_name": "Ada", "last_name": "L", "email": f"{sku}@x.org"})
    placed = command(
        shop,
        "place-order",
        {
            "customer_id": customer.json()["customer_id"],
            "lines": [{"sku": sku, "quantity": quantity}],
            "payment_token": token,
        },
    )
    assert placed.status_code == 202, placed.json()
    return placed.json()["order_id"], sku


def finished_saga(order_id: str, timeout: float = 30) -> Saga:
    return eventually(
        lambda: Saga.objects.filter(correlation_id=order_id, status__in=["completed", "failed"]).first(),
        timeout=timeout,
    )


def order_events(order_id: str) -> Counter[str]:
    return Counter(OutboxEvent.objects.filter(payload__order_id=order_id).values_list("event_type", flat=True))


def assert_invariants() -> None:
    assert not Saga.objects.exclude(status="completed").exists(), "every saga ends completed, none failed"
    held: Counter[str] = Counter()
    sold: Counter[str] = Counter()
    for order in OrderRecord.objects.all():
        live = [a for a in PROVIDER.authorizations(order.order_id) if not a.voided]
        if order.status == "confirmed":
            assert [a.authorization_id for a in live] == [order.authorization_id]
        else:
            assert live == [], f"order {order.order_id} is {order.status} but holds an authorization"
        if order.status == "cancelled":
            assert not order.reserved
        for line in order.lines:
            if order.reserved:
                held[line["sku"]] += line["quantity"]
            if order.status == "confirmed":
                sold[line["sku"]] += line["quantity"]
    for product in ProductRecord.objects.all():
        assert (product.reserved, product.sold) == (held[product.sku], sold[product.sku])
        latest = OutboxEvent.objects.filter(aggregate_id=product.sku).order_by("-aggregate_version").first()
        assert latest is not None
        assert latest.payload["available"] == product.stock - product.reserved - product.sold


class TestOutcomes:
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def stack(cls, stack_env, tmp_path_factory):
        yield from run_stack(stack_env, tmp_path_factory)

    def test_a_paid_order_is_confirmed_and_its_stock_sold(self, shop):
        # when
        order_id, sku = place_order(shop, token="tok_ok")

        # then
        saga = finished_saga(order_id)
        assert (saga.status, saga.outcome) == ("completed", "confirmed")
        order = OrderRecord.objects.get(order_id=order_id)
        assert (order.status, order.payment_status) == ("confirmed", "authorized")
        product = ProductRecord.objects.get(sku=sku)
        assert (product.stock, product.reserved, product.sold) == (5, 0, 2)
        assert order_events(order_id) == Counter(
            OrderPlaced=1, InventoryReserved=1, PaymentAuthorized=1, OrderConfirmed=1
        )
        assert_invariants()

    def test_not_enough_stock_cancels_the_order_and_reserves_nothing(self, shop):
        order_id, sku = place_order(shop, token="tok_ok", quantity=3, stock=2)

        saga = finished_saga(order_id)
        assert (saga.outcome, saga.reason) == ("cancelled", "insufficient_stock")
        order = OrderRecord.objects.get(order_id=order_id)
        assert (order.status, order.cancellation_reason) == ("cancelled", "insufficient_stock")
        assert ProductRecord.objects.get(sku=sku).reserved == 0
        assert order_events(order_id)["InventoryReserved"] == 0
        assert PROVIDER.authorizations(order_id) == []
        assert_invariants()

    def test_a_declined_card_releases_the_reservation_and_cancels(self, shop):
        order_id, sku = place_order(shop, token="tok_declined")

        saga = finished_saga(order_id)
        assert (saga.outcome, saga.reason) == ("cancelled", "payment_declined")
        assert OrderRecord.objects.get(order_id=order_id).cancellation_reason == "payment_declined"
        assert ProductRecord.objects.get(sku=sku).reserved == 0
        assert order_events(order_id) == Counter(
            OrderPlaced=1, InventoryReserved=1, PaymentDeclined=1, InventoryReleased=1, OrderCancelled=1
        )
        assert_invariants()

    def test_a_provider_that_never_answers_times_out_after_the_deadline(self, shop):
        order_id, sku = place_order(shop, token="tok_timeout")

        saga = finished_saga(order_id)
        assert (saga.outcome, saga.reason) == ("cancelled", "payment_timeout")
        assert OrderRecord.objects.get(order_id=order_id).cancellation_reason == "payment_timeout"
        assert ProductRecord.objects.get(sku=sku).reserved == 0
        payment = saga.steps.get(step="authorize_payment", direction="forward")
        assert payment.status == "abandoned"
        assert payment.attempts >= 2
        assert (saga.updated_at - saga.created_at).total_seconds() >= 4
        assert_invariants()

    def test_a_flaky_provider_is_retried_with_the_same_key_and_authorizes_once(self, shop):
        order_id, sku = place_order(shop, token="tok_flaky")

        saga = finished_saga(order_id)
        assert saga.outcome == "confirmed"
        assert saga.steps.get(step="authorize_payment", direction="forward").attempts == 3
        assert PROVIDER.attempts(str(step_key(saga.saga_id, "authorize_payment", "forward"))) == 3
        assert len(PROVIDER.authorizations(order_id)) == 1
        assert ProductRecord.objects.get(sku=sku).sold == 2
        assert_invariants()


class TestCustomerCancels:
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def stack(cls, stack_env, tmp_path_factory):
        # A payment deadline far away: the saga waits on the provider until the customer cancels.
        yield from run_stack(stack_env, tmp_path_factory, SAGA_PAYMENT_TIMEOUT_SECONDS="120")

    def test_a_cancellation_before_confirmation_compensates_the_saga(self, shop):
        # given: stock held, the payment step retrying against a provider that does not answer
        order_id, sku = place_order(shop, token="tok_timeout")
        eventually(
            lambda: Saga.objects.filter(
                correlation_id=order_id, current_step="authorize_payment", attempts__gte=1
            ).first()
        )

        # when
        cancelled = command(shop, "cancel-order", {"order_id": order_id, "reason": "not needed any more"})

        # then
        assert cancelled.status_code == 202, cancelled.json()
        saga = finished_saga(order_id)
        assert (saga.outcome, saga.reason) == ("cancelled", "customer_request")
        compensations = list(saga.steps.filter(direction="compensate").values_list("step", "status"))
        assert compensations == [
            ("authorize_payment", "succeeded"),
            ("reserve_inventory", "succeeded"),
            ("place_order", "succeeded"),
        ]
        assert ProductRecord.objects.get(sku=sku).reserved == 0
        assert order_events(order_id)["OrderCancelled"] == 1
        assert order_events(order_id)["InventoryReleased"] == 1
        assert_invariants()


class TestWorkerKilled:
    """The executor SIGKILLs its own process right after each step's command answered, once per step (the fault
    injected by tests/saga_crash_worker.py, the worker's app)."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def stack(cls, stack_env, tmp_path_factory):
        # The payment deadline outlasts a crash's lease expiry, so the resumed step is not timed out.
        env = {"SAGA_CRASH_AFTER": ",".join(EVERY_STEP), "SAGA_PAYMENT_TIMEOUT_SECONDS": "60"}
        yield from run_stack(stack_env, tmp_path_factory, app="tests.saga_crash_worker", **env)

    def test_killed_after_every_forward_step_the_order_is_confirmed_once(self, shop, stack):
        order_id, sku = place_order(shop, token="tok_ok")

        saga = finished_saga(order_id, timeout=60)
        assert saga.outcome == "confirmed"
        assert_crashed_after(saga, EVERY_STEP[:3], stack)
        assert order_events(order_id) == Counter(
            OrderPlaced=1, InventoryReserved=1, PaymentAuthorized=1, OrderConfirmed=1
        )
        assert len(PROVIDER.authorizations(order_id)) == 1
        product = ProductRecord.objects.get(sku=sku)
        assert (product.reserved, product.sold) == (0, 2)
        assert_invariants()

    def test_killed_after_every_step_and_compensation_the_order_is_cancelled_once(self, shop, stack):
        order_id, sku = place_order(shop, token="tok_declined")

        saga = finished_saga(order_id, timeout=60)
        assert (saga.outcome, saga.reason) == ("cancelled", "payment_declined")
        assert_crashed_after(saga, [p for p in EVERY_STEP if p != "confirm_order:forward"], stack)
        assert order_events(order_id) == Counter(
            OrderPlaced=1, InventoryReserved=1, PaymentDeclined=1, InventoryReleased=1, OrderCancelled=1
        )
        assert ProductRecord.objects.get(sku=sku).reserved == 0
        assert_invariants()


def assert_crashed_after(saga: Saga, points: list[str], stack: Stack) -> None:
    """Each point killed the worker once, and the step ran again (replayed) after the crash."""
    for point in points:
        assert cache.get(marker(saga.saga_id, point)) == 1, point
        step, direction = point.split(":")
        assert saga.steps.get(step=step, direction=direction).attempts == 2, point
    log = (stack.logs / "worker.log").read_text(errors="replace")
    assert log.count("signal 9 (SIGKILL)") >= len(points)


class TestKilledInsideThePaymentStep:
    """The chaos run's finding: a worker killed inside AuthorizePayment after the provider authorized (the order's
    side rolled back), and the step's deadline passing before the saga resumes, used to leave a live authorization
    on a cancelled order: VoidPayment voided only what the order recorded."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def stack(cls, stack_env, tmp_path_factory):
        # The payment deadline (1 s) passes before the killed worker's lease (2 s) expires: the resumed saga
        # compensates the step instead of running it again.
        env = {"SAGA_CRASH_AFTER": PROVIDER_AUTHORIZED, "SAGA_PAYMENT_TIMEOUT_SECONDS": "1"}
        yield from run_stack(stack_env, tmp_path_factory, app="tests.saga_crash_worker", **env)

    def test_the_authorization_the_order_never_recorded_is_voided_with_the_cancellation(self, shop, stack):
        order_id, sku = place_order(shop, token="tok_ok")

        saga = finished_saga(order_id, timeout=60)
        key = str(step_key(saga.saga_id, "authorize_payment", "forward"))
        assert cache.get(marker(key, PROVIDER_AUTHORIZED)) == 1, "the worker was killed inside the payment step"
        assert (saga.outcome, saga.reason) == ("cancelled", "payment_timeout")
        order = OrderRecord.objects.get(order_id=order_id)
        assert (order.status, order.payment_status) == ("cancelled", "none")
        (authorization,) = PROVIDER.authorizations(order_id)
        assert authorization.voided
        void = saga.steps.get(step="authorize_payment", direction="compensate")
        assert void.result["authorization_id"] == authorization.authorization_id
        assert ProductRecord.objects.get(sku=sku).reserved == 0
        assert_invariants()


class TestLostDelivery:
    def test_an_order_whose_placed_event_was_lost_on_the_way_still_gets_its_saga(
        self, shop, stack_env, tmp_path_factory
    ):
        # given: the order placed while no worker runs, its OrderPlaced marked published as a relay does, and
        # the delivery lost (no message on the broker, no saga): only beat's reconciliation can start the saga
        order_id, sku = place_order(shop, token="tok_ok")
        lost = OutboxEvent.objects.filter(event_type="OrderPlaced", payload__order_id=order_id)
        assert lost.update(published_at=timezone.now()) == 1
        cache.delete(WATERMARK_KEY)

        # when
        stack = Stack(
            env={**stack_env, **FAST, "SAGA_RECONCILE_AFTER_SECONDS": "1", "SAGA_RECONCILE_INTERVAL": "1"},
            logs=tmp_path_factory.mktemp("saga-stack"),
        )
        stack.start_worker()
        stack.start_beat()
        try:
            saga = finished_saga(order_id, timeout=60)
        finally:
            stack.stop_all()

        # then
        assert (saga.status, saga.outcome) == ("completed", "confirmed")
        assert ProductRecord.objects.get(sku=sku).sold == 2
        assert order_events(order_id)["OrderPlaced"] == 1
        assert_invariants()
