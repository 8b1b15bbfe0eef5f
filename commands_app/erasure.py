"""A customer's erasure (GDPR's right to erasure) on an append-only log: crypto-shredding, and what it cannot reach.

`erase_customer` sends EraseCustomer through the mediator: in one transaction the customer's key is destroyed
(its row kept as a tombstone), the write model's row forgets the names and the email, and CustomerErased (no
personal data) goes to the log, so the read models show the customer as erased. Every event sealed with that key,
in the log, its archive and every backup of them, reads `[erased]` in its personal fields from then on.

Two things the key does not reach are cleaned here, after the command: events written before personal data was
sealed (they hold it in clear, and are redacted in place), and the idempotency records of the customer's commands
(their request fingerprint is a hash of the names and email: it is overwritten). docs/security.md, "Erasure",
lists what erasure covers and what it cannot.
"""

from dataclasses import dataclass
from uuid import UUID

from uuid_utils.compat import uuid7

from commands_app.commands import EraseCustomer
from commands_app.events import CATALOG
from commands_app.mediator import CommandContext, process_mediator
from commands_app.models import IdempotencyRecord
from commands_app.ports import SYSTEM
from outbox_app import sealing

OPERATOR_CLIENT_ID = "operator"
ERASED_FINGERPRINT = "erased"


class UnknownCustomer(LookupError):
    """No customer has this id: nothing was erased."""


@dataclass(frozen=True)
class Erasure:
    customer_id: UUID
    # False when the customer had been erased before (erasure is idempotent)
    erased_now: bool
    # events stored before sealing, whose personal fields were overwritten in place
    events_redacted: int
    idempotency_records_forgotten: int


def erase_customer(customer_id: UUID) -> Erasure:
    context = CommandContext(client_id=OPERATOR_CLIENT_ID, scopes=SYSTEM, correlation_id=f"erase-{uuid7()}")
    outcome = process_mediator().send(EraseCustomer(idempotency_key=uuid7(), customer_id=customer_id), context)
    if outcome.error is not None:
        if outcome.error.code == "CUSTOMER_NOT_FOUND":
            raise UnknownCustomer(str(customer_id))
        raise RuntimeError(f"EraseCustomer failed: {outcome.error.code}: {outcome.error.message}")
    return Erasure(
        customer_id=customer_id,
        erased_now=bool(outcome.body["erased_now"]),
        events_redacted=redact_unsealed_events(customer_id),
        idempotency_records_forgotten=forget_idempotency_fingerprints(customer_id),
    )


def redact_unsealed_events(customer_id: UUID) -> int:
    """Overwrite, in place, the personal fields of the customer's events that were stored in clear (before keys
    existed): the one rewrite of the log that erasure needs, and only ever of such old rows."""
    return sum(
        sealing.redact_unsealed(event.__name__, subject=str(customer_id), fields=event.personal_fields)
        for events in CATALOG.values()
        for event in events
        if event.personal_fields
    )


def forget_idempotency_fingerprints(customer_id: UUID) -> int:
    """The durable idempotency records of the customer's commands keep their answer (no personal data: ids and
    versions) but lose the request fingerprint, a hash of what was sent (names, email). A retry with such a key
    is then refused as a reuse (422 IDEMPOTENCY_KEY_REUSED): it can never run again."""
    records = IdempotencyRecord.objects.filter(response_body__contains=str(customer_id)).exclude(
        request_hash=ERASED_FINGERPRINT
    )
    return records.update(request_hash=ERASED_FINGERPRINT)
