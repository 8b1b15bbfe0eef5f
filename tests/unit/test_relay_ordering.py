"""The relay's decisions without a database: which claimed events go out, in what order, and what a failure does."""

from datetime import UTC, datetime, timedelta

import pytest
from kombu.exceptions import OperationalError
from uuid_utils.compat import uuid7

from outbox_app.models import envelope
from outbox_app.relay import ClaimedEvent, Predecessor, RelayReport, backoff, publish_in_order, release_in_order

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(aggregate_id: str, version: int, event_type: str = "Happened", *, attempts: int = 0) -> ClaimedEvent:
    event_id = uuid7()
    return ClaimedEvent(
        event_id=event_id,
        event_type=event_type,
        aggregate_type="Thing",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        attempts=attempts,
        envelope=envelope(
            event_id,
            event_type,
            1,
            "Thing",
            aggregate_id,
            version,
            T0 + timedelta(milliseconds=version),
            None,
            None,
            {"n": version},
        ),
    )


def names(events: list[ClaimedEvent]) -> list[str]:
    return [f"{e.aggregate_id}{e.aggregate_version}" for e in events]


class Bus:
    """Records what was sent; rejects the messages carrying the given events, or fails like a broker outage."""

    def __init__(self, *, rejects: tuple[ClaimedEvent, ...] = (), outage_on_call: int | None = None) -> None:
        self.rejected_ids = {str(e.event_id) for e in rejects}
        self.outage_on_call = outage_on_call
        self.calls = 0
        self.sent: list[tuple[str, list[str]]] = []

    def __call__(self, task_name: str, envelopes: list[dict]) -> None:
        self.calls += 1
        if self.calls == self.outage_on_call:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        if any(e["event_id"] in self.rejected_ids for e in envelopes):
            raise ValueError("the bus refuses this message")
        self.sent.append((task_name, [f"{e['aggregate_id']}{e['aggregate_version']}" for e in envelopes]))


def one_subscriber(event_type: str) -> list[str]:
    return ["tasks.a"]


def two_subscribers(event_type: str) -> list[str]:
    return ["tasks.a", "tasks.b"]


def test_a_batch_holding_every_unpublished_version_is_released_in_version_order():
    # given: claimed in an order that is not the version order of aggregate a
    a1, a2, b3 = event("a", 1), event("a", 2), event("b", 3)

    # when: b2 is published (nothing waits on it)
    ready, held = release_in_order([a2, b3, a1], waiting_on={})

    # then
    assert (names(ready), held) == (["a1", "b3", "a2"], [])


@pytest.mark.parametrize(
    "predecessor",
    [
        Predecessor(dead=False, next_attempt_at=None),
        Predecessor(dead=False, next_attempt_at=T0 + timedelta(minutes=5)),
        Predecessor(dead=True, next_attempt_at=None),
    ],
    ids=["claimed-by-another-relay", "backing-off", "dead"],
)
def test_an_aggregate_waiting_on_an_unpublished_version_outside_the_batch_is_held_entirely(predecessor):
    # given: a1 is unpublished and not in this batch
    a2, a3, b1 = event("a", 2), event("a", 3), event("b", 1)

    # when
    ready, held = release_in_order([a2, a3, b1], waiting_on={("Thing", "a"): predecessor})

    # then
    assert (names(ready), names(held)) == (["b1"], ["a2", "a3"])


def test_a_gap_inside_the_batch_holds_the_versions_after_it():
    # given: a2 is claimed by another relay
    a1, a3, a4 = event("a", 1), event("a", 3), event("a", 4)

    ready, held = release_in_order([a1, a3, a4], waiting_on={})

    assert (names(ready), names(held)) == (["a1"], ["a3", "a4"])


def test_only_a_backing_off_or_dead_predecessor_counts_as_failed():
    assert Predecessor(dead=True, next_attempt_at=None).failed(T0)
    assert Predecessor(dead=False, next_attempt_at=T0 + timedelta(seconds=1)).failed(T0)
    assert not Predecessor(dead=False, next_attempt_at=T0).failed(T0)
    assert not Predecessor(dead=False, next_attempt_at=None).failed(T0)


def test_events_are_batched_into_one_message_per_subscriber_task():
    # given
    events = [event("a", 1), event("b", 1), event("a", 2)]
    bus = Bus()

    # when
    outcome = publish_in_order(events, bus, two_subscribers)

    # then
    assert bus.sent == [("tasks.a", ["a1", "b1", "a2"]), ("tasks.b", ["a1", "b1", "a2"])]
    assert (names(outcome.published), outcome.failures, outcome.held) == (["a1", "b1", "a2"], [], [])


def test_an_event_without_subscribers_is_published_without_a_message():
    bus = Bus()

    outcome = publish_in_order([event("a", 1)], bus, lambda event_type: [])

    assert (bus.sent, names(outcome.published)) == ([], ["a1"])


def test_a_rejected_event_is_isolated_and_holds_only_the_later_versions_of_its_aggregate():
    # given
    a1, a2, b1, c1 = event("a", 1), event("a", 2), event("b", 1), event("c", 1)
    bus = Bus(rejects=(a1,))

    # when
    outcome = publish_in_order([a1, b1, a2, c1], bus, one_subscriber)

    # then: the batch is retried event by event; a2 is not sent after its predecessor was refused
    assert bus.sent == [("tasks.a", ["b1"]), ("tasks.a", ["c1"])]
    assert names(outcome.published) == ["b1", "c1"]
    assert [(names([f.event]), f.outage) for f in outcome.failures] == [(["a1"], False)]
    assert names(outcome.held) == ["a2"]


def test_a_rejection_by_a_later_subscriber_keeps_the_aggregate_unpublished_from_that_version_on():
    # given: tasks.a takes the whole batch; tasks.b refuses a2
    a1, a2, a3 = event("a", 1), event("a", 2), event("a", 3)

    def refuses_a2_on_b(task_name: str, envelopes: list[dict]) -> None:
        if task_name == "tasks.b" and str(a2.event_id) in {e["event_id"] for e in envelopes}:
            raise ValueError("refused")

    # when
    outcome = publish_in_order([a1, a2, a3], refuses_a2_on_b, two_subscribers)

    # then: a1 reached both subscribers; a3 reached only tasks.a, so it is held and sent again later
    assert names(outcome.published) == ["a1"]
    assert names([f.event for f in outcome.failures]) == ["a2"]
    assert names(outcome.held) == ["a3"]


def test_a_broker_outage_fails_the_whole_batch_as_an_outage_and_stops_sending():
    # given: the first subscriber's message goes out, then the broker goes away
    events = [event("a", 1), event("b", 1)]
    bus = Bus(outage_on_call=2)

    # when
    outcome = publish_in_order(events, bus, two_subscribers)

    # then
    assert bus.calls == 2
    assert outcome.published == []
    assert [(names([f.event]), f.outage) for f in outcome.failures] == [(["a1"], True), (["b1"], True)]


def test_an_outage_while_isolating_a_poison_event_keeps_the_rejection():
    # given: the batch is refused because of a1; the retry of a1 alone is refused; then the broker fails
    a1, b1 = event("a", 1), event("b", 1)
    bus = Bus(rejects=(a1,), outage_on_call=3)

    # when
    outcome = publish_in_order([a1, b1], bus, one_subscriber)

    # then
    assert [(names([f.event]), f.outage) for f in outcome.failures] == [(["a1"], False), (["b1"], True)]
    assert outcome.published == []


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 1), (2, 2), (3, 4), (6, 32), (12, 300), (40, 300)])
def test_the_backoff_doubles_after_each_failure_up_to_the_cap(settings, attempts, seconds):
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 1.0
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 300.0

    assert backoff(attempts) == timedelta(seconds=seconds)


def test_a_batch_only_held_for_other_relays_has_not_moved_on_so_the_drain_stops():
    assert not RelayReport(claimed=5, held=5).moved_on
    assert RelayReport(claimed=5, held=5, deferred=5).moved_on
    assert RelayReport(claimed=5, published=1, held=4).moved_on
    assert (RelayReport(failed=2, broker_down=True) + RelayReport(published=3)) == RelayReport(
        published=3, failed=2, broker_down=True
    )
