"""The saga executor: holds a saga's lease, sends its steps through the mediator and records each decision.

It runs any saga definition (sagas_app/definitions.py): the saga's type names it, and its steps build the
commands it sends.

At most one executor works on a saga: it claims an expiring lease with a conditional UPDATE, renews it
before every step, and every write it makes is conditional on its lease and on the saga's version (which
every update bumps). An executor that loses either reloads the saga and decides again; one that dies mid-step
leaves a lease that expires, and beat's tick hands the saga to another. Steps carry deterministic
idempotency keys, so a step run again after a crash replays its first answer instead of repeating its effect.

A local step (Step.local: its command changes only this database) runs its command in a transaction the executor
owns, and records its outcome there, with the command's writes: one commit, and a crash keeps both or neither.
A step that calls another system (the payment provider) commits its command first and records it after, in a
transaction of its own, so no transaction stays open across the call.
"""

import copy
import functools
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from uuid_utils.compat import uuid7

import sqlkit
from commands_app.mediator import CommandAppliedAlready, CommandContext, Mediator, process_mediator
from observability import tracing
from outbox_app import outbox
from sagas_app import bookkeeping, definitions, domain, faults
from sagas_app.models import Saga, SagaStep

log = structlog.get_logger("sagas")
SAGA_CLIENT_ID = "saga"
# The pseudo-owner of a lease taken by the tick for the executor it queued: any executor may take it over.
DISPATCHED = "dispatched"
# A step's log row exists when an attempt begins again (a retry, a resumed saga): one more attempt on it.
STEP_AGAIN = sqlkit.OnConflict(target=("saga", "step", "direction"), update=("status",), add=("attempts",))


class SagaChanged(Exception):
    """The saga's row is no longer the one this executor wrote last: another took its lease, or changed it."""


class Changed:
    """A local step's transaction met a changed saga, and nothing of it was kept."""


CHANGED = Changed()

ENDS_THE_RUN = (domain.Retry, domain.Completed, domain.Failed)
"""Decisions after which the run stops: the saga waits for its retry, or it ended."""


def policy(saga: domain.SagaDefinition) -> domain.Policy:
    """Retries from the settings; each step's timeout from its definition, or the setting it names."""
    timeouts = {
        step.name: float(getattr(settings, step.timeout.setting, step.timeout.seconds))
        if step.timeout.setting
        else step.timeout.seconds
        for step in saga.steps
        if step.timeout is not None
    }
    return domain.Policy(
        retry_base_seconds=settings.SAGA_RETRY_BASE_SECONDS,
        retry_max_seconds=settings.SAGA_RETRY_MAX_SECONDS,
        max_attempts=settings.SAGA_MAX_ATTEMPTS,
        timeouts=timeouts,
    )


def step_key(saga_id: UUID, step: str, direction: str) -> UUID:
    return uuid5(saga_id, f"{step}:{direction}")


NEXT_VERSION = F("version") + 1
NOW = Now()
_lease_until: dict[float, Any] = {}


def lease_until() -> Any:
    """The lease's expiry on the database clock, so executors on different hosts agree on it: one expression per
    lease length, which sqlkit compiles once."""
    seconds = settings.SAGA_LEASE_SECONDS
    if seconds not in _lease_until:
        _lease_until[seconds] = Now() + timedelta(seconds=seconds)
    return _lease_until[seconds]


def lease_is_free() -> Q:
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=Now())


SAGA_FIELDS = [field.attname for field in Saga._meta.concrete_fields]
# An active saga whose lease is free, or reserved by the tick for whoever comes.
CLAIMABLE = (lease_is_free() | Q(lease_owner=DISPATCHED)) & Q(status__in=domain.ACTIVE)


def claim(saga_id: UUID, owner: str, *, within: sqlkit.Transaction | None = None) -> Saga | None:
    """Take the saga's lease if nobody holds it (or it expired, or the tick reserved it for whoever comes): the
    saga as claimed, or None. `within`: in that transaction (the executor's, which begins the saga's attempt in
    it), else in one of its own."""
    statement = sqlkit.update(
        Saga,
        {"lease_owner": owner},
        computed={"lease_expires_at": lease_until(), "version": NEXT_VERSION, "updated_at": NOW},
        where={"saga_id": saga_id},
        condition=CLAIMABLE,
        returning=SAGA_FIELDS,
    )
    if within is not None:
        (claimed,) = within.flush(statement)
    else:
        (claimed,) = bookkeeping.write([statement])
    if not claimed.rows:
        return None
    (row,) = sqlkit.decode(Saga, SAGA_FIELDS, claimed.rows)
    return Saga.from_db("default", SAGA_FIELDS, row)


def dispatch_due(*, limit: int = 200) -> list[UUID]:
    """The sagas beat must resume: a retry that is due, a deadline that passed, or a lease that expired.

    Each gets a short lease owned by DISPATCHED, so the next ticks do not queue it again while its executor
    is on the way; if that executor never comes, the lease expires and a later tick queues it again.
    """
    due = Q(next_attempt_at__lte=Now()) | Q(status=domain.RUNNING, deadline__lte=Now())
    with transaction.atomic():
        saga_ids = list(
            Saga.objects.select_for_update(skip_locked=True)
            .filter(due, lease_is_free(), status__in=domain.ACTIVE)
            .order_by("next_attempt_at")
            .values_list("saga_id", flat=True)[:limit]
        )
        if saga_ids:
            Saga.objects.filter(pk__in=saga_ids).update(
                lease_owner=DISPATCHED, lease_expires_at=lease_until(), version=F("version") + 1, updated_at=Now()
            )
    return saga_ids


@dataclass(frozen=True)
class Run:
    status: str | None
    """The saga's status when the run ended; None when another executor had (or took) the saga."""
    resume_in: float | None = None
    """Seconds until the retry the saga waits for is due."""


def advance(saga_id: UUID, *, send_through: Mediator | None = None) -> Run:
    """Run the saga until it waits for a retry, ends, or another executor takes it."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid7()}"
    # The claim returns the saga, and its first attempt begins in the claim's transaction: one commit.
    with bookkeeping.transaction_of_records() as claiming:
        saga = claim(saga_id, owner, within=claiming)
        if saga is None:
            return Run(status=None)
        definition = definitions.definition(saga.saga_type)
        executor = Executor(
            saga=saga,
            owner=owner,
            definition=definition,
            policy=policy(definition),
            mediator=send_through or process_mediator(),
        )
        executor.begin_at_claim(within=claiming)
    # Every log line of this run, and of the commands it sends, carries the order's correlation id; the steps'
    # events are relayed as one batch once the run ends (a step takes milliseconds), outside the run's span.
    with (
        outbox.one_relay(),
        structlog.contextvars.bound_contextvars(
            correlation_id=saga.context.get("correlation_id"), saga_id=str(saga_id)
        ),
        tracing.continuing("saga advance", saga.context.get(tracing.TRACEPARENT), **{"saga.id": saga_id}),
    ):
        try:
            status = executor.run()
        finally:
            executor.release()
    return executor.outcome(status)


class Executor:
    """Runs one saga it holds the lease of. It keeps the saga's row in memory: every write is conditional on the
    lease and the version it knows, so a write that succeeds leaves the row exactly as it is in memory; one that
    fails (someone else changed the row) makes it read the row again."""

    def __init__(
        self,
        *,
        saga: Saga,
        owner: str,
        definition: domain.SagaDefinition,
        policy: domain.Policy,
        mediator: Mediator,
    ) -> None:
        self.saga = saga
        self.saga_id = saga.saga_id
        self.owner = owner
        self.definition = definition
        self.policy = policy
        self.mediator = mediator
        self._stale = False
        self._begun: tuple[str, str, int] | None = None
        """The attempt the last decision began already (step, direction, attempts), in its own transaction."""

    def run(self) -> str | None:
        reply: domain.Reply | None = None
        answered: tuple[str, str, int] | None = None
        while True:
            if self._stale:
                self.saga, self._stale, self._begun = Saga.objects.get(pk=self.saga_id), False, None
            saga = self.saga
            if saga.lease_owner != self.owner:
                log.info("saga.lease_lost", saga_id=str(saga.saga_id), owner=self.owner)
                return None
            if saga.status not in domain.ACTIVE:
                return saga.status
            now = timezone.now()
            state = saga.state()
            if reply is not None and answered == (saga.status, saga.current_step, saga.attempts):
                # Our last write lost to a concurrent update (a cancellation, an operator): decide the same
                # answer again on the new state rather than sending the step again.
                decision: domain.Decision = domain.decide(self.definition, state, reply, now, self.policy)
            elif self._begun != (saga.current_step, state.direction, saga.attempts) and (
                override := domain.before_attempt(self.definition, state, now)
            ):
                reply, decision = None, override
            else:
                if self._begun != (saga.current_step, state.direction, saga.attempts) and not self._begin_attempt(
                    saga, now
                ):
                    continue
                self._begun = None
                if self.definition.step(saga.current_step).local:
                    reply, answered = None, None
                    recorded = self._run_local_step(saga)
                    if recorded is CHANGED:
                        continue  # nothing of the step was kept: read the saga again and decide afresh
                    if recorded is not None:
                        if isinstance(recorded, ENDS_THE_RUN):
                            return saga.status
                        continue
                reply = self._send(saga)
                faults.step_answered(saga.saga_id, saga.current_step, state.direction)
                answered = (saga.status, saga.current_step, saga.attempts)
                decision = domain.decide(self.definition, saga.state(), reply, timezone.now(), self.policy)
            if not self._apply(saga, decision, reply):
                continue
            reply, answered = None, None
            if isinstance(decision, ENDS_THE_RUN):
                return saga.status

    def release(self) -> None:
        """Give the lease back if still ours (after an error, say); the saga's next_attempt_at says when to resume."""
        if not self._stale and self.saga.lease_owner != self.owner:
            return  # released already, with the decision that ended the run (or never ours)
        Saga.objects.filter(pk=self.saga_id, lease_owner=self.owner).update(
            lease_owner="", lease_expires_at=None, version=F("version") + 1, updated_at=Now()
        )
        self._stale = True

    def outcome(self, status: str | None) -> Run:
        saga = Saga.objects.get(pk=self.saga_id) if self._stale else self.saga
        if status in domain.ACTIVE and saga.next_attempt_at is not None and not saga.lease_owner:
            return Run(status=status, resume_in=max((saga.next_attempt_at - timezone.now()).total_seconds(), 0.0))
        return Run(status=status)

    # --- one attempt -----------------------------------------------------------------------------------
    def begin_at_claim(self, *, within: sqlkit.Transaction) -> None:
        """In the claim's transaction (which holds the saga's row): begin the attempt the saga is at, as run()
        would first, unless it would not attempt it now (the saga ended, or its deadline or a cancellation decides
        instead)."""
        saga, now = self.saga, timezone.now()
        if saga.status in domain.ACTIVE and not domain.before_attempt(self.definition, saga.state(), now):
            self._begin_attempt(saga, now, within=within)
            self._begun = (saga.current_step, saga.state().direction, saga.attempts)

    def _begin_attempt(self, saga: Saga, now: datetime, *, within: sqlkit.Transaction | None = None) -> bool:
        return self._write(
            saga, {"attempts": saga.attempts + 1}, renew_lease=within is None, begins=True, now=now, within=within
        )

    @staticmethod
    def _step_begins(saga: Saga, now: datetime) -> list[sqlkit.Statement]:
        """The step log of the attempt the saga (as it will be written) is at: its row when it is the step's
        first attempt in this direction, one more attempt on the row otherwise."""
        direction = saga.state().direction
        row = {
            "saga_id": saga.saga_id,
            "step": saga.current_step,
            "direction": direction,
            "idempotency_key": step_key(saga.saga_id, saga.current_step, direction),
            "started_at": now,
            "finished_at": None,
            "status": SagaStep.Status.RUNNING,
            "attempts": 1,
            "error": "",
            "result": {},
        }
        return sqlkit.insert(SagaStep, [row], on_conflict=STEP_AGAIN)

    def _run_local_step(self, saga: Saga) -> "domain.Decision | Changed | None":
        """A local step's command and the record of its outcome in one transaction: both are kept, or neither.

        The decision, once recorded with the command's writes (and, when it moves on, the next step's attempt
        begun); CHANGED when the saga changed meanwhile (a cancellation, an operator, a lost lease): the command is
        rolled back with the record, and the saga is read again. None when the command is to run the regular way,
        its attempt begun already: its key's first answer committed before (it is replayed), or it raised.
        """
        direction, version = saga.state().direction, saga.version
        try:
            with sqlkit.Transaction.begin() as transaction:
                reply = self._send(saga, within=transaction)
                faults.step_answered(saga.saga_id, saga.current_step, direction)
                decision = domain.decide(self.definition, saga.state(), reply, timezone.now(), self.policy)
                self._apply(saga, decision, reply, within=transaction)
        except SagaChanged:
            self._stale = True
            return CHANGED
        except CommandAppliedAlready:
            return None
        except Exception:
            if saga.version != version:  # recorded in memory, but not committed: as a failed bookkeeping write
                self._stale = True
                raise
            log.warning("saga.local_step_raised", saga_id=str(saga.saga_id), step=saga.current_step, exc_info=True)
            return None
        return decision

    def _send(self, saga: Saga, *, within: sqlkit.Transaction | None = None) -> domain.Reply:
        """Send the step's command; its answer as a reply (an exception is a 500 reply). `within`: the transaction
        the command runs in, owned by the executor; an exception then propagates, to roll that transaction back."""
        direction = saga.state().direction
        step = self.definition.step(saga.current_step)
        build = step.forward if direction == domain.FORWARD else step.compensation
        assert build is not None, f"{saga.saga_type} has no {direction} command at {step.name}"
        command = build(
            domain.StepInput(
                saga_id=saga.saga_id,
                correlation_id=saga.correlation_id,
                context=saga.context,
                idempotency_key=step_key(saga.saga_id, saga.current_step, direction),
                reason=saga.reason,
                step_keys=functools.partial(step_key, saga.saga_id),
            )
        )
        context = CommandContext(
            client_id=SAGA_CLIENT_ID,
            scopes=self.definition.scopes,
            correlation_id=saga.context.get("correlation_id") or str(saga.saga_id),
            causation_id=saga.context.get("causation_id"),
        )
        log.info("saga.step_sent", saga_id=str(saga.saga_id), step=saga.current_step, direction=direction)
        try:
            with tracing.span(f"saga step {saga.current_step} {direction}", **{"saga.id": saga.saga_id}):
                outcome = self.mediator.send(command, context if within is None else context.within(within))
        except Exception as error:
            if within is not None:
                raise
            log.exception("saga.step_crashed", saga_id=str(saga.saga_id), step=saga.current_step)
            return domain.Reply(
                status_code=500, error_code="EXCEPTION", error_message=f"{type(error).__name__}: {error}"
            )
        if outcome.error is not None:
            return domain.Reply(
                status_code=outcome.status_code,
                error_code=outcome.error.code,
                error_message=outcome.error.message,
                error_details=outcome.error.details,
            )
        return domain.Reply(status_code=outcome.status_code, body=outcome.body)

    # --- recording a decision ----------------------------------------------------------------------
    def _apply(
        self,
        saga: Saga,
        decision: domain.Decision,
        reply: domain.Reply | None,
        *,
        within: sqlkit.Transaction | None = None,
    ) -> bool:
        """Record the decision: the saga's new state and the step's outcome in one transaction (`within`: the
        step's command's, sent with its writes). A decision that moves on to another step (Done, Compensate)
        begins that step's first attempt in the same transaction."""
        now = timezone.now()
        step, direction = saga.current_step, saga.state().direction
        finished: dict[str, Any] = {"finished_at": now, "result": dict(reply.body) if reply else {}}
        released: dict[str, Any] = {"lease_owner": "", "lease_expires_at": None}
        renew, begins = False, False
        match decision:
            case domain.Done(next_step=next_step, deadline=deadline):
                renew = begins = True
                fields = {
                    "current_step": next_step,
                    "attempts": 1,
                    "deadline": deadline,
                    "next_attempt_at": now,
                    "last_error": "",
                }
                step_fields = {**finished, "status": SagaStep.Status.SUCCEEDED, "error": ""}
            case domain.Retry(delay_seconds=delay, error=error):
                fields = {"next_attempt_at": now + timedelta(seconds=delay), "last_error": error, **released}
                step_fields = {"status": SagaStep.Status.RETRYING, "error": error}
            case domain.Compensate(reason=reason, next_step=next_step, abandoned=abandoned):
                renew = begins = True
                fields = {
                    "status": domain.COMPENSATING,
                    "reason": reason,
                    "current_step": next_step,
                    "attempts": 1,
                    "deadline": None,
                    "next_attempt_at": now,
                }
                error = reason if reply is None or reply.ok else f"{reason} ({reply.describe()})"
                status = SagaStep.Status.ABANDONED if abandoned else SagaStep.Status.FAILED
                step_fields = {**finished, "status": status, "error": error}
            case domain.Completed(outcome=outcome, reason=reason, abandoned=abandoned):
                fields = {
                    "status": domain.COMPLETED,
                    "outcome": outcome,
                    "reason": reason,
                    "deadline": None,
                    "next_attempt_at": None,
                    "last_error": "",
                    **released,
                }
                if abandoned:  # given up with nothing to compensate
                    step_fields = {**finished, "status": SagaStep.Status.ABANDONED, "error": reason}
                else:
                    step_fields = {**finished, "status": SagaStep.Status.SUCCEEDED, "error": ""}
            case domain.Failed(error=error):
                fields = {"status": domain.FAILED, "next_attempt_at": None, "last_error": error, **released}
                step_fields = {**finished, "status": SagaStep.Status.FAILED, "error": error}
        outcome_of_step = sqlkit.update(
            SagaStep, step_fields, where={"saga_id": saga.saga_id, "step": step, "direction": direction}
        )
        if not self._write(
            saga, fields, renew_lease=renew, begins=begins, now=now, also=[outcome_of_step], within=within
        ):
            return False
        self._begun = (saga.current_step, saga.state().direction, saga.attempts) if begins else None
        self._log(saga, decision, direction)
        return True

    def _write(
        self,
        saga: Saga,
        fields: dict[str, Any],
        *,
        renew_lease: bool,
        begins: bool,
        now: datetime,
        also: list[sqlkit.Statement] | None = None,
        within: sqlkit.Transaction | None = None,
    ) -> bool:
        """One transaction of bookkeeping, one round trip: the saga's new fields, `also`, and (`begins`) the
        step log of the attempt the saga is then at. The saga's update is conditional on our lease and on the
        version we know; if it matched no row, nothing is kept and the saga is read again. On success the saga
        in memory is the row as written (its lease's expiry aside, which is on the database clock).

        `within`: sent with that transaction's staged writes instead, committing with them; a mismatch raises
        SagaChanged, for its owner to roll it back."""
        written = copy.copy(saga)
        for name, value in fields.items():
            setattr(written, name, value)
        lease = {"lease_expires_at": lease_until()} if renew_lease else {}
        statements = [
            sqlkit.update(
                Saga,
                fields,
                computed={**lease, "version": NEXT_VERSION, "updated_at": NOW},
                where={"saga_id": saga.pk, "version": saga.version, "lease_owner": self.owner},
                expect_rows=1,
                mismatch=SagaChanged,
            ),
            *(also or []),
            *(self._step_begins(written, now) if begins else []),
        ]
        if within is not None:
            within.flush(*statements)
        else:
            try:
                bookkeeping.write(statements)
            except SagaChanged:
                self._stale = True
                return False
        for name, value in fields.items():
            setattr(saga, name, value)
        saga.version += 1
        return True

    def _log(self, saga: Saga, decision: domain.Decision, direction: str) -> None:
        fields = {
            "saga_id": str(saga.saga_id),
            "saga_type": saga.saga_type,
            "saga_correlation_id": saga.correlation_id,
            "direction": direction,
        }
        if isinstance(decision, domain.Failed):
            # Never silent: an operator retries or aborts it (admin, or `manage.py sagas`).
            log.error("saga.failed", step=saga.current_step, error=decision.error, **fields)
        elif isinstance(decision, domain.Completed):
            log.info("saga.completed", outcome=decision.outcome, reason=decision.reason, **fields)
        else:
            log.info("saga.decided", decision=type(decision).__name__, step=saga.current_step, **fields)
