"""The event log in order (outbox_app/log.py) on PostgreSQL: positions follow the order relay transactions commit,
so a reader that passes its cursor back never skips an event, however writers and relays interleave."""

import random
import threading
import time
import uuid
from collections import defaultdict

import pytest
from django.db import connection, connections, transaction
from uuid_utils.compat import uuid7

from outbox_app.log import LOG_LOCK, UnknownCursor, mark_published_in_log_order, read_log
from outbox_app.models import OutboxEvent
from outbox_app.outbox import NewEvent, append
from outbox_app.relay import relay_once
from tests.conftest import eventually

pytestmark = pytest.mark.django_db(transaction=True)


def new_event(aggregate_id: str, version: int, event_type: str = "CustomerRegistered", **fields) -> NewEvent:
    return NewEvent(
        event_type=event_type,
        aggregate_type="Customer",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        payload={"n": version},
        **fields,
    )


def appended(*events: NewEvent) -> list[uuid.UUID]:
    with transaction.atomic():
        return append(list(events))


def read_everything(after=None, limit=3, **filters) -> list[str]:
    seen = []
    while True:
        page = read_log(after=after, limit=limit, **filters)
        seen += [entry.event_id for entry in page.entries]
        after = page.next_after
        if not page.has_more:
            return seen


def test_an_event_written_first_but_published_last_is_read_after_the_ones_published_before_it():
    # given: two events; the one with the lower (earlier) id is published after the other
    earlier, later = new_event("a", 1, event_id=uuid7()), new_event("b", 1, event_id=uuid7())
    assert earlier.event_id < later.event_id
    appended(earlier, later)
    with transaction.atomic():
        mark_published_in_log_order([later.event_id])
    first = read_log(limit=10)
    assert [e.event_id for e in first.entries] == [str(later.event_id)]

    # when: the earlier event is published
    with transaction.atomic():
        mark_published_in_log_order([earlier.event_id])

    # then: the reader, from its cursor, gets it: a cursor by event id would have passed over it for good
    second = read_log(after=first.next_after, limit=10)
    assert [e.event_id for e in second.entries] == [str(earlier.event_id)]
    assert second.entries[0].position > first.entries[0].position


def test_a_relay_transaction_gives_positions_only_after_the_one_before_it_commits():
    # given: relay A has marked its event and holds the log's lock, uncommitted
    event_a, event_b = new_event("a", 1), new_event("b", 1)
    appended(event_a, event_b)
    relay_a = connections.create_connection("default")
    relay_a.connect()
    relay_a.set_autocommit(False)
    with relay_a.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOG_LOCK])
        cursor.execute(
            "UPDATE outbox_app_outboxevent SET published_at = now(), log_position ="
            " (SELECT coalesce(max(log_position), 0) + 1 FROM outbox_app_outboxevent) WHERE event_id = %s",
            [event_a.event_id],
        )

    # when: relay B marks its event meanwhile
    def relay_b():
        with transaction.atomic():
            mark_published_in_log_order([event_b.event_id])
        connection.close()

    thread = threading.Thread(target=relay_b)
    thread.start()
    try:
        # then: B waits for A's lock, and a reader sees neither of them
        eventually(lambda: waiting_on_the_log_lock() == 1, timeout=5)
        assert read_log(limit=10).entries == []
        relay_a.commit()
    finally:
        relay_a.close()
        thread.join(timeout=10)
    entries = read_log(limit=10).entries
    assert [e.event_id for e in entries] == [str(event_a.event_id), str(event_b.event_id)]
    assert entries[0].position < entries[1].position


def waiting_on_the_log_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND ((classid::bigint << 32) | objid::bigint) = %s",
            [LOG_LOCK],
        )
        return cursor.fetchone()[0]


def test_with_writers_and_relays_racing_a_reader_following_its_cursor_sees_every_event_once_in_order():
    # given: writers committing events of their own aggregates, three relays publishing in small batches with a
    # publish that takes a random while (so their commits interleave), and a reader following its cursor
    writers, per_writer, stop = 4, 40, threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[int, str, str, int]] = []

    def guarded(work):
        def run():
            try:
                work()
            except BaseException as error:  # reported by the test, not lost in a thread
                errors.append(error)
            finally:
                connection.close()

        return run

    def write(writer: int):
        for version in range(1, per_writer + 1):
            event = new_event(f"w{writer}", version, event_id=uuid7())
            time.sleep(random.uniform(0, 0.003))  # the id is taken before the commit, as in a command
            appended(event)

    def slow_publish(task_name, envelopes):
        time.sleep(random.uniform(0, 0.004))

    def relay():
        while not stop.is_set():
            if not relay_once(batch_size=5, publish=slow_publish).claimed:
                time.sleep(0.002)

    def read():
        after = None
        while True:
            done = stop.is_set()
            page = read_log(after=after, limit=7)
            seen.extend(
                (e.position, e.event_id, e.envelope["aggregate_id"], e.envelope["aggregate_version"])
                for e in page.entries
            )
            after = page.next_after
            if done and not page.has_more:
                return
            if not page.has_more:
                time.sleep(0.001)

    threads = [threading.Thread(target=guarded(lambda w=w: write(w))) for w in range(writers)]
    relays = [threading.Thread(target=guarded(relay)) for _ in range(3)]
    reader = threading.Thread(target=guarded(read))

    # when
    for thread in [*threads, *relays, reader]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    eventually(lambda: not OutboxEvent.objects.pending().exists(), timeout=30)
    stop.set()
    for thread in [*relays, reader]:
        thread.join(timeout=30)

    # then: every event exactly once, in position order, each aggregate's versions in order
    assert errors == []
    published = set(map(str, OutboxEvent.objects.values_list("event_id", flat=True)))
    assert len(published) == writers * per_writer
    assert [event_id for _, event_id, _, _ in seen] == list(dict.fromkeys(e for _, e, _, _ in seen))
    assert {event_id for _, event_id, _, _ in seen} == published
    positions = [position for position, *_ in seen]
    assert positions == sorted(positions)
    versions = defaultdict(list)
    for _, _, aggregate_id, version in seen:
        versions[aggregate_id].append(version)
    assert all(v == list(range(1, per_writer + 1)) for v in versions.values())
    # and the race did happen: some event was read after one with a later id, which an id cursor would skip
    ids = [uuid.UUID(event_id) for _, event_id, _, _ in seen]
    assert any(ids[i] > ids[i + 1] for i in range(len(ids) - 1))


def test_pending_and_dead_events_are_not_in_the_log_until_published():
    pending, dead, published = new_event("p", 1), new_event("d", 1), new_event("x", 1)
    appended(pending, dead, published)
    OutboxEvent.objects.filter(event_id=dead.event_id).update(dead_at="2026-01-01T00:00:00Z")
    with transaction.atomic():
        mark_published_in_log_order([published.event_id])

    assert read_everything() == [str(published.event_id)]
    with pytest.raises(UnknownCursor):
        read_log(after=pending.event_id, limit=1)


def test_a_reader_of_some_types_reads_on_from_the_head_of_the_log_not_from_its_last_match():
    # given
    wanted, other = new_event("a", 1, "CustomerRegistered"), new_event("a", 2, "CustomerEmailChanged")
    appended(wanted, other)
    with transaction.atomic():
        mark_published_in_log_order([wanted.event_id, other.event_id])

    # when
    page = read_log(event_types=["CustomerRegistered"], limit=10)

    # then: the match, and a cursor past the other event
    assert [e.event_id for e in page.entries] == [str(wanted.event_id)]
    assert (page.has_more, page.next_after) == (False, str(other.event_id))
    assert read_log(after=page.next_after, event_types=["CustomerRegistered"], limit=10).entries == []


def test_pages_continue_where_the_last_one_ended():
    events = [new_event("a", version) for version in range(1, 8)]
    appended(*events)
    with transaction.atomic():
        mark_published_in_log_order([e.event_id for e in events])

    assert read_everything(limit=3) == [str(e.event_id) for e in events]
    assert [e.event_id for e in read_log(after_position=5, limit=10).entries] == [str(e.event_id) for e in events[5:]]
    empty = read_log(after=events[-1].event_id, limit=10)
    assert (empty.entries, empty.has_more, empty.next_after) == ([], False, str(events[-1].event_id))


def test_the_relay_publishes_in_log_order():
    # given: two aggregates' events, published by the relay itself
    events = [new_event("a", 1), new_event("b", 1), new_event("a", 2)]
    appended(*events)

    # when
    relay_once(publish=lambda task, envelopes: None)

    # then
    entries = read_log(limit=10).entries
    assert sorted(e.event_id for e in entries) == sorted(str(e.event_id) for e in events)
    assert [e.position for e in entries] == [1, 2, 3]
    versions_of_a = [e.envelope["aggregate_version"] for e in entries if e.envelope["aggregate_id"] == "a"]
    assert versions_of_a == [1, 2]
