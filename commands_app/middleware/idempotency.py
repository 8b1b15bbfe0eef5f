"""Idempotency in two tiers: a fast claim in Redis, and a durable record in the command's transaction.

Same key and payload: the first response again, byte for byte, nothing new written. Same key, other payload:
422 IDEMPOTENCY_KEY_REUSED. Same key while the first still runs: 409 IDEMPOTENCY_IN_PROGRESS. Keys are
scoped per API client. What a key keeps (docs/idempotency.md): a success; and, for API clients
(CommandContext.keeps_business_errors), a business error, a 4xx from the handler, whose transaction wrote
nothing and whose record is written right after it rolled back. A server error (5xx, an exception) is never
kept, nor is anything refused before the handler ran. The durable record of a success is written once, last,
in the command's own transaction: with Redis flushed or down, a duplicate meets the first request's record
(or its effects), rolls its whole transaction back and replays the committed response.

The middleware owns the command's transaction (it begins it, and sends the unit of work's staged writes with
its record as one query: `Transaction.flush`), unless the sender began one (CommandContext.transaction): it then
stages its record there, for the sender to send with its own statements. Such a command skips the fast tier: the
sender's transaction is its dedupe (its record's insert waits for a concurrent holder of the key, and a committed
one makes the sender's flush raise CommandAppliedAlready), and a claim taken in Redis would outlive a rollback of
that transaction, answering 409 to the sender's next try until it expired. The sender is a saga step recording its
progress in its command's transaction, and the saga's lease already keeps a second sender away.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.utils import timezone

import sqlkit
from commands_app.commands import Command
from commands_app.mediator import CommandAppliedAlready, CommandContext, CommandOutcome, Next
from commands_app.middleware.idempotency_store import Claim, FastPath, FastPathUnavailable, StoredResponse
from commands_app.models import IdempotencyRecord
from commands_app.result import Error

log = structlog.get_logger("commands.idempotency")
REPLAYED_HEADER = "Idempotent-Replayed"

# A live record keeps the key; an expired one is replaced in place (its row, its id). RETURNING gives a row when
# this request now owns the key (inserted, or an expired record replaced), none when a live record holds it.
_REPLACE_EXPIRED = sqlkit.OnConflict(
    target=("client_id", "key"),
    update=(
        "command_type",
        "request_hash",
        "status_code",
        "response_body",
        "response_error",
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


@dataclass(frozen=True)
class Answer:
    """The outcome of a request, and whether the key keeps it as its answer (so the fast tier keeps it too)."""

    outcome: CommandOutcome
    key_keeps: bool


def stored(outcome: CommandOutcome, context: CommandContext) -> StoredResponse:
    """The response a key keeps: a success's body, or the business error with the correlation id that the first
    answer's problem document carried (this request's, unless it replays another's)."""
    headers = {k: v for k, v in outcome.headers.items() if k != REPLAYED_HEADER}
    error = None
    if outcome.error is not None:
        error = {
            "code": outcome.error.code,
            "message": outcome.error.message,
            "details": outcome.error.details,
            "correlation_id": outcome.correlation_id or context.correlation_id,
        }
    return StoredResponse(status_code=outcome.status_code, body=outcome.body, headers=headers, error=error)


def _replay(response: StoredResponse) -> CommandOutcome:
    error = correlation_id = None
    if response.error is not None:
        error = Error(response.error["code"], response.error["message"], response.error["details"])
        correlation_id = response.error["correlation_id"]
    return CommandOutcome(
        status_code=response.status_code,
        body=dict(response.body),
        error=error,
        headers={**response.headers, REPLAYED_HEADER: "true"},
        replayed=True,
        correlation_id=correlation_id,
    )


def kept(outcome: CommandOutcome, context: CommandContext) -> bool:
    """Whether the key keeps this outcome of the handler: a success always; a business error (4xx) when the
    sender asks for Stripe's rule. Never a server error: the same key must be able to try again."""
    if outcome.ok:
        return True
    return context.keeps_business_errors and 400 <= outcome.status_code < 500


class IdempotencyMiddleware:
    def __init__(self, *, fast_path: FastPath, window_seconds: int, claim_seconds: int) -> None:
        self.fast_path = fast_path
        self.window = window_seconds
        self.claim_seconds = claim_seconds

    def __call__(self, command: Command, context: CommandContext, call_next: Next) -> CommandOutcome:
        key = f"{context.client_id}:{command.idempotency_key}"
        request_hash = fingerprint(command)
        claim = self._claim_fast(key, request_hash) if context.transaction is None else None
        if claim is not None and claim.state != "claimed":
            return self._answer_from_fast_path(claim, request_hash)
        try:
            answer = self._run_durably(command, context, call_next, request_hash)
        except BaseException:
            if claim is not None:
                self._quietly(self.fast_path.release, key, request_hash)
            raise
        if claim is not None:
            if answer.key_keeps:
                self._quietly(self.fast_path.complete, key, request_hash, stored(answer.outcome, context), self.window)
            else:
                self._quietly(self.fast_path.release, key, request_hash)
        return answer.outcome

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
            return _replay(StoredResponse(claim.status_code, claim.body or {}, claim.headers or {}, claim.error))
        error = Error("IDEMPOTENCY_IN_PROGRESS", "A request with this Idempotency-Key is still running.")
        return CommandOutcome(status_code=409, error=error, headers={"Retry-After": "1"})

    def _run_durably(self, command: Command, context: CommandContext, call_next: Next, request_hash: str) -> Answer:
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
                    return Answer(outcome, key_keeps=True)
            transaction.roll_back()
        # A business error wrote nothing (its transaction just rolled back); the key keeps it, in a statement of
        # its own, unless a live record holds the key already: the first answer, which is replayed instead.
        if not outcome.ok and kept(outcome, context):
            (record,) = sqlkit.send([self._record(command, context, request_hash, outcome)])
            if record.rowcount == 1:
                return Answer(outcome, key_keeps=True)
        return self._answer_after_rollback(command, context, request_hash, outcome)

    def _run_in_senders_transaction(
        self, command: Command, context: CommandContext, call_next: Next, request_hash: str
    ) -> Answer:
        """The sender owns the transaction: the record is staged there with the writes, and a live record of
        the key makes the sender's flush raise CommandAppliedAlready (its whole transaction rolls back)."""
        transaction = context.transaction
        assert transaction is not None
        outcome = call_next(command, context)
        if not kept(outcome, context):
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
        return Answer(outcome, key_keeps=True)

    def _answer_after_rollback(
        self, command: Command, context: CommandContext, request_hash: str, outcome: CommandOutcome
    ) -> Answer:
        """The live record of the key, replayed, when this request's outcome was not kept."""
        record = self._live_record(command, context)
        if record is None:
            if kept(outcome, context):
                raise RuntimeError("An idempotency record blocked this command and then vanished.")
            return Answer(outcome, key_keeps=False)
        if record.request_hash != request_hash:
            return Answer(_reused(), key_keeps=False)
        assert record.status_code is not None
        body = json.loads(record.response_body) if record.response_body is not None else {}
        first = StoredResponse(record.status_code, body, record.response_headers, record.response_error)
        return Answer(_replay(first), key_keeps=True)

    def _record(
        self, command: Command, context: CommandContext, request_hash: str, outcome: CommandOutcome
    ) -> sqlkit.Statement:
        """The record with the response: inserted, or replacing an expired one (RETURNING a row then); no row when
        a live one holds the key. A concurrent transaction holding the same key makes it wait until that one ends."""
        now = timezone.now()
        response = stored(outcome, context)
        values = {
            "client_id": context.client_id,
            "key": command.idempotency_key,
            "command_type": type(command).__name__,
            "request_hash": request_hash,
            "status_code": response.status_code,
            "response_body": None if response.error is not None else json.dumps(response.body),
            "response_error": response.error,
            "response_headers": response.headers,
            "created_at": now,
            "expires_at": now + timedelta(seconds=self.window),
        }
        (statement,) = sqlkit.insert(IdempotencyRecord, [values], on_conflict=_REPLACE_EXPIRED, returning=["id"])
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
