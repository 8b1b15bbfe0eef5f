"""The fulfilment saga's decisions are plain Python: a state and a step's answer in, what next out."""

from datetime import UTC, datetime, timedelta

import pytest

from sagas_app import domain
from sagas_app.domain import Compensate, Completed, Done, Failed, Policy, Reply, Retry, SagaState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(
    retry_base_seconds=1.0, retry_max_seconds=8.0, max_attempts=4, timeouts={domain.AUTHORIZE_PAYMENT: 300.0}
)
OK = Reply(200, {"reserved": True})
UNAVAILABLE = Reply(503, error_code="PAYMENT_PROVIDER_UNAVAILABLE", error_message="no answer")


def running(step: str, **fields) -> SagaState:
    return SagaState(status=domain.RUNNING, step=step, attempts=fields.pop("attempts", 1), **fields)


def compensating(step: str, reason: str = domain.PAYMENT_DECLINED, attempts: int = 1) -> SagaState:
    return SagaState(status=domain.COMPENSATING, step=step, attempts=attempts, reason=reason)


def test_the_happy_path_runs_each_step_in_turn_and_sets_the_payment_deadline():
    reserved = domain.decide(running(domain.RESERVE_INVENTORY), OK, NOW, POLICY)
    authorized = domain.decide(
        running(domain.AUTHORIZE_PAYMENT), Reply(200, {"authorized": True, "authorization_id": "a"}), NOW, POLICY
    )
    confirmed = domain.decide(running(domain.CONFIRM_ORDER), Reply(200, {"status": "confirmed"}), NOW, POLICY)

    assert reserved == Done(domain.AUTHORIZE_PAYMENT, deadline=NOW + timedelta(seconds=300))
    assert authorized == Done(domain.CONFIRM_ORDER, deadline=None)
    assert confirmed == Completed(domain.CONFIRMED)


@pytest.mark.parametrize(
    ("step", "body", "reason", "first_compensation"),
    [
        (domain.RESERVE_INVENTORY, {"reserved": False}, domain.INSUFFICIENT_STOCK, domain.RESERVE_INVENTORY),
        (domain.AUTHORIZE_PAYMENT, {"authorized": False}, domain.PAYMENT_DECLINED, domain.AUTHORIZE_PAYMENT),
    ],
)
def test_a_refusal_compensates_from_the_refused_step_with_its_reason(step, body, reason, first_compensation):
    decision = domain.decide(running(step), Reply(200, body), NOW, POLICY)

    assert decision == Compensate(reason=reason, next_step=first_compensation)


def test_compensations_run_in_reverse_and_end_by_cancelling_the_order():
    voided = domain.decide(compensating(domain.AUTHORIZE_PAYMENT), Reply(200, {"voided": True}), NOW, POLICY)
    released = domain.decide(compensating(domain.RESERVE_INVENTORY), Reply(200, {"released": True}), NOW, POLICY)
    cancelled = domain.decide(compensating(domain.PLACE_ORDER), Reply(202, {"status": "cancelled"}), NOW, POLICY)

    assert voided == Done(domain.RESERVE_INVENTORY)
    assert released == Done(domain.PLACE_ORDER)
    assert cancelled == Completed(domain.CANCELLED, domain.PAYMENT_DECLINED)


def test_confirm_order_is_the_pivot_and_is_never_compensated():
    # given: a cancellation came in while the confirmation could not get through
    failed_confirm = domain.decide(
        running(domain.CONFIRM_ORDER, requested_cancellation=domain.CUSTOMER_REQUEST), UNAVAILABLE, NOW, POLICY
    )

    # then: compensation starts with the payment, skipping the confirmation
    assert failed_confirm == Compensate(domain.CUSTOMER_REQUEST, next_step=domain.AUTHORIZE_PAYMENT, abandoned=True)


def test_a_successful_confirmation_wins_over_a_cancellation_requested_meanwhile():
    state = running(domain.CONFIRM_ORDER, requested_cancellation=domain.CUSTOMER_REQUEST)

    assert domain.decide(state, Reply(200, {"status": "confirmed"}), NOW, POLICY) == Completed(domain.CONFIRMED)


def test_an_order_already_cancelled_counts_as_a_done_cancellation():
    decision = domain.decide(
        compensating(domain.PLACE_ORDER, reason=domain.CUSTOMER_REQUEST),
        Reply(409, error_code="ORDER_ALREADY_CANCELLED"),
        NOW,
        POLICY,
    )

    assert decision == Completed(domain.CANCELLED, domain.CUSTOMER_REQUEST)


def test_a_transient_failure_retries_with_growing_capped_backoff():
    delays = [
        domain.decide(running(domain.RESERVE_INVENTORY, attempts=n), Reply(500, error_code="EXCEPTION"), NOW, POLICY)
        for n in (1, 2, 3)
    ]

    assert [d.delay_seconds for d in delays if isinstance(d, Retry)] == [1.0, 2.0, 4.0]
    assert POLICY.backoff(10) == 8.0


def test_a_step_in_progress_elsewhere_is_transient():
    decision = domain.decide(
        running(domain.RESERVE_INVENTORY), Reply(409, error_code="IDEMPOTENCY_IN_PROGRESS"), NOW, POLICY
    )

    assert isinstance(decision, Retry)


def test_a_dead_executors_claim_on_the_step_is_waited_out_however_many_attempts_it_takes():
    # given: a worker died mid-step; its claim on the step's idempotency key lives until it expires
    in_progress = Reply(409, error_code="IDEMPOTENCY_IN_PROGRESS")

    # when
    forward = domain.decide(running(domain.RESERVE_INVENTORY, attempts=40), in_progress, NOW, POLICY)
    backward = domain.decide(compensating(domain.RESERVE_INVENTORY, attempts=40), in_progress, NOW, POLICY)

    # then
    assert isinstance(forward, Retry) and isinstance(backward, Retry)
    assert forward.delay_seconds == backward.delay_seconds == POLICY.retry_max_seconds


def test_a_step_without_a_deadline_fails_after_its_attempts_for_an_operator_to_see():
    decision = domain.decide(
        running(domain.RESERVE_INVENTORY, attempts=4), Reply(500, error_code="EXCEPTION"), NOW, POLICY
    )

    assert isinstance(decision, Failed)
    assert "after 4 attempts" in decision.error


def test_an_unexpected_business_error_fails_the_saga_instead_of_guessing():
    decision = domain.decide(running(domain.RESERVE_INVENTORY), Reply(404, error_code="ORDER_NOT_FOUND"), NOW, POLICY)

    assert isinstance(decision, Failed)


def test_the_payment_step_retries_until_its_deadline_then_compensates_with_payment_timeout():
    before = running(domain.AUTHORIZE_PAYMENT, attempts=50, deadline=NOW + timedelta(seconds=1))
    after = running(domain.AUTHORIZE_PAYMENT, attempts=50, deadline=NOW)

    # the retry is due at the deadline at the latest, however long the backoff has grown
    assert domain.decide(before, UNAVAILABLE, NOW, POLICY) == Retry(1.0, UNAVAILABLE.describe())
    assert domain.decide(after, UNAVAILABLE, NOW, POLICY) == Compensate(
        domain.PAYMENT_TIMEOUT, next_step=domain.AUTHORIZE_PAYMENT, abandoned=True
    )


def test_an_authorization_arriving_after_the_deadline_is_not_acted_on_but_voided():
    late = running(domain.AUTHORIZE_PAYMENT, deadline=NOW - timedelta(milliseconds=1))

    decision = domain.decide(late, Reply(200, {"authorized": True, "authorization_id": "a"}), NOW, POLICY)

    # the compensation starts with the payment step, whose compensation voids the late authorization
    assert decision == Compensate(domain.PAYMENT_TIMEOUT, next_step=domain.AUTHORIZE_PAYMENT, abandoned=True)


def test_a_requested_cancellation_compensates_before_the_next_attempt():
    state = running(domain.AUTHORIZE_PAYMENT, requested_cancellation=domain.CUSTOMER_REQUEST)

    assert domain.before_attempt(state, NOW) == Compensate(
        domain.CUSTOMER_REQUEST, domain.AUTHORIZE_PAYMENT, abandoned=True
    )
    assert domain.before_attempt(running(domain.AUTHORIZE_PAYMENT), NOW) is None
    assert domain.before_attempt(compensating(domain.RESERVE_INVENTORY), NOW) is None


def test_an_order_cancelled_behind_the_sagas_back_compensates_as_the_customers_request():
    decision = domain.decide(
        running(domain.RESERVE_INVENTORY),
        Reply(409, error_code="ORDER_NOT_PENDING", error_details={"status": "cancelled"}),
        NOW,
        POLICY,
    )

    assert decision == Compensate(domain.CUSTOMER_REQUEST, next_step=domain.RESERVE_INVENTORY)


def test_a_failing_compensation_retries_then_fails_never_silently_done():
    retried = domain.decide(compensating(domain.AUTHORIZE_PAYMENT, attempts=3), UNAVAILABLE, NOW, POLICY)
    exhausted = domain.decide(compensating(domain.AUTHORIZE_PAYMENT, attempts=4), UNAVAILABLE, NOW, POLICY)

    assert isinstance(retried, Retry)
    assert isinstance(exhausted, Failed)


def test_an_operator_retry_resumes_in_the_direction_the_saga_failed_in():
    failed_forward = SagaState(status=domain.FAILED, step=domain.RESERVE_INVENTORY)
    failed_compensating = SagaState(status=domain.FAILED, step=domain.PLACE_ORDER, reason=domain.PAYMENT_TIMEOUT)

    assert domain.status_after_operator_retry(failed_forward) == domain.RUNNING
    assert domain.status_after_operator_retry(failed_compensating) == domain.COMPENSATING
    assert not domain.can_abort(SagaState(status=domain.COMPLETED, step=domain.CONFIRM_ORDER))


def test_a_finished_saga_decides_nothing():
    with pytest.raises(ValueError):
        domain.decide(SagaState(status=domain.COMPLETED, step=domain.CONFIRM_ORDER), OK, NOW, POLICY)
