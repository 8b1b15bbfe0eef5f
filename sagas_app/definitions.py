"""The saga definitions this process runs, by saga type, and the events that start or stop them.

Each saga registers once (the fulfilment saga in SagasAppConfig.ready()): its definition, and for each event type
that concerns it, a function that starts or flags its saga and returns the saga to advance. Registering subscribes
`sagas_app.handle_events` to those event types on the bus; that task hands each envelope to them.
"""

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from outbox_app import registry
from sagas_app.domain import SagaDefinition

HANDLE_EVENTS_TASK = "sagas_app.handle_events"

EventHandler = Callable[[dict[str, Any]], UUID | None]
"""Given an envelope: the saga it started or flagged (to advance once the transaction commits), or None."""

_definitions: dict[str, SagaDefinition] = {}
_handlers: dict[str, list[EventHandler]] = defaultdict(list)


class UnknownSaga(LookupError):
    pass


def register(definition: SagaDefinition, *, events: Mapping[str, EventHandler] | None = None) -> SagaDefinition:
    """Register a definition under its saga type, and what the events of `events` do to its sagas. Registering
    the same definition again is a no-op; another one under the same type is refused."""
    existing = _definitions.get(definition.saga_type)
    if existing is not None and existing != definition:
        raise ValueError(f"A saga of type {definition.saga_type!r} is registered already.")
    _definitions[definition.saga_type] = definition
    for event_type, handler in (events or {}).items():
        if handler not in _handlers[event_type]:
            _handlers[event_type].append(handler)
        registry.subscribe(event_type, HANDLE_EVENTS_TASK)
    return definition


def unregister(saga_type: str) -> None:
    _definitions.pop(saga_type, None)


def definition(saga_type: str) -> SagaDefinition:
    try:
        return _definitions[saga_type]
    except KeyError:
        raise UnknownSaga(f"No saga of type {saga_type!r} is registered in this process.") from None


def registered() -> list[SagaDefinition]:
    return list(_definitions.values())


def on_events(envelopes: list[dict[str, Any]]) -> list[UUID]:
    """What the envelopes do to the registered sagas: the sagas to advance."""
    to_advance = []
    for envelope in envelopes:
        for handler in _handlers.get(envelope["event_type"], ()):
            saga_id = handler(envelope)
            if saga_id is not None:
                to_advance.append(saga_id)
    return to_advance
