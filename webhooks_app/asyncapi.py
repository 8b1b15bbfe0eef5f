"""The AsyncAPI 3.0 document of the published events, generated from the log's catalog (outbox_app.catalog).

Each event type is a message of the webhook channel: the Standard Webhooks body {type, timestamp, data}, where
`data` is the event as the feed lists it, with the payload schema its producer declared. docs/asyncapi.yaml is
this document checked in; tests/unit/test_asyncapi.py keeps the two equal (`manage.py asyncapi` rewrites it).
"""

from typing import Any

import yaml
from django.conf import settings

from outbox_app import catalog

HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["webhook-id", "webhook-timestamp", "webhook-signature"],
    "properties": {
        "webhook-id": {
            "type": "string",
            "format": "uuid",
            "description": "The event id: the same on every attempt and in the feed. Dedupe on it.",
        },
        "webhook-timestamp": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "When this attempt was signed, in seconds since the epoch. Refuse stale ones (5 minutes).",
        },
        "webhook-signature": {
            "type": "string",
            "description": "`v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` with the "
            "endpoint's secret; during a secret rotation two of them, space-separated.",
        },
    },
}


def _envelope_schema(event_type: catalog.EventType) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{event_type.name}, as the event feed (GET /api/events) lists it.",
        "required": [
            "event_id",
            "event_type",
            "schema_version",
            "aggregate_type",
            "aggregate_id",
            "aggregate_version",
            "occurred_at",
            "correlation_id",
            "causation_id",
            "payload",
        ],
        "additionalProperties": False,
        "properties": {
            "event_id": {"type": "string", "format": "uuid", "description": "UUIDv7; the webhook-id."},
            "event_type": {"const": event_type.name},
            "schema_version": {"const": event_type.schema_version},
            "aggregate_type": {"const": event_type.aggregate_type},
            "aggregate_id": {"type": "string"},
            "aggregate_version": {"type": "integer", "minimum": 1, "description": "The version after this event."},
            "occurred_at": {"type": "string", "format": "date-time"},
            "correlation_id": {"type": ["string", "null"]},
            "causation_id": {"type": ["string", "null"]},
            "payload": {"$ref": f"#/components/schemas/{event_type.name}Payload"},
        },
    }


def _message(event_type: catalog.EventType) -> dict[str, Any]:
    return {
        "name": event_type.name,
        "title": event_type.name,
        "summary": event_type.description,
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/WebhookHeaders"},
        "payload": {
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": event_type.name},
                "timestamp": {"type": "string", "format": "date-time", "description": "When the event occurred."},
                "data": {"$ref": f"#/components/schemas/{event_type.name}Event"},
            },
        },
    }


def document() -> dict[str, Any]:
    event_types = catalog.event_types()
    messages = {e.name: _message(e) for e in event_types}
    schemas: dict[str, Any] = {"WebhookHeaders": HEADERS_SCHEMA}
    for event_type in event_types:
        schemas[f"{event_type.name}Event"] = _envelope_schema(event_type)
        schemas[f"{event_type.name}Payload"] = event_type.payload_schema
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"{settings.SPECTACULAR_SETTINGS['TITLE']}: published events",
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "description": (
                "The events the service publishes, as webhooks deliver them (Standard Webhooks: a signed POST to "
                "each endpoint subscribed to the type, retried with backoff for at least a day) and as the event "
                "feed lists them (GET /api/events, in log order). How to subscribe, verify and dedupe: "
                "docs/webhooks.md. Payload fields: docs/events.md."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "webhookEndpoint": {
                "address": None,
                "title": "A webhook endpoint",
                "description": "The URL a client registered with POST /api/webhook-endpoints, for the event types "
                "it chose.",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": {
            "deliverEvent": {
                "action": "send",
                "channel": {"$ref": "#/channels/webhookEndpoint"},
                "title": "Deliver an event",
                "summary": "POST one event to each endpoint subscribed to its type; any 2xx answer delivers it.",
                "bindings": {"http": {"method": "POST", "bindingVersion": "0.3.0"}},
                "messages": [{"$ref": f"#/channels/webhookEndpoint/messages/{name}"} for name in messages],
            }
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=120)
