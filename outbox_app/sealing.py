"""Personal data in the log, sealed with its subject's key: crypto-shredding, the erasure an append-only log allows.

The producer seals an event's personal fields when it writes the event (`seal`): they leave the payload and travel
as one AES-256-GCM box under `"sealed"`, bound to the subject (the customer) as associated data, beside the
fields that are no one's secret. The keys are the producer's (a table of its own, one key per customer); it
registers how to look them up (`register_key_lookup`) in its AppConfig.ready(). Readers of the log open the
boxes in bulk (`open_sealed`: one key lookup per batch): the relay, the log reader (the event feed, the webhooks'
safety net) and replay and verification. When a subject's key is destroyed, its boxes can no longer be opened,
anywhere, in every copy and backup of the log: each of their fields reads as ERASED.
"""

import base64
import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# What an erased subject's personal fields read as, everywhere (the read models show it too).
ERASED = "[erased]"
SEALED = "sealed"
KEY_BYTES = 32
_NONCE_BYTES = 12

KeyLookup = Callable[[Collection[str]], Mapping[str, bytes]]


def _no_keys(subjects: Collection[str]) -> Mapping[str, bytes]:
    return {}


_lookup: list[KeyLookup] = [_no_keys]


def register_key_lookup(lookup: KeyLookup) -> None:
    """`lookup(subjects)` -> the key of each subject that has one (an erased subject has none)."""
    _lookup[0] = lookup


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def seal(payload: dict[str, Any], fields: Iterable[str], *, subject: str, key: bytes | None) -> dict[str, Any]:
    """The payload with `fields` moved into a box only `key` opens; with no key (the subject is erased already)
    the fields are stored as ERASED."""
    fields = [name for name in fields if name in payload]
    if not fields:
        return payload
    sealed = {name: value for name, value in payload.items() if name not in fields}
    if key is None:
        return sealed | dict.fromkeys(fields, ERASED)
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = json.dumps({name: payload[name] for name in fields}, separators=(",", ":")).encode()
    box = nonce + AESGCM(key).encrypt(nonce, plaintext, subject.encode())
    sealed[SEALED] = {"subject": subject, "fields": fields, "box": base64.b64encode(box).decode()}
    return sealed


def is_sealed(payload: Any) -> bool:
    if isinstance(payload, str | bytes):
        return '"sealed"' in (payload if isinstance(payload, str) else payload.decode())
    return isinstance(payload, dict) and SEALED in payload


def open_sealed(envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The envelopes with their boxes opened, or their sealed fields ERASED where the key is gone (one key lookup
    for the lot). An envelope with nothing sealed is returned as it is; an opened one is a new dict."""
    sealed = [i for i, envelope in enumerate(envelopes) if is_sealed(envelope["payload"])]
    if not sealed:
        return envelopes
    opened = list(envelopes)
    payloads = {}
    for i in sealed:
        payload = envelopes[i]["payload"]
        payloads[i] = json.loads(payload) if isinstance(payload, str | bytes) else payload
    keys = _lookup[0]({payloads[i][SEALED]["subject"] for i in sealed})
    for i in sealed:
        opened[i] = {**envelopes[i], "payload": open_payload(payloads[i], keys)}
    return opened


def open_payload(payload: dict[str, Any], keys: Mapping[str, bytes]) -> dict[str, Any]:
    box = payload[SEALED]
    plain = {name: value for name, value in payload.items() if name != SEALED}
    key = keys.get(box["subject"])
    if key is None:
        return plain | dict.fromkeys(box["fields"], ERASED)
    raw = base64.b64decode(box["box"])
    values = json.loads(AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], box["subject"].encode()))
    return plain | values


def redact_unsealed(event_type: str, *, subject: str, fields: Collection[str]) -> int:
    """Overwrite with ERASED, in place, the `fields` of `event_type` rows about `subject` (the payload's
    `customer_id`) that were stored in clear, before sealing existed, in the outbox and in its archive: the only
    rewrite of the log an erasure needs. Returns the rows changed."""
    from django.db import transaction

    from outbox_app.models import ArchivedEvent, OutboxEvent  # here: the model module imports this one

    redacted = 0
    with transaction.atomic():
        for model in (OutboxEvent, ArchivedEvent):
            rows = model.objects.filter(event_type=event_type, payload__customer_id=subject).exclude(
                payload__has_key=SEALED
            )
            for row in rows.select_for_update():
                personal = [name for name in fields if row.payload.get(name) not in (None, "", ERASED)]
                if personal:
                    row.payload = {**row.payload, **dict.fromkeys(personal, ERASED)}
                    row.save(update_fields=["payload"])
                    redacted += 1
    return redacted
