"""Saga decisions in plain Python: given a saga's definition, its state and what its step's command answered, what next.

A saga is a definition (data): steps in order, each with the command it sends forward, the command that
compensates it and how long it may take. Forward, the steps run in order, and the last one succeeding completes
the saga. When a step is refused, times out or a cancellation is requested, every step that was started is
compensated in reverse, beginning with the step in flight (it may have had its effect even if its answer was
lost). A step without a compensation is skipped then; a last step without one is the pivot: once it succeeded
nothing is compensated any more.

Every compensation must be safe to run for a step that had no effect (voiding nothing, releasing nothing), so a
step whose answer was lost or late is compensated like one that succeeded.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

RUNNING, COMPENSATING, COMPLETED, FAILED = "running", "compensating", "completed", "failed"
ACTIVE = (RUNNING, COMPENSATING)
FORWARD, COMPENSATE = "forward", "compensate"
TRANSIENT_ERRORS = frozenset({"IDEMPOTENCY_IN_PROGRESS"})
# A dead executor's claim on the step's idempotency key: it expires (IDEMPOTENCY_CLAIM_SECONDS), so waiting for
# it always ends; it never counts towards giving up, or a worker killed mid-step could fail the saga.
WAIT_ERRORS = frozenset({"IDEMPOTENCY_IN_PROGRESS"})


@dataclass(frozen=True)
class StepInput:
    """What a step's command is built from: the saga, its context, and the step's deterministic key."""

    saga_id: UUID
    correlation_id: str
    context: Mapping[str, Any]
    idempotency_key: UUID
    reason: str
    """Why the saga compensates (empty going forward)."""
    step_keys: Callable[[str, str], UUID]
    """The idempotency key of any step of this saga, by (step, direction): a compensation names what it undoes."""


CommandFactory = Callable[[StepInput], Any]
"""Builds the command a step sends (the executor sends it through the write side's mediator)."""


@dataclass(frozen=True)
class Refusal:
    """An answer that says no: the saga compensates, for `reason`.

    Either a success whose body has `flag` set to False (`reserved: false`), or an error with `error_code` whose
    details include `details`.
    """

    reason: str
    flag: str = ""
    error_code: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def refuses(self, reply: "Reply") -> bool:
        if self.flag:
            return reply.ok and reply.body.get(self.flag) is False
        return (
            not reply.ok
            and reply.error_code == self.error_code
            and all(reply.error_details.get(k) == v for k, v in self.details.items())
        )


@dataclass(frozen=True)
class Timeout:
    """How long a step may take from its start before it is abandoned and compensated with `reason`.

    `setting`: the name of the Django setting that overrides `seconds` (the executor reads it, per run).
    """

    seconds: float
    reason: str
    setting: str = ""


@dataclass(frozen=True)
class Step:
    name: str
    forward: CommandFactory | None = None
    """None: a step done before the saga starts (placing the order), which only has a compensation."""
    compensation: CommandFactory | None = None
    """None: nothing to undo; the last step without one is the pivot."""
    timeout: Timeout | None = None
    refusals: tuple[Refusal, ...] = ()
    already_compensated: frozenset[str] = frozenset()
    """Error codes of the compensation that mean its work is done already (an order cancelled already)."""
    local: bool = False
    """Its commands change only this service's database (no call to another system): the executor records the
    step's outcome, and begins the next step, in the command's own transaction. A step that calls another system
    (a payment provider) records it in a transaction of its own, after the call, so no transaction stays open
    across it."""


@dataclass(frozen=True)
class SagaDefinition:
    saga_type: str
    steps: tuple[Step, ...]
    refusals: tuple[Refusal, ...] = ()
    """Refusals any forward step may answer (the order cancelled from outside meanwhile)."""
    succeeded: str = "succeeded"
    """The outcome of a saga whose last step succeeded."""
    compensated: str = "compensated"
    """The outcome of a saga that compensated."""
    cancellation_reasons: tuple[str, ...] = ("operator_request",)
    """The reasons an operator may abort it with; the first is the default."""
    scopes: frozenset[str] = frozenset({"system"})
    """The scopes its commands are sent with (client id `saga`); `system`, which no API client holds, by default."""

    def __post_init__(self) -> None:
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"Saga {self.saga_type}: step names must be unique, got {names}.")
        if not any(step.forward for step in self.steps):
            raise ValueError(f"Saga {self.saga_type} has no forward step.")
        if any(s.forward is None for s in self.steps[self._first_forward_index() :]):
            raise ValueError(f"Saga {self.saga_type}: only the steps before the first forward one may have none.")

    def _first_forward_index(self) -> int:
        return next(i for i, step in enumerate(self.steps) if step.forward is not None)

    @property
    def first_step(self) -> str:
        return self.steps[self._first_forward_index()].name

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise ValueError(f"Saga {self.saga_type} has no step {name!r}.")

    def after(self, name: str) -> str | None:
        index = self._index(name)
        return self.steps[index + 1].name if index + 1 < len(self.steps) else None

    def before(self, name: str) -> str | None:
        index = self._index(name)
        return self.steps[index - 1].name if index > 0 else None

    def compensable_at_or_before(self, name: str | None) -> str | None:
        """The first step, going back from `name`, that has a compensation; None when none has."""
        while name is not None and self.step(name).compensation is None:
            name = self.before(name)
        return name

    def _index(self, name: str) -> int:
        return [step.name for step in self.steps].index(name)


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
    """Seconds each step may take, from its start, before it is compensated (the definition's, or a setting's)."""

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
    """Undo what was started, beginning with next_step and going back to the first step."""

    reason: str
    next_step: str
    abandoned: bool = False
    """The step did not say no: it was given up (a deadline passed, a cancellation came in)."""


@dataclass(frozen=True)
class Completed:
    outcome: str
    reason: str = ""
    abandoned: bool = False
    """Given up with nothing to compensate: the step in flight is recorded as abandoned, not failed."""


@dataclass(frozen=True)
class Failed:
    """Nothing more the saga can do on its own: an operator retries or aborts it."""

    error: str


Decision = Done | Retry | Compensate | Completed | Failed


def compensate(
    saga: SagaDefinition, state: SagaState, reason: str, *, abandoned: bool = False
) -> Compensate | Completed:
    """Compensation starts with the current step: it may have had its effect even if its answer was lost."""
    first = saga.compensable_at_or_before(state.step)
    if first is None:
        return Completed(saga.compensated, reason, abandoned=abandoned)
    return Compensate(reason=reason, next_step=first, abandoned=abandoned)


def before_attempt(saga: SagaDefinition, state: SagaState, now: datetime) -> Compensate | Completed | None:
    """What overrides running (or accepting the answer of) the current forward step."""
    if state.status != RUNNING:
        return None
    if state.requested_cancellation:
        return compensate(saga, state, state.requested_cancellation, abandoned=True)
    timeout = saga.step(state.step).timeout
    if timeout is not None and state.deadline is not None and now >= state.deadline:
        return compensate(saga, state, timeout.reason, abandoned=True)
    return None


def decide(saga: SagaDefinition, state: SagaState, reply: Reply, now: datetime, policy: Policy) -> Decision:
    if state.status == RUNNING:
        return _decide_forward(saga, state, reply, now, policy)
    if state.status == COMPENSATING:
        return _decide_compensation(saga, state, reply, policy)
    raise ValueError(f"A {state.status} saga runs no steps.")


def _decide_forward(saga: SagaDefinition, state: SagaState, reply: Reply, now: datetime, policy: Policy) -> Decision:
    next_step = saga.after(state.step)
    if reply.ok and next_step is None:
        # The last step: it succeeded, whatever was asked for while it ran (a pivot is never undone).
        return Completed(saga.succeeded)
    # An answer after the deadline (or after a cancellation) is not acted on: its step is compensated.
    if override := before_attempt(saga, state, now):
        return override
    for refusal in (*saga.step(state.step).refusals, *saga.refusals):
        if refusal.refuses(reply):
            return compensate(saga, state, refusal.reason)
    if reply.ok:
        assert next_step is not None
        return Done(next_step, policy.deadline_for(next_step, now))
    if not reply.transient:
        return Failed(reply.describe())
    if state.deadline is None:
        if state.attempts >= policy.max_attempts and reply.error_code not in WAIT_ERRORS:
            return Failed(f"{reply.describe()} (after {state.attempts} attempts)")
        return Retry(policy.backoff(state.attempts), reply.describe())
    # Wake up at the deadline at the latest, to compensate on time.
    until_deadline = max((state.deadline - now).total_seconds(), 0.0)
    return Retry(min(policy.backoff(state.attempts), until_deadline), reply.describe())


def _decide_compensation(saga: SagaDefinition, state: SagaState, reply: Reply, policy: Policy) -> Decision:
    if reply.ok or reply.error_code in saga.step(state.step).already_compensated:
        previous = saga.compensable_at_or_before(saga.before(state.step))
        if previous is None:
            return Completed(saga.compensated, state.reason)
        return Done(previous)
    if state.attempts >= policy.max_attempts and reply.error_code not in WAIT_ERRORS:
        return Failed(f"{reply.describe()} (after {state.attempts} attempts)")
    return Retry(policy.backoff(state.attempts), reply.describe())


def status_after_operator_retry(state: SagaState) -> str:
    """A failed saga goes back to the direction it failed in; its reason says whether it was compensating."""
    return COMPENSATING if state.reason else RUNNING


def can_abort(state: SagaState) -> bool:
    return state.status != COMPLETED
