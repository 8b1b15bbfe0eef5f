"""VoidPayment (saga compensation): give the order's authorization back; a no-op when none is held."""

import copy
import uuid

from uuid_utils.compat import uuid7

from commands_app.commands import VoidPayment
from commands_app.domain.order import Order
from commands_app.handlers.void_payment import void_payment
from commands_app.payments.port import Authorized
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import an_order
from tests.unit.handlers.provider import ScriptedProvider


def void(order_id) -> VoidPayment:
    return VoidPayment(idempotency_key=uuid.uuid4(), order_id=order_id)


def authorized(**fields) -> Order:
    return an_order(payment_status="authorized", authorization_id="auth_1", **fields)


def test_an_authorization_is_voided_with_the_provider_and_recorded():
    order = authorized()
    uow = FakeUnitOfWork.holding(order)
    provider = ScriptedProvider(Authorized("auth_1"))
    command = void(order.order_id)

    result = decide(void_payment, command, uow, provider=provider)

    assert result == Ok({"order_id": str(order.order_id), "voided": True, "authorization_id": "auth_1"})
    assert uow.get(Order, order.order_id).payment_status == "voided"
    assert uow.event_types() == ["PaymentVoided"]
    assert provider.calls == [("void", {"idempotency_key": str(command.idempotency_key), "authorization_id": "auth_1"})]


def test_an_order_without_an_authorization_is_a_no_op_without_the_provider():
    order = an_order()
    uow = FakeUnitOfWork.holding(order)
    provider = ScriptedProvider(Authorized("x"))

    result = decide(void_payment, void(order.order_id), uow, provider=provider)

    assert isinstance(result, Ok) and result.value["voided"] is False
    assert provider.calls == [] and uow.events == []


def test_an_unknown_or_confirmed_order_or_a_silent_provider_is_refused_and_nothing_is_committed():
    for order, answer, code in [
        (None, Authorized("x"), "ORDER_NOT_FOUND"),
        (authorized(status="confirmed"), Authorized("x"), "ORDER_ALREADY_CONFIRMED"),
        (authorized(), None, "PAYMENT_PROVIDER_UNAVAILABLE"),
    ]:
        uow = FakeUnitOfWork.holding(*([order] if order else []))
        before = copy.deepcopy(uow.stored)

        result = decide(
            void_payment, void(order.order_id if order else uuid7()), uow, provider=ScriptedProvider(answer)
        )

        assert isinstance(result, Error) and result.code == code
        assert_nothing_committed(uow, before)


def test_the_orders_lock_is_taken_with_its_read():
    order = authorized()
    uow = FakeUnitOfWork.holding(order)

    decide(void_payment, void(order.order_id), uow, provider=ScriptedProvider(Authorized("auth_1")))

    assert uow.journal == [Lock("order", str(order.order_id)), Read("Order", (order.order_id,))]


def test_an_authorization_the_order_never_recorded_is_voided_by_the_key_it_was_made_with():
    # given: the provider authorized under the step's key, and the order's side rolled back (a killed worker)
    order = an_order()
    uow = FakeUnitOfWork.holding(order)
    provider = ScriptedProvider(Authorized("auth_lost"))
    authorization_key = uuid.uuid4()
    command = VoidPayment(idempotency_key=uuid.uuid4(), order_id=order.order_id, authorization_key=authorization_key)

    # when
    result = decide(void_payment, command, uow, provider=provider)

    # then: the provider's authorization is voided; the order, which never held it, records nothing
    assert result == Ok({"order_id": str(order.order_id), "voided": True, "authorization_id": "auth_lost"})
    assert provider.calls == [
        ("void_authorized_with", {"idempotency_key": str(command.idempotency_key), "key": str(authorization_key)})
    ]
    assert uow.events == []


def test_voiding_by_key_with_the_provider_away_is_refused_and_nothing_is_committed():
    order = an_order()
    uow = FakeUnitOfWork.holding(order)
    before = copy.deepcopy(uow.stored)
    command = VoidPayment(idempotency_key=uuid.uuid4(), order_id=order.order_id, authorization_key=uuid.uuid4())

    result = decide(void_payment, command, uow, provider=ScriptedProvider(None))

    assert isinstance(result, Error) and result.code == "PAYMENT_PROVIDER_UNAVAILABLE"
    assert_nothing_committed(uow, before)
