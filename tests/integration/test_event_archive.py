"""The archive: published events leave the hot outbox and stay in the event log (feed, replay, verify, tokens)."""

from datetime import timedelta
from uuid import UUID

import pytest
from django.core.management import call_command
from django.db import transaction

from outbox_app import log
from outbox_app.log import mark_published_in_log_order, read_log
from outbox_app.models import ArchivedEvent, OutboxEvent
from outbox_app.operations import archive_published, latest_versions
from outbox_app.outbox import NewEvent, append
from queries_app.models import AggregatePosition
from queries_app.projection_engine.apply import project
from tests.integration.test_replay_projections import a_day_of_business, snapshot
from tests.streams import CustomerStream, write_to_log

pytestmark = pytest.mark.django_db


def published(envelopes: list) -> list:
    logged = write_to_log(envelopes)
    mark_published_in_log_order([UUID(e["event_id"]) for e in logged])
    return logged


def archive_everything() -> int:
    return archive_published(older_than=timedelta(0))


def test_prune_everything_then_replay_and_verify_rebuild_identical_read_models():
    # given: a day of business projected, then every published event archived
    logged = published(a_day_of_business())
    project(logged)
    expected = snapshot()

    # when
    call_command("prune_outbox", "--older-than", "0")

    # then: the hot outbox holds no published event; the archive holds them all, positions kept
    assert not OutboxEvent.objects.published().exists()
    assert ArchivedEvent.objects.count() == len(logged)
    assert sorted(ArchivedEvent.objects.values_list("log_position", flat=True)) == list(range(1, len(logged) + 1))

    # when: the read models are rebuilt from the archive
    call_command("replay_projections")

    # then: identical, and verify agrees
    assert snapshot() == expected
    call_command("verify_projections")


def test_replay_reads_an_aggregate_split_between_the_archive_and_the_outbox():
    # given: old events archived, later ones of the same aggregates still in the outbox (one pending)
    events = a_day_of_business()
    old, recent = events[:9], events[9:]
    project(published(old))
    archive_everything()
    later = published(recent[:-1])
    pending = write_to_log(recent[-1:])
    project([*later, *pending])
    expected = snapshot()

    # when
    call_command("replay_projections")

    # then
    assert snapshot() == expected
    call_command("verify_projections")


def test_after_everything_is_archived_the_relay_goes_on_after_the_archived_head():
    # given
    published(a_day_of_business())
    head = log.head_position()
    archive_everything()
    assert log.head_position() == head

    # when: a new event is published
    ada = CustomerStream()
    [new] = published([ada.registered("Ada", "Lovelace", "ada@example.org")])

    # then: its position follows the archived ones
    assert OutboxEvent.objects.get(event_id=new["event_id"]).log_position == head + 1
    assert log.head_position() == head + 1


def test_read_log_pages_through_the_archive_and_the_outbox_in_log_order():
    # given: the first events archived, the rest in the outbox
    logged = published(a_day_of_business())
    archive_everything()
    more = published([CustomerStream().registered("Grace", "Hopper", "grace@example.org")])
    everything = [e["event_id"] for e in [*logged, *more]]

    # when: paged three at a time
    seen, after = [], None
    while True:
        page = read_log(after=after, limit=3)
        seen += [entry.event_id for entry in page.entries]
        after = page.next_after
        if not page.has_more:
            break

    # then: every event once, in log order, across both tables
    assert seen == everything
    positions = [entry.position for entry in read_log(limit=100).entries]
    assert positions == sorted(positions) and len(positions) == len(everything)
    # a cursor that is an archived event is found; a type filter reads both tables
    assert read_log(after=logged[2]["event_id"], limit=1).entries[0].event_id == logged[3]["event_id"]
    registered = read_log(event_types=["CustomerRegistered"], limit=100).entries
    assert [e.event_id for e in registered] == [
        e["event_id"] for e in [*logged, *more] if e["event_type"] == "CustomerRegistered"
    ]


def test_the_event_feed_pages_through_archived_events(make_api_client):
    # given
    reader = make_api_client("read")
    logged = published(a_day_of_business())
    archive_everything()

    # when
    first = reader.get("/api/events?limit=5").json()
    rest = reader.get(f"/api/events?limit=100&after={first['next_after']}").json()

    # then
    assert [e["event_id"] for e in first["events"] + rest["events"]] == [e["event_id"] for e in logged]
    assert first["events"][0] == logged[0]


def test_consistency_tokens_and_latest_versions_see_archived_events():
    # given
    logged = published(a_day_of_business())
    archive_everything()
    first = logged[0]
    aggregate = (first["aggregate_type"], first["aggregate_id"])

    # then
    assert log.in_log([(first["aggregate_type"], first["aggregate_id"], first["aggregate_version"])])
    assert latest_versions([aggregate]) == {aggregate: 2}  # Ada registered, then changed her email


def test_pending_and_dead_events_are_never_archived():
    # given
    with transaction.atomic():
        [pending_id] = append(
            [NewEvent(event_type="X", aggregate_type="Order", aggregate_id="o1", aggregate_version=1, payload={})]
        )

    # when
    archive_everything()

    # then
    assert list(OutboxEvent.objects.values_list("event_id", flat=True)) == [pending_id]
    assert not ArchivedEvent.objects.exists()
    assert not AggregatePosition.objects.exists()
