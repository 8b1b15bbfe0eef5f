"""Saga decisions in plain Python: given a saga's state and what its step's command answered, what next.

The order fulfilment saga runs place_order (done by the customer before the saga starts) ->
reserve_inventory -> authorize_payment -> confirm_order. When a step is refused, times out or the customer
cancels, every step that was started is compensated in reverse (void the payment, release the inventory),
ending with the compensation of place_order itself: cancelling the order with the reason. confirm_order
is the pivot: once it succeeds the saga is complete and nothing is compensated any more.

Every compensation is safe to run for a step that had no effect (voiding nothing, releasing nothing), so a
step whose answer was lost or late is compensated like one that succeeded.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

RUNNING, COMPENSATING, COMPLETED, FAILED = "running", "compensating", "completed", "failed"
ACTIVE = (RUNNING, COMPENSATING)
FORWARD, COMPENSATE = "forward", "compensate"
CONFIRMED, CANCELLED = "confirmed", "cancelled"

PLACE_ORDER, RESERVE_INVENTORY, AUTHORIZE_PAYMENT, CONFIRM_ORDER = (
    "place_order",
    "reserve_inventory",
    "authorize_payment",
    "confirm_order",
)
STEPS = (PLACE_ORDER, RESERVE_INVENTORY, AUTHORIZE_PAYMENT, CONFIRM_ORDER)
FIRST_STEP = RESERVE_INVENTORY
NOT_COMPENSATED = frozenset({CONFIRM_ORDER})

INSUFFICIENT_STOCK, PAYMENT_DECLINED, PAYMENT_TIMEOUT, CUSTOMER_REQUEST = (
    "insufficient_stock",
    "payment_declined",
    "payment_timeout",
    "customer_request",
)
CANCELLATION_REASONS = (INSUFFICIENT_STOCK, PAYMENT_DECLINED, PAYMENT_TIMEOUT, CUSTOMER_REQUEST)
TIMEOUT_REASONS = {AUTHORIZE_PAYMENT: PAYMENT_TIMEOUT}
# A step's command can succeed and still say no: the body field that says so, and the reason it means.
REFUSALS = {RESERVE_INVENTORY: ("reserved", INSUFFICIENT_STOCK), AUTHORIZE_PAYMENT: ("authorized", PAYMENT_DECLINED)}
# Errors that mean a compensation's work is done already.
ALREADY_COMPENSATED = {PLACE_ORDER: frozenset({"ORDER_ALREADY_CANCELLED"})}
TRANSIENT_ERRORS = frozenset({"IDEMPOTENCY_IN_PROGRESS"})
# A dead executor's claim on the step's idempotency key: it expires (IDEMPOTENCY_CLAIM_SECONDS), so waiting for
# it always ends; it never counts towards giving up, or a worker killed mid-step could fail the saga.
WAIT_ERRORS = frozenset({"IDEMPOTENCY_IN_PROGRESS"})


@dataclass(frozen=True)
class SagaState:
    status: str
    step: str
    attempts: int = 0
    """Attempts at the current step since it began (or since an operator retried it)."""
    deadline: datetime | None = None
    requested_cancellation: str = ""
    """A cancellation asked for from outside the saga (the customer, an operator): compensate at once."""
    reason: str = ""
    """Why the saga compensates."""

    @property
    def direction(self) -> str:
        return FORWARD if self.status == RUNNING else COMPENSATE


@dataclass(frozen=True)
class Reply:
    """What a step's command answered, as plain values (the executor maps the mediator's outcome to it)."""

    status_code: int
    body: Mapping[str, Any] = field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    error_details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error_code

    @property
    def transient(self) -> bool:
        """Worth retrying with the same idempotency key: the provider or the database did not answer."""
        return self.status_code >= 500 or self.error_code in TRANSIENT_ERRORS

    def describe(self) -> str:
        return (
            f"{self.status_code} {self.error_code}: {self.error_message}" if self.error_code else str(self.status_code)
        )


@dataclass(frozen=True)
class Policy:
    retry_base_seconds: float
    retry_max_seconds: float
    max_attempts: int
    timeouts: Mapping[str, float] = field(default_factory=dict)
    """Seconds a step may take, from its start, before it is compensated (TIMEOUT_REASONS)."""

    def backoff(self, attempts: int) -> float:
        return float(min(self.retry_base_seconds * 2 ** max(attempts - 1, 0), self.retry_max_seconds))

    def deadline_for(self, step: str, now: datetime) -> datetime | None:
        seconds = self.timeouts.get(step)
        return None if seconds is None else now + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Done:
    """The step succeeded: go on with next_step in the same direction."""

    next_step: str
    deadline: datetime | None = None


@dataclass(frozen=True)
class Retry:
    delay_seconds: float
    error: str


@dataclass(frozen=True)
class Compensate:
    """Undo what was started, beginning with next_step and going back to place_order."""

    reason: str
    next_step: str
    abandoned: bool = False
    """The step did not say no: it was given up (a deadline passed, a cancellation came in)."""


@dataclass(frozen=True)
class Completed:
    outcome: str
    reason: str = ""


@dataclass(frozen=True)
class Failed:
    """Nothing more the saga can do on its own: an operator retries or aborts it."""

    error: str


Decision = Done | Retry | Compensate | Completed | Failed


def compensate(state: SagaState, reason: str, *, abandoned: bool = False) -> Compensate:
    """Compensation starts with the current step: it may have had its effect even if its answer was lost."""
    return Compensate(reason=reason, next_step=_compensable_at_or_before(state.step), abandoned=abandoned)


def before_attempt(state: SagaState, now: datetime) -> Compensate | None:
    """What overrides running (or accepting the answer of) the current forward step."""
    if state.status != RUNNING:
        return None
    if state.requested_cancellation:
        return compensate(state, state.requested_cancellation, abandoned=True)
    if state.deadline is not None and now >= state.deadline:
        return compensate(state, TIMEOUT_REASONS.get(state.step, PAYMENT_TIMEOUT), abandoned=True)
    return None


def decide(state: SagaState, reply: Reply, now: datetime, policy: Policy) -> Decision:
    if state.status == RUNNING:
        return _decide_forward(state, reply, now, policy)
    if state.status == COMPENSATING:
        return _decide_compensation(state, reply, policy)
    raise ValueError(f"A {state.status} saga runs no steps.")


def _decide_forward(state: SagaState, reply: Reply, now: datetime, policy: Policy) -> Decision:
    next_step = _after(state.step)
    if reply.ok and next_step is None:
        # The pivot: a confirmed order stays confirmed, whatever was asked for while it was being confirmed.
        return Completed(CONFIRMED)
    # An answer after the deadline (or after a cancellation) is not acted on: its step is compensated.
    if override := before_attempt(state, now):
        return override
    if reply.ok:
        if state.step in REFUSALS:
            flag, reason = REFUSALS[state.step]
            if reply.body.get(flag) is False:
                return compensate(state, reason)
        assert next_step is not None
        return Done(next_step, policy.deadline_for(next_step, now))
    if reply.error_code == "ORDER_NOT_PENDING" and reply.error_details.get("status") == CANCELLED:
        # Only the customer (or an operator on their behalf) cancels a pending order besides this saga.
        return compensate(state, CUSTOMER_REQUEST)
    if not reply.transient:
        return Failed(reply.describe())
    if state.deadline is None:
        if state.attempts >= policy.max_attempts and reply.error_code not in WAIT_ERRORS:
            return Failed(f"{reply.describe()} (after {state.attempts} attempts)")
        return Retry(policy.backoff(state.attempts), reply.describe())
    # Wake up at the deadline at the latest, to compensate on time.
    until_deadline = max((state.deadline - now).total_seconds(), 0.0)
    return Retry(min(policy.backoff(state.attempts), until_deadline), reply.describe())


def _decide_compensation(state: SagaState, reply: Reply, policy: Policy) -> Decision:
    if reply.ok or reply.error_code in ALREADY_COMPENSATED.get(state.step, ()):
        previous = _before(state.step)
        if previous is None:
            return Completed(CANCELLED, state.reason)
        return Done(_compensable_at_or_before(previous))
    if state.attempts >= policy.max_attempts and reply.error_code not in WAIT_ERRORS:
        return Failed(f"{reply.describe()} (after {state.attempts} attempts)")
    return Retry(policy.backoff(state.attempts), reply.describe())


def status_after_operator_retry(state: SagaState) -> str:
    """A failed saga goes back to the direction it failed in; its reason says whether it was compensating."""
    return COMPENSATING if state.reason else RUNNING


def can_abort(state: SagaState) -> bool:
    return state.status != COMPLETED


def _after(step: str) -> str | None:
    index = STEPS.index(step)
    return STEPS[index + 1] if index + 1 < len(STEPS) else None


def _before(step: str) -> str | None:
    index = STEPS.index(step)
    return STEPS[index - 1] if index > 0 else None


def _compensable_at_or_before(step: str) -> str:
    current: str | None = step
    while current is not None and current in NOT_COMPENSATED:
        current = _before(current)
    assert current is not None, "place_order is always compensable"
    return current
