"""GET /api/events: the published events in log order, with a cursor, a type filter and a consistency level."""

import pytest
from django.db import transaction

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from outbox_app.log import mark_published_in_log_order
from outbox_app.models import OutboxEvent
from outbox_app.outbox import NewEvent, append
from tests.conftest import command

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(make_api_client):
    return make_api_client("read")


def published(*events: NewEvent) -> list[NewEvent]:
    append(list(events))
    mark_published_in_log_order([e.event_id for e in events])
    return list(events)


def event(aggregate_id: str, version: int, event_type: str = "CustomerRegistered") -> NewEvent:
    return NewEvent(
        event_type=event_type,
        aggregate_type="Customer",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        payload={"customer_id": aggregate_id, "version": version},
        metadata={"correlation_id": "corr-1", "causation_id": "cmd-1", "client_id": "secret-client-id"},
    )


def test_the_feed_lists_published_events_as_published_in_log_order_page_by_page(reader):
    # given
    events = published(*(event("c1", v) for v in range(1, 6)))

    # when
    first = reader.get("/api/events?limit=2")
    rest = reader.get(f"/api/events?limit=10&after={first.json()['next_after']}")

    # then
    assert first.status_code == 200
    assert first["X-Consistency-Level"] == "EVENTUAL"
    body = first.json()
    assert body["has_more"] is True
    assert [e["event_id"] for e in body["events"] + rest.json()["events"]] == [str(e.event_id) for e in events]
    assert rest.json()["has_more"] is False
    item = body["events"][0]
    row = OutboxEvent.objects.get(event_id=events[0].event_id)
    assert item == row.to_envelope()
    assert "client_id" not in str(item)


def test_the_type_filter_takes_several_types(reader):
    registered, changed, other = published(
        event("c1", 1), event("c1", 2, "CustomerEmailChanged"), event("c2", 1, "ProductAdded")
    )
    response = reader.get("/api/events?type=CustomerRegistered&type=CustomerEmailChanged")
    assert [e["event_id"] for e in response.json()["events"]] == [str(registered.event_id), str(changed.event_id)]
    assert response.json()["next_after"] == str(other.event_id)


def test_the_feed_starts_empty_with_no_cursor(reader):
    assert reader.get("/api/events").json() == {"events": [], "next_after": None, "has_more": False}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("type=NoSuchEvent", "type[0]"),
        ("after=not-a-uuid", "after"),
        ("after=", "after"),
        ("limit=", "limit"),
    ],
)
def test_invalid_parameters_are_problems_naming_the_field(reader, query, field):
    response = reader.get(f"/api/events?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_a_cursor_that_names_no_published_event_is_refused(reader):
    pending = event("c1", 1)
    append([pending])
    response = reader.get(f"/api/events?after={pending.event_id}")
    assert response.status_code == 422
    assert response.json()["code"] == "EVENT_CURSOR_UNKNOWN"


def test_the_feed_needs_the_read_scope(make_api_client):
    assert make_api_client("webhooks").get("/api/events").json()["code"] == "FORBIDDEN"
    assert make_api_client("webhooks").get("/api/events").status_code == 403


def test_with_a_consistency_token_the_feed_waits_until_the_commands_events_are_published(make_api_client, settings):
    # given: a command whose events are not published yet (no relay runs in this test)
    settings.CONSISTENCY_WAIT_SECONDS = 0.2
    http = make_api_client("read", "write")
    registered = command(http, "register-customer", {"first_name": "Ada", "last_name": "L", "email": "ada@x.org"})
    token = registered[CONSISTENCY_HEADER]

    # when / then: 503 until they are
    waiting = http.get("/api/events", HTTP_X_CONSISTENCY_TOKEN=token)
    assert waiting.status_code == 503
    assert (waiting.json()["code"], waiting["Retry-After"]) == ("CONSISTENCY_TIMEOUT", "1")
    with transaction.atomic():
        mark_published_in_log_order(list(OutboxEvent.objects.values_list("event_id", flat=True)))
    answered = http.get("/api/events", HTTP_X_CONSISTENCY_TOKEN=token)
    assert answered.status_code == 200
    assert answered["X-Consistency-Level"] == "READ_YOUR_WRITES"
    assert [e["event_type"] for e in answered.json()["events"]] == ["CustomerRegistered"]
    assert http.get("/api/events", HTTP_X_CONSISTENCY_TOKEN="forged").json()["code"] == "CONSISTENCY_TOKEN_INVALID"
