"""Saga decisions are plain Python: a definition, a state and a step's answer in, what next out (the fulfilment
saga's definition, and small ones of the tests' own)."""

from datetime import UTC, datetime, timedelta

import pytest

from sagas_app import domain, fulfilment
from sagas_app.domain import Compensate, Completed, Done, Failed, Policy, Reply, Retry, SagaState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SAGA = fulfilment.DEFINITION
POLICY = Policy(
    retry_base_seconds=1.0,
    retry_max_seconds=8.0,
    max_attempts=4,
    timeouts={fulfilment.RESERVE_INVENTORY: 60.0, fulfilment.AUTHORIZE_PAYMENT: 300.0},
)
OK = Reply(200, {"reserved": True})
UNAVAILABLE = Reply(503, error_code="PAYMENT_PROVIDER_UNAVAILABLE", error_message="no answer")


def running(step: str, **fields) -> SagaState:
    return SagaState(status=domain.RUNNING, step=step, attempts=fields.pop("attempts", 1), **fields)


def compensating(step: str, reason: str = fulfilment.PAYMENT_DECLINED, attempts: int = 1) -> SagaState:
    return SagaState(status=domain.COMPENSATING, step=step, attempts=attempts, reason=reason)


def test_the_happy_path_runs_each_step_in_turn_and_sets_the_payment_deadline():
    reserved = domain.decide(SAGA, running(fulfilment.RESERVE_INVENTORY), OK, NOW, POLICY)
    authorized = domain.decide(
        SAGA,
        running(fulfilment.AUTHORIZE_PAYMENT),
        Reply(200, {"authorized": True, "authorization_id": "a"}),
        NOW,
        POLICY,
    )
    confirmed = domain.decide(SAGA, running(fulfilment.CONFIRM_ORDER), Reply(200, {"status": "confirmed"}), NOW, POLICY)

    assert reserved == Done(fulfilment.AUTHORIZE_PAYMENT, deadline=NOW + timedelta(seconds=300))
    assert authorized == Done(fulfilment.CONFIRM_ORDER, deadline=None)
    assert confirmed == Completed(fulfilment.CONFIRMED)


@pytest.mark.parametrize(
    ("step", "body", "reason", "first_compensation"),
    [
        (
            fulfilment.RESERVE_INVENTORY,
            {"reserved": False},
            fulfilment.INSUFFICIENT_STOCK,
            fulfilment.RESERVE_INVENTORY,
        ),
        (
            fulfilment.AUTHORIZE_PAYMENT,
            {"authorized": False},
            fulfilment.PAYMENT_DECLINED,
            fulfilment.AUTHORIZE_PAYMENT,
        ),
    ],
)
def test_a_refusal_compensates_from_the_refused_step_with_its_reason(step, body, reason, first_compensation):
    decision = domain.decide(SAGA, running(step), Reply(200, body), NOW, POLICY)

    assert decision == Compensate(reason=reason, next_step=first_compensation)


def test_compensations_run_in_reverse_and_end_by_cancelling_the_order():
    voided = domain.decide(SAGA, compensating(fulfilment.AUTHORIZE_PAYMENT), Reply(200, {"voided": True}), NOW, POLICY)
    released = domain.decide(
        SAGA, compensating(fulfilment.RESERVE_INVENTORY), Reply(200, {"released": True}), NOW, POLICY
    )
    cancelled = domain.decide(
        SAGA, compensating(fulfilment.PLACE_ORDER), Reply(202, {"status": "cancelled"}), NOW, POLICY
    )

    assert voided == Done(fulfilment.RESERVE_INVENTORY)
    assert released == Done(fulfilment.PLACE_ORDER)
    assert cancelled == Completed(fulfilment.CANCELLED, fulfilment.PAYMENT_DECLINED)


def test_confirm_order_is_the_pivot_and_is_never_compensated():
    # given: a cancellation came in while the confirmation could not get through
    failed_confirm = domain.decide(
        SAGA,
        running(fulfilment.CONFIRM_ORDER, requested_cancellation=fulfilment.CUSTOMER_REQUEST),
        UNAVAILABLE,
        NOW,
        POLICY,
    )

    # then: compensation starts with the payment, skipping the confirmation
    assert failed_confirm == Compensate(
        fulfilment.CUSTOMER_REQUEST, next_step=fulfilment.AUTHORIZE_PAYMENT, abandoned=True
    )


def test_a_successful_confirmation_wins_over_a_cancellation_requested_meanwhile():
    state = running(fulfilment.CONFIRM_ORDER, requested_cancellation=fulfilment.CUSTOMER_REQUEST)

    assert domain.decide(SAGA, state, Reply(200, {"status": "confirmed"}), NOW, POLICY) == Completed(
        fulfilment.CONFIRMED
    )


def test_an_order_already_cancelled_counts_as_a_done_cancellation():
    decision = domain.decide(
        SAGA,
        compensating(fulfilment.PLACE_ORDER, reason=fulfilment.CUSTOMER_REQUEST),
        Reply(409, error_code="ORDER_ALREADY_CANCELLED"),
        NOW,
        POLICY,
    )

    assert decision == Completed(fulfilment.CANCELLED, fulfilment.CUSTOMER_REQUEST)


def test_a_transient_failure_retries_with_growing_capped_backoff():
    delays = [
        domain.decide(
            SAGA, running(fulfilment.RESERVE_INVENTORY, attempts=n), Reply(500, error_code="EXCEPTION"), NOW, POLICY
        )
        for n in (1, 2, 3)
    ]

    assert [d.delay_seconds for d in delays if isinstance(d, Retry)] == [1.0, 2.0, 4.0]
    assert POLICY.backoff(10) == 8.0


def test_a_step_in_progress_elsewhere_is_transient():
    decision = domain.decide(
        SAGA, running(fulfilment.RESERVE_INVENTORY), Reply(409, error_code="IDEMPOTENCY_IN_PROGRESS"), NOW, POLICY
    )

    assert isinstance(decision, Retry)


def test_a_dead_executors_claim_on_the_step_is_waited_out_however_many_attempts_it_takes():
    # given: a worker died mid-step; its claim on the step's idempotency key lives until it expires
    in_progress = Reply(409, error_code="IDEMPOTENCY_IN_PROGRESS")

    # when
    forward = domain.decide(SAGA, running(fulfilment.RESERVE_INVENTORY, attempts=40), in_progress, NOW, POLICY)
    backward = domain.decide(SAGA, compensating(fulfilment.RESERVE_INVENTORY, attempts=40), in_progress, NOW, POLICY)

    # then
    assert isinstance(forward, Retry) and isinstance(backward, Retry)
    assert forward.delay_seconds == backward.delay_seconds == POLICY.retry_max_seconds


def test_a_step_without_a_deadline_fails_after_its_attempts_for_an_operator_to_see():
    decision = domain.decide(
        SAGA, running(fulfilment.RESERVE_INVENTORY, attempts=4), Reply(500, error_code="EXCEPTION"), NOW, POLICY
    )

    assert isinstance(decision, Failed)
    assert "after 4 attempts" in decision.error


def test_an_unexpected_business_error_fails_the_saga_instead_of_guessing():
    decision = domain.decide(
        SAGA, running(fulfilment.RESERVE_INVENTORY), Reply(404, error_code="ORDER_NOT_FOUND"), NOW, POLICY
    )

    assert isinstance(decision, Failed)


def test_the_payment_step_retries_until_its_deadline_then_compensates_with_payment_timeout():
    before = running(fulfilment.AUTHORIZE_PAYMENT, attempts=50, deadline=NOW + timedelta(seconds=1))
    after = running(fulfilment.AUTHORIZE_PAYMENT, attempts=50, deadline=NOW)

    # the retry is due at the deadline at the latest, however long the backoff has grown
    assert domain.decide(SAGA, before, UNAVAILABLE, NOW, POLICY) == Retry(1.0, UNAVAILABLE.describe())
    assert domain.decide(SAGA, after, UNAVAILABLE, NOW, POLICY) == Compensate(
        fulfilment.PAYMENT_TIMEOUT, next_step=fulfilment.AUTHORIZE_PAYMENT, abandoned=True
    )


def test_an_authorization_arriving_after_the_deadline_is_not_acted_on_but_voided():
    late = running(fulfilment.AUTHORIZE_PAYMENT, deadline=NOW - timedelta(milliseconds=1))

    decision = domain.decide(SAGA, late, Reply(200, {"authorized": True, "authorization_id": "a"}), NOW, POLICY)

    # the compensation starts with the payment step, whose compensation voids the late authorization
    assert decision == Compensate(fulfilment.PAYMENT_TIMEOUT, next_step=fulfilment.AUTHORIZE_PAYMENT, abandoned=True)


def test_a_requested_cancellation_compensates_before_the_next_attempt():
    state = running(fulfilment.AUTHORIZE_PAYMENT, requested_cancellation=fulfilment.CUSTOMER_REQUEST)

    assert domain.before_attempt(SAGA, state, NOW) == Compensate(
        fulfilment.CUSTOMER_REQUEST, fulfilment.AUTHORIZE_PAYMENT, abandoned=True
    )
    assert domain.before_attempt(SAGA, running(fulfilment.AUTHORIZE_PAYMENT), NOW) is None
    assert domain.before_attempt(SAGA, compensating(fulfilment.RESERVE_INVENTORY), NOW) is None


def test_an_order_cancelled_behind_the_sagas_back_compensates_as_the_customers_request():
    decision = domain.decide(
        SAGA,
        running(fulfilment.RESERVE_INVENTORY),
        Reply(409, error_code="ORDER_NOT_PENDING", error_details={"status": "cancelled"}),
        NOW,
        POLICY,
    )

    assert decision == Compensate(fulfilment.CUSTOMER_REQUEST, next_step=fulfilment.RESERVE_INVENTORY)


def test_a_failing_compensation_retries_then_fails_never_silently_done():
    retried = domain.decide(SAGA, compensating(fulfilment.AUTHORIZE_PAYMENT, attempts=3), UNAVAILABLE, NOW, POLICY)
    exhausted = domain.decide(SAGA, compensating(fulfilment.AUTHORIZE_PAYMENT, attempts=4), UNAVAILABLE, NOW, POLICY)

    assert isinstance(retried, Retry)
    assert isinstance(exhausted, Failed)


def test_an_operator_retry_resumes_in_the_direction_the_saga_failed_in():
    failed_forward = SagaState(status=domain.FAILED, step=fulfilment.RESERVE_INVENTORY)
    failed_compensating = SagaState(
        status=domain.FAILED, step=fulfilment.PLACE_ORDER, reason=fulfilment.PAYMENT_TIMEOUT
    )

    assert domain.status_after_operator_retry(failed_forward) == domain.RUNNING
    assert domain.status_after_operator_retry(failed_compensating) == domain.COMPENSATING
    assert not domain.can_abort(SagaState(status=domain.COMPLETED, step=fulfilment.CONFIRM_ORDER))


def test_a_finished_saga_decides_nothing():
    with pytest.raises(ValueError):
        domain.decide(SAGA, SagaState(status=domain.COMPLETED, step=fulfilment.CONFIRM_ORDER), OK, NOW, POLICY)


def test_a_stuck_reservation_times_out_too_and_cancels_the_order():
    stuck = running(fulfilment.RESERVE_INVENTORY, attempts=3, deadline=NOW)

    decision = domain.decide(SAGA, stuck, UNAVAILABLE, NOW, POLICY)

    assert decision == Compensate(fulfilment.INSUFFICIENT_STOCK, fulfilment.RESERVE_INVENTORY, abandoned=True)


def test_the_fulfilment_saga_is_data_with_a_timeout_on_each_step_before_the_pivot():
    timeouts = {step.name: step.timeout for step in SAGA.steps if step.timeout}

    assert SAGA.first_step == fulfilment.RESERVE_INVENTORY
    assert [s.name for s in SAGA.steps if s.forward] == ["reserve_inventory", "authorize_payment", "confirm_order"]
    assert [s.name for s in SAGA.steps if s.compensation] == ["place_order", "reserve_inventory", "authorize_payment"]
    assert {name: t.seconds for name, t in timeouts.items()} == {"reserve_inventory": 300.0, "authorize_payment": 600.0}


# A definition of the tests' own: two steps, the first undone by its compensation, the second with none.
TWO_STEPS = domain.SagaDefinition(
    saga_type="two_steps",
    steps=(
        domain.Step("first", forward=lambda step: "do first", compensation=lambda step: "undo first"),
        domain.Step(
            "second",
            forward=lambda step: "do second",
            timeout=domain.Timeout(10.0, "second_timeout"),
            refusals=(domain.Refusal("second_refused", error_code="NOPE"),),
        ),
    ),
)


def test_any_definition_runs_forward_then_compensates_what_has_a_compensation():
    def two(state, reply):
        return domain.decide(TWO_STEPS, state, reply, NOW, POLICY)

    assert TWO_STEPS.first_step == "first"
    assert two(running("first"), Reply(200)) == Done("second", deadline=None)
    assert two(running("second"), Reply(200)) == Completed("succeeded")
    # refused: the second step has nothing to undo, so compensation starts with the first
    assert two(running("second"), Reply(409, error_code="NOPE")) == Compensate("second_refused", "first")
    assert two(compensating("first", reason="second_refused"), Reply(200)) == Completed("compensated", "second_refused")
    # the second step timed out: nothing of its own to undo, the first is compensated
    assert two(running("second", deadline=NOW), UNAVAILABLE) == Compensate("second_timeout", "first", abandoned=True)


def test_a_saga_with_nothing_to_compensate_completes_as_compensated_when_given_up():
    only = domain.SagaDefinition("only", steps=(domain.Step("ask", forward=lambda step: "ask"),))

    decision = domain.decide(only, running("ask", requested_cancellation="stop"), UNAVAILABLE, NOW, POLICY)

    assert decision == Completed("compensated", "stop", abandoned=True)


def test_a_definition_refuses_duplicate_steps_and_forward_steps_after_a_gap():
    with pytest.raises(ValueError, match="unique"):
        domain.SagaDefinition("dup", steps=(domain.Step("a", forward=str), domain.Step("a", forward=str)))
    with pytest.raises(ValueError, match="before the first forward"):
        domain.SagaDefinition("gap", steps=(domain.Step("a", forward=str), domain.Step("b", compensation=str)))
