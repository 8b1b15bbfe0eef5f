"""The event catalog, from both sides: declared once with the events, received by the read side as data.

The write side: queries_app/event_catalog.json is what commands_app/events.py declares (else `make
event-catalog`), docs/events.md documents exactly those events, and each aggregate records only its own. The
read side: each projection is subscribed to every event type of the aggregates it follows, and has decided
about each one (a handler, or `ignores`). So an event added on the write side fails a test until every
consumer has decided about it, instead of reaching none of them and stalling their projections on the gap.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

from commands_app.aggregates import AGGREGATES
from commands_app.events import CATALOG, event_catalog
from outbox_app import catalog, registry
from queries_app.apps import PROJECT_EVENTS_TASK
from queries_app.catalog import CATALOG_FILE, EVENT_TYPES
from queries_app.projection_engine.projection import ApplyContext, Projection, handles
from queries_app.projections import PROJECTIONS
from webhooks_app.apps import FAN_OUT_TASK
from webhooks_app.asyncapi import document, render

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
ASYNCAPI = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


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


def declared() -> dict[str, tuple[str, ...]]:
    return {aggregate: tuple(event.__name__ for event in events) for aggregate, events in CATALOG.items()}


# --- the write side ------------------------------------------------------------------------------------------


def test_the_read_sides_copy_is_the_catalog_the_write_side_declares():
    assert json.loads(CATALOG_FILE.read_text()) == event_catalog(), "stale: run `make event-catalog`"


def test_docs_events_md_documents_every_declared_event():
    assert documented_catalog() == declared()


def test_every_registered_aggregate_has_its_events_in_the_catalog():
    assert {registration.aggregate.aggregate_type for registration in AGGREGATES} == set(CATALOG)


def test_every_event_type_is_declared_in_the_logs_catalog_with_its_aggregate():
    assert [(e.aggregate_type, e.name) for e in catalog.event_types()] == [
        (aggregate, event.__name__) for aggregate, events in CATALOG.items() for event in events
    ]


# --- the webhooks, which read the log's catalog ----------------------------------------------------------------


def test_the_webhooks_fan_out_is_subscribed_to_every_event_type():
    for name in catalog.names():
        assert FAN_OUT_TASK in registry.subscribers_for(name)


def test_the_checked_in_asyncapi_document_is_the_generated_one():
    assert ASYNCAPI.read_text() == render(), "run: python manage.py asyncapi > docs/asyncapi.yaml"


def test_the_asyncapi_document_has_a_message_and_schemas_for_every_event_type():
    doc = yaml.safe_load(ASYNCAPI.read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert doc == document()
    assert list(doc["components"]["messages"]) == catalog.names()
    for name in catalog.names():
        assert doc["components"]["schemas"][f"{name}Payload"]["required"]
        assert doc["components"]["schemas"][f"{name}Event"]["properties"]["event_type"] == {"const": name}


# --- the read side -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("projection", PROJECTIONS, ids=lambda p: p.name)
def test_each_projection_has_decided_about_every_event_of_the_aggregates_it_follows(projection):
    assert projection.undecided() == [], f"{projection.name}: handle these events or add them to `ignores`"


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


def test_an_event_new_to_a_followed_aggregate_leaves_a_projection_undecided():
    class Partial(Projection):
        name = "partial"
        follows = ("Customer",)
        models = ()

        @handles("CustomerRegistered")
        def registered(self, ctx: ApplyContext, envelope: dict) -> None:
            pass

    assert Partial.undecided() == ["CustomerEmailChanged", "CustomerErased"]
