"""AuthorizePayment (saga step): hold the order's total with the provider, under the order's lock."""

import copy
import uuid

from uuid_utils.compat import uuid7

from commands_app.commands import AuthorizePayment
from commands_app.domain.order import Order
from commands_app.handlers.authorize_payment import authorize_payment
from commands_app.payments.port import Authorized, Declined
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import an_order
from tests.unit.handlers.provider import ScriptedProvider


def authorize(order_id) -> AuthorizePayment:
    return AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id)


def holding_with_its_token(order) -> FakeUnitOfWork:
    uow = FakeUnitOfWork.holding(order)
    uow.tokens[order.order_id] = "tok_ok"
    return uow


def test_an_authorization_is_recorded_with_the_commands_key_passed_to_the_provider():
    order = an_order()
    uow = holding_with_its_token(order)
    provider = ScriptedProvider(Authorized("auth_7"))
    command = authorize(order.order_id)

    result = decide(authorize_payment, command, uow, provider=provider)

    assert result == Ok(
        {"order_id": str(order.order_id), "authorized": True, "authorization_id": "auth_7", "reason": ""}
    )
    stored = uow.get(Order, order.order_id)
    assert (stored.payment_status, stored.authorization_id) == ("authorized", "auth_7")
    assert uow.event_types() == ["PaymentAuthorized"]
    assert provider.calls == [
        ("authorize", {"idempotency_key": str(command.idempotency_key), "amount": order.total, "token": "tok_ok"})
    ]
    assert uow.tokens == {}, "the token is forgotten once the authorization is decided"


def test_a_decline_is_an_answer_recorded_on_the_order():
    order = an_order()
    uow = holding_with_its_token(order)

    result = decide(authorize_payment, authorize(order.order_id), uow, provider=ScriptedProvider(Declined("no funds")))

    assert isinstance(result, Ok) and (result.value["authorized"], result.value["reason"]) == (False, "no funds")
    assert uow.get(Order, order.order_id).payment_status == "declined"
    assert uow.event_types() == ["PaymentDeclined"]


def test_an_order_authorized_already_is_answered_again_without_calling_the_provider():
    order = an_order(payment_status="authorized", authorization_id="auth_1")
    uow = FakeUnitOfWork.holding(order)
    provider = ScriptedProvider(Authorized("auth_2"))

    result = decide(authorize_payment, authorize(order.order_id), uow, provider=provider)

    assert isinstance(result, Ok) and result.value["authorization_id"] == "auth_1"
    assert provider.calls == [] and uow.events == []


def test_a_provider_that_does_not_answer_is_payment_provider_unavailable_and_nothing_is_committed():
    order = an_order()
    uow = holding_with_its_token(order)
    before = copy.deepcopy(uow.stored)

    result = decide(authorize_payment, authorize(order.order_id), uow, provider=ScriptedProvider(None))

    assert isinstance(result, Error) and result.code == "PAYMENT_PROVIDER_UNAVAILABLE"
    assert_nothing_committed(uow, before)
    assert uow.tokens == {order.order_id: "tok_ok"}, "kept for the retry"


def test_an_order_whose_token_is_gone_is_declined_without_calling_the_provider():
    order = an_order()
    uow = FakeUnitOfWork.holding(order)
    provider = ScriptedProvider(Authorized("auth_1"))

    result = decide(authorize_payment, authorize(order.order_id), uow, provider=provider)

    assert isinstance(result, Ok) and (result.value["authorized"], result.value["reason"]) == (
        False,
        "payment_token_unavailable",
    )
    assert provider.calls == [] and uow.event_types() == ["PaymentDeclined"]


def test_an_unknown_or_settled_order_is_refused_before_the_provider_is_called():
    for order, code in [(None, "ORDER_NOT_FOUND"), (an_order(status="cancelled"), "ORDER_NOT_PENDING")]:
        uow = FakeUnitOfWork.holding(*([order] if order else []))
        before = copy.deepcopy(uow.stored)
        provider = ScriptedProvider(Authorized("auth_1"))

        result = decide(authorize_payment, authorize(order.order_id if order else uuid7()), uow, provider=provider)

        assert isinstance(result, Error) and result.code == code
        assert provider.calls == []
        assert_nothing_committed(uow, before)


def test_the_orders_lock_is_held_from_the_read_on_so_the_provider_is_called_under_it():
    order = an_order()
    uow = FakeUnitOfWork.holding(order)

    decide(authorize_payment, authorize(order.order_id), uow, provider=ScriptedProvider(Authorized("a")))

    assert uow.journal == [Lock("order", str(order.order_id)), Read("Order", (order.order_id,))]
