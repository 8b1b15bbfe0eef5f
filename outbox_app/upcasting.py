"""Event schema evolution: every reader of the log gets each event at its type's current schema.

The log is append-only, so an event keeps the `event_type` and `schema_version` it was written with. The producer
declares, beside its events, how each older form becomes the next one (an upcaster: a pure function of the
payload, which may also rename the type), and registers it here in its AppConfig.ready(). `upcast()` applies
them in a chain until no upcaster is registered for the (type, version) at hand: that is the current form.

It runs where a stored row becomes an envelope (outbox_app.models.envelope(): the relay, the log reader, replay
and verification) and where a consumer receives one that may have been published before a deploy (the
projections, the sagas, the webhooks' fan-out). So no consumer, inside or outside (the event feed, webhook
receivers), ever sees an old form. For an event already current it costs one dict lookup.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Payload = dict[str, Any]


@dataclass(frozen=True)
class Upcaster:
    """`event_type` at `from_version` becomes `to_type` at `from_version + 1` (a rename when the types differ)."""

    event_type: str
    from_version: int
    to_type: str
    change: Callable[[Payload], Payload]

    @property
    def to_version(self) -> int:
        return self.from_version + 1


_by_stored_form: dict[tuple[str, int], Upcaster] = {}


def register(upcaster: Upcaster) -> None:
    """Register an upcaster; registering the same one again (a second ready()) is harmless, a different one for the
    same stored form is refused."""
    key = (upcaster.event_type, upcaster.from_version)
    known = _by_stored_form.get(key)
    if known is not None and known != upcaster:
        raise ValueError(f"{upcaster.event_type} v{upcaster.from_version} has two upcasters.")
    _by_stored_form[key] = upcaster


def upcasters() -> list[Upcaster]:
    return list(_by_stored_form.values())


def upcast(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope at its type's current schema: `envelope` itself when it is current, else a new dict (a stored
    envelope, e.g. a parked event's, is never changed in place)."""
    upcaster = _by_stored_form.get((envelope["event_type"], envelope["schema_version"]))
    if upcaster is None:
        return envelope
    payload = envelope["payload"]
    if isinstance(payload, str | bytes):  # a row read without decoding its jsonb (the replay's stream)
        payload = json.loads(payload)
    current = dict(envelope)
    # Personal data sealed in the payload (outbox_app/sealing.py) is opened later, by the reader: upcasters never
    # see it and carry it through untouched.
    sealed = {key: payload[key] for key in ("sealed",) if key in payload}
    while upcaster is not None:
        payload = upcaster.change({key: value for key, value in payload.items() if key not in sealed})
        payload.update(sealed)
        current["event_type"], current["schema_version"] = upcaster.to_type, upcaster.to_version
        upcaster = _by_stored_form.get((upcaster.to_type, upcaster.to_version))
    current["payload"] = payload
    return current


def upcast_all(envelopes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [upcast(envelope) for envelope in envelopes]


def stored_names(event_types: Iterable[str]) -> list[str]:
    """The types as the log may store them: each one and every older name that upcasts to it (to filter rows)."""
    wanted = set(event_types)
    grew = True
    while grew:
        older = {u.event_type for u in _by_stored_form.values() if u.to_type in wanted}
        grew = not older <= wanted
        wanted |= older
    return sorted(wanted)
