"""The event catalog is declared once, by the write side, and agrees with docs/events.md and the read side's copy;
the AsyncAPI document is generated from it and checked in as docs/asyncapi.yaml."""

from pathlib import Path

import yaml

from commands_app.events import EVENTS_BY_AGGREGATE
from outbox_app import catalog, registry
from queries_app.catalog import EVENT_TYPES
from tests.unit.test_read_catalog import documented_catalog
from webhooks_app.apps import FAN_OUT_TASK
from webhooks_app.asyncapi import document, render

ASYNCAPI = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_the_write_sides_catalog_is_the_one_in_docs_events_md_and_the_read_sides():
    declared = {aggregate: tuple(e.__name__ for e in events) for aggregate, events in EVENTS_BY_AGGREGATE.items()}
    assert declared == documented_catalog() == EVENT_TYPES


def test_every_event_type_is_declared_in_the_logs_catalog_with_its_aggregate():
    assert [(e.aggregate_type, e.name) for e in catalog.event_types()] == [
        (aggregate, event.__name__) for aggregate, events in EVENTS_BY_AGGREGATE.items() for event in events
    ]


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
