"""What a projection is: a name, the event types it handles, and an idempotent apply per event."""

from typing import ClassVar

from queries_app.envelopes import Envelope


class Projection:
    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]

    def apply(self, envelope: Envelope) -> None:
        raise NotImplementedError
