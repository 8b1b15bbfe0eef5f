"""What a projection is: the aggregate types it follows, its read tables, and a handler per event type it uses.

A projection follows whole aggregate types: it is subscribed to every event type of them (queries_app.catalog),
and an event it has no handler for still advances its position, so its version guard never waits on an
event it would not be sent. It decides about each of those event types: a handler, or a place in `ignores`
(tests/unit/test_event_catalog.py fails for an event type it has not decided about).

Handlers only touch rows through `ApplyContext.rows`, which is the live tables inside the apply transaction, a
shadow table during a replay's catch-up, or memory during a replay or a verification: the same code computes
the live model, its rebuild and its check.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast

from django.db import models

from outbox_app.upcasting import upcast
from queries_app.catalog import EVENT_TYPES, event_types_of
from queries_app.envelopes import Envelope
from queries_app.projection_engine.rows import Need, Rows

Handler = Callable[[Any, "ApplyContext", Envelope], None]


def applied_channel(projection: str) -> str:
    """The notification channel on which each commit of the projection's live applies wakes the reads waiting for
    it to catch up (queries_app.consistency)."""
    return f"projection_applied_{projection}"


H = TypeVar("H", bound=Handler)


@dataclass
class ApplyContext:
    rows: Rows
    # "" for the live read model, "_shadow" for the one a replay builds beside it
    suffix: str = ""
    # Runs after the apply commits (cache invalidation); a no-op outside the live read model
    on_commit: Callable[[Callable[[], None]], None] = lambda callback: None
    # State a projection keeps outside `rows` for this context's length (a batch's apply, or a fold in memory): what
    # a batch invalidates once it commits
    scratch: dict[str, Any] = field(default_factory=dict)


def handles(*event_types: str) -> Callable[[H], H]:
    """Mark a projection method as the handler of these event types."""

    def mark(handler: H) -> H:
        handler._handles = event_types  # type: ignore[attr-defined]
        return handler

    return mark


class Projection:
    name: ClassVar[str]
    # The aggregate types followed, in replay order: a type whose rows other handlers look up comes first.
    follows: ClassVar[tuple[str, ...]]
    # The read tables it owns; a replay rebuilds and swaps exactly these. A batch locks their rows in this order.
    models: ClassVar[tuple[type[models.Model], ...]]
    # Event types of the followed aggregates that change nothing here (they still advance the positions).
    ignores: ClassVar[frozenset[str]] = frozenset()
    # The aggregate types whose own read model this is (an order's row, a customer's): a message's events of those
    # types are applied here before the projections that only copy or count them (apply.py, `project`).
    owns: ClassVar[tuple[str, ...]] = ()
    _handlers: ClassVar[dict[str, Handler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = [t for t in cls.follows if t not in EVENT_TYPES]
        if unknown:
            raise TypeError(f"{cls.__name__} follows unknown aggregate types {unknown}")
        cls._handlers = {}
        for attribute in vars(cls).values():
            for event_type in getattr(attribute, "_handles", ()):
                cls._handlers[event_type] = attribute
        foreign = (set(cls._handlers) | cls.ignores) - set(event_types_of(cls.follows))
        if foreign:
            raise TypeError(f"{cls.__name__} handles {sorted(foreign)} of aggregate types it does not follow")
        both = set(cls._handlers) & cls.ignores
        if both:
            raise TypeError(f"{cls.__name__} both handles and ignores {sorted(both)}")

    @classmethod
    def undecided(cls) -> list[str]:
        """Event types of the followed aggregates it neither handles nor ignores."""
        return [t for t in event_types_of(cls.follows) if t not in cls._handlers and t not in cls.ignores]

    @property
    def subscribes_to(self) -> tuple[str, ...]:
        return event_types_of(self.follows)

    def apply(self, ctx: ApplyContext, envelope: Envelope) -> None:
        # Upcast here too: an envelope sent before a deploy, or parked, may be at an older schema.
        envelope = cast(Envelope, upcast(cast(dict[str, Any], envelope)))
        handler = self._handlers.get(envelope["event_type"])
        if handler is not None:
            handler(self, ctx, envelope)

    def needs(self, envelope: Envelope) -> Iterable[Need]:
        """The rows this event's handler will ask for, so that a batch loads and locks them in bulk first.

        Only an optimisation: a row not named here is read and locked when the handler asks for it.
        """
        return ()

    def invalidate_caches(self) -> None:
        """Forget every cached answer built from this read model (after a replay)."""
