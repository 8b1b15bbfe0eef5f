"""The read side's copy of the event catalog, received as data: every event type of each aggregate type.

The write side declares its events (commands_app/events.py) and publishes the catalog as JSON; `make
event-catalog` writes it to queries_app/event_catalog.json, and tests/unit/test_event_catalog.py fails while this
copy is stale. The read side imports nothing from the write side: a separate service would receive the same file.
A projection follows aggregate types and is subscribed to every event type listed here for them, so its version
guard never waits on an event it would not be sent; it decides about each one (handles it, or ignores it).
"""

import json
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("event_catalog.json")

EVENT_TYPES: dict[str, tuple[str, ...]] = {
    aggregate_type: tuple(event["event_type"] for event in events)
    for aggregate_type, events in json.loads(CATALOG_FILE.read_text()).items()
}


def event_types_of(aggregate_types: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(event_type for aggregate_type in aggregate_types for event_type in EVENT_TYPES[aggregate_type])
