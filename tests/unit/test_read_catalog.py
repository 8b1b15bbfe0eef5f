"""The read side's event catalog matches docs/events.md, and projections subscribe to whole aggregate types."""

import re
from pathlib import Path

import pytest

from outbox_app import registry
from queries_app.apps import PROJECT_EVENTS_TASK
from queries_app.catalog import EVENT_TYPES
from queries_app.projections import PROJECTIONS
from queries_app.projections.base import ApplyContext, Projection, handles

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def documented_catalog() -> dict[str, tuple[str, ...]]:
    catalog: dict[str, list[str]] = {}
    aggregate = None
    for row in EVENTS_DOC.read_text().splitlines():
        if heading := re.match(r"^## (\w+) \(aggregate_id", row):
            aggregate = heading.group(1)
            catalog[aggregate] = []
        elif aggregate and (event := re.match(r"^\| ([A-Z]\w+) \|", row)):
            catalog[aggregate].append(event.group(1))
    return {name: tuple(events) for name, events in catalog.items()}


def test_the_catalog_is_the_one_in_docs_events_md():
    assert documented_catalog() == EVENT_TYPES


@pytest.mark.parametrize("projection", PROJECTIONS, ids=lambda p: p.name)
def test_each_projection_is_subscribed_to_every_event_of_the_aggregates_it_follows(projection):
    for aggregate_type in projection.follows:
        for event_type in EVENT_TYPES[aggregate_type]:
            assert PROJECT_EVENTS_TASK in registry.subscribers_for(event_type)


def test_a_projection_cannot_handle_events_of_an_aggregate_type_it_does_not_follow():
    with pytest.raises(TypeError, match="does not follow"):

        class Confused(Projection):
            name = "confused"
            follows = ("Customer",)
            models = ()

            @handles("OrderPlaced")
            def placed(self, ctx: ApplyContext, envelope: dict) -> None:
                pass
