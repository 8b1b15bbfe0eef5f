"""Idempotency in two tiers: a fast claim in Redis, and a durable record in the command's transaction.

Same key and payload: the stored response again, nothing new written. Same key, other payload: 422
IDEMPOTENCY_KEY_REUSED. Same key while the first still runs: 409 IDEMPOTENCY_IN_PROGRESS. Keys are
scoped per API client. Only successful outcomes are stored: a command that failed wrote nothing, so its
key may be retried. The durable record is written once, last, in the command's own transaction: with
Redis flushed or down, a duplicate meets the first request's record (or its effects), rolls its whole
transaction back and replays the committed response.

The middleware owns the command's transaction (it begins it, and sends the unit of work's staged writes with
its record as one query), unless the sender began one (CommandContext.transaction): it then stages its record
there, for the sender to send with its own statements, and completes the fast tier only once that commits.
"""

import dataclasses
import functools
import hashlib
import json
from datetime import timedelta

import structlog
from django.utils import timezone

import sqlkit
from commands_app.commands import Command
from commands_app.mediator import CommandAppliedAlready, CommandContext, CommandOutcome, Next
from commands_app.middleware.idempotency_store import Claim, FastPath, FastPathUnavailable
from commands_app.models import IdempotencyRecord
from commands_app.result import Error

log = structlog.get_logger("commands.idempotency")
REPLAYED_HEADER = "Idempotent-Replayed"

# A live record keeps the key; an expired one is replaced in place (its row, its id).
_REPLACE_EXPIRED = sqlkit.OnConflict(
    target=("client_id", "key"),
    update=(
        "command_type",
        "request_hash",
        "status_code",
        "response_body",
        "response_headers",
        "created_at",
        "expires_at",
    ),
    only_if="{row}.expires_at <= {new}.created_at",
)


def fingerprint(command: Command) -> str:
    fields = {
        f.name: getattr(command, f.name) for f in dataclasses.fields(command) if f.name not in command.generated_fields
    }
    canonical = json.dumps({"type": type(command).__name__, "fields": fields}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _reused() -> CommandOutcome:
    error = Error("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used with a different request.")
    return CommandOutcome(status_code=422, error=error)


def _replay(status_code: int, body: dict[str, object], headers: dict[str, str]) -> CommandOutcome:
    return CommandOutcome(
        status_code=status_code, body=dict(body), headers={**headers, REPLAYED_HEADER: "true"}, replayed=True
    )


class IdempotencyMiddleware:
    def __init__(self, *, fast_path: FastPath, window_seconds: int, claim_seconds: int) -> None:
        self.fast_path = fast_path
        self.window_seconds = window_seconds
        self.claim_seconds = claim_seconds

    def __call__(self, command: Command, context: CommandContext, call_next: Next) -> CommandOutcome:
        key = f"{context.client_id}:{command.idempotency_key}"
        request_hash = fingerprint(command)
        claim = self._claim_fast(key, request_hash)
        if claim is not None and claim.state != "claimed":
            return self._answer_from_fast_path(claim, request_hash)
        try:
            outcome = self._run_durably(command, context, call_next, request_hash)
        except BaseException:
            if claim is not None:
                self._quietly(self.fast_path.release, key, request_hash)
            raise
        if claim is not None:
            if outcome.ok:
                headers = {k: v for k, v in outcome.headers.items() if k != REPLAYED_HEADER}
                complete = functools.partial(
                    self._quietly,
                    self.fast_path.complete,
                    key,
                    request_hash,
                    outcome.status_code,
                    outcome.body,
                    headers,
                    self.window_seconds,
                )
                if context.transaction is not None and not outcome.replayed:
                    # Not committed yet: the sender's commit completes the claim. Should the sender roll back,
                    # the claim answers 409 until its TTL, and the durable tier after that.
                    context.transaction.on_commit(complete)
                else:
                    complete()
            else:
                self._quietly(self.fast_path.release, key, request_hash)
        return outcome

    def _claim_fast(self, key: str, request_hash: str) -> Claim | None:
        try:
            return self.fast_path.claim(key, request_hash, self.claim_seconds)
        except FastPathUnavailable as error:
            log.warning("idempotency.degraded", reason=str(error))
            return None

    def _answer_from_fast_path(self, claim: Claim, request_hash: str) -> CommandOutcome:
        if claim.request_hash != request_hash:
            return _reused()
        if claim.state == "done" and claim.status_code is not None:
            return _replay(claim.status_code, claim.body or {}, claim.headers or {})
        error = Error("IDEMPOTENCY_IN_PROGRESS", "A request with this Idempotency-Key is still running.")
        return CommandOutcome(status_code=409, error=error, headers={"Retry-After": "1"})

    def _run_durably(
        self, command: Command, context: CommandContext, call_next: Next, request_hash: str
    ) -> CommandOutcome:
        """Run the command and store its response in one transaction; a key used before replays instead.

        The record is written once, last, with the response. A request whose key has a live record (a
        duplicate after a Redis flush or outage, or one that ran concurrently and committed first) finds
        out when its insert meets the unique index, or earlier when its handler meets the first one's
        effects and answers a business error: either way its whole transaction rolls back and it replays.
        """
        if context.transaction is not None:
            return self._run_in_senders_transaction(command, context, call_next, request_hash)
        with sqlkit.Transaction.begin() as transaction:
            outcome = call_next(command, context.within(transaction))
            if outcome.ok:
                # The unit of work's writes (aggregate rows, outbox rows) and the record: one query.
                (record,) = transaction.flush(self._record(command, context, request_hash, outcome))
                if record.rowcount == 1:
                    return outcome
            transaction.roll_back()
        return self._answer_after_rollback(command, context, request_hash, outcome)

    def _run_in_senders_transaction(
        self, command: Command, context: CommandContext, call_next: Next, request_hash: str
    ) -> CommandOutcome:
        """The sender owns the transaction: the record is staged there with the writes, and a live record of
        the key makes the sender's flush raise CommandAppliedAlready (its transaction rolls back)."""
        transaction = context.transaction
        assert transaction is not None
        outcome = call_next(command, context)
        if not outcome.ok:
            return self._answer_after_rollback(command, context, request_hash, outcome)
        record = self._record(command, context, request_hash, outcome)
        transaction.stage(
            sqlkit.Statement(
                record.sql,
                record.params,
                expect_rows=1,
                mismatch=lambda: CommandAppliedAlready(f"{type(command).__name__} {command.idempotency_key}"),
            )
        )
        return outcome

    def _answer_after_rollback(
        self, command: Command, context: CommandContext, request_hash: str, outcome: CommandOutcome
    ) -> CommandOutcome:
        record = self._live_record(command, context)
        if record is None:
            if outcome.ok:
                raise RuntimeError("An idempotency record blocked this command and then vanished.")
            return outcome
        if record.request_hash != request_hash:
            return _reused()
        assert record.status_code is not None and record.response_body is not None
        return _replay(record.status_code, record.response_body, record.response_headers)

    def _record(
        self, command: Command, context: CommandContext, request_hash: str, outcome: CommandOutcome
    ) -> sqlkit.Statement:
        """The record with the response: inserted, or replacing an expired one (RETURNING a row then); no row
        when a live one holds the key. A concurrent transaction holding the same key makes it wait until that
        one ends."""
        now = timezone.now()
        values = {
            "client_id": context.client_id,
            "key": command.idempotency_key,
            "command_type": type(command).__name__,
            "request_hash": request_hash,
            "status_code": outcome.status_code,
            "response_body": outcome.body,
            "response_headers": outcome.headers,
            "created_at": now,
            "expires_at": now + timedelta(seconds=self.window_seconds),
        }
        (statement,) = sqlkit.insert(
            IdempotencyRecord,
            [values],
            on_conflict=_REPLACE_EXPIRED,
            returning=["id"],
        )
        return statement

    @staticmethod
    def _live_record(command: Command, context: CommandContext) -> IdempotencyRecord | None:
        return IdempotencyRecord.objects.filter(
            client_id=context.client_id, key=command.idempotency_key, expires_at__gt=timezone.now()
        ).first()

    @staticmethod
    def _quietly(operation: object, *args: object) -> None:
        try:
            operation(*args)  # type: ignore[operator]
        except FastPathUnavailable as error:
            log.warning("idempotency.degraded", reason=str(error))
