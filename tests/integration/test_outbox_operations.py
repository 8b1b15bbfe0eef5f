"""What operators use: the outbox admin, the outbox_status, prune_outbox and relay_outbox commands, the metrics."""

import html
import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY, generate_latest

from outbox_app import registry
from outbox_app.log import mark_published_in_log_order
from outbox_app.models import ArchivedEvent, OutboxEvent
from outbox_app.outbox import NewEvent, append
from outbox_app.relay import relay_once

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/outbox_app/outboxevent/"
REFUSED = "OutboxProbeRefused"


def write(
    *,
    event_type: str = "OrderPlaced",
    aggregate_type: str = "Order",
    aggregate_id: str | None = None,
    version: int = 1,
    payload: dict[str, Any] | None = None,
    correlation_id: str = "corr-default",
) -> OutboxEvent:
    with transaction.atomic():
        [event_id] = append(
            [
                NewEvent(
                    event_type=event_type,
                    aggregate_type=aggregate_type,
                    aggregate_id=aggregate_id or str(uuid.uuid4()),
                    aggregate_version=version,
                    payload=payload if payload is not None else {"total": "10.00"},
                    metadata={"correlation_id": correlation_id, "causation_id": None, "client_id": "c-1"},
                )
            ]
        )
    return OutboxEvent.objects.get(pk=event_id)


def mark_published(event: OutboxEvent, *, ago: timedelta = timedelta(0)) -> None:
    mark_published_in_log_order([event.pk])
    OutboxEvent.objects.filter(pk=event.pk).update(published_at=timezone.now() - ago)


def park(event: OutboxEvent) -> None:
    OutboxEvent.objects.filter(pk=event.pk).update(
        dead_at=timezone.now(), attempts=10, last_error="ValueError: the bus refuses this payload"
    )


def listed(response: Any) -> set[uuid.UUID]:
    assert response.status_code == 200, response
    return {event.event_id for event in response.context["cl"].result_list}


@pytest.fixture
def three_states() -> dict[str, OutboxEvent]:
    """A pending event (written two minutes ago), a published one and a dead one."""
    pending = write(event_type="OrderPlaced", aggregate_type="Order")
    OutboxEvent.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    published = write(event_type="CustomerRegistered", aggregate_type="Customer", correlation_id="corr-42")
    mark_published(published)
    dead = write(event_type="OrderPaid", aggregate_type="Order")
    park(dead)
    return {"pending": pending, "published": published, "dead": dead}


@pytest.fixture
def refused_subscriber() -> Iterator[None]:
    registry.subscribe(REFUSED, "tests.outbox.refused")
    yield
    registry.unsubscribe(REFUSED, "tests.outbox.refused")


@pytest.fixture
def operator(client, django_user_model):
    """A staff user who may view outbox events and retry or requeue them (not a superuser)."""
    user = django_user_model.objects.create_user(username="operator", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_outboxevent", "retry_outboxevent"], content_type__app_label="outbox_app"
        )
    )
    client.force_login(user)
    return client


# --- admin -----------------------------------------------------------------------------------------


def test_the_list_shows_every_event_under_the_backlog_oldest_pending_age_and_dead_count(admin_client, three_states):
    # when
    response = admin_client.get(CHANGELIST)

    # then
    assert listed(response) == {event.event_id for event in three_states.values()}
    content = response.content.decode()
    assert re.search(r'id="outbox-backlog">1<', content)
    assert re.search(r'id="outbox-oldest-pending">1[23]\d\.\d s<', content)
    assert re.search(r'id="outbox-dead"><a href="\?status=dead">1</a>', content)


@pytest.mark.parametrize("status", ["pending", "published", "dead"])
def test_the_list_filters_by_status(admin_client, three_states, status):
    response = admin_client.get(CHANGELIST, {"status": status})

    assert listed(response) == {three_states[status].event_id}


def test_the_list_filters_by_event_type_and_aggregate_type(admin_client, three_states):
    by_event_type = admin_client.get(CHANGELIST, {"event_type": "OrderPaid"})
    by_aggregate_type = admin_client.get(CHANGELIST, {"aggregate_type": "Order"})

    assert listed(by_event_type) == {three_states["dead"].event_id}
    assert listed(by_aggregate_type) == {three_states["pending"].event_id, three_states["dead"].event_id}


def test_search_finds_events_by_aggregate_id_correlation_id_or_event_id(admin_client, three_states):
    # given: two versions of one aggregate
    order_id = str(uuid.uuid4())
    placed = write(aggregate_id=order_id, version=1)
    paid = write(aggregate_id=order_id, version=2, event_type="OrderPaid")

    # then
    assert listed(admin_client.get(CHANGELIST, {"q": order_id})) == {placed.event_id, paid.event_id}
    assert listed(admin_client.get(CHANGELIST, {"q": "corr-42"})) == {three_states["published"].event_id}
    assert listed(admin_client.get(CHANGELIST, {"q": str(paid.event_id)})) == {paid.event_id}
    assert listed(admin_client.get(CHANGELIST, {"q": "nothing-like-this"})) == set()


def test_the_detail_page_shows_the_payload_pretty_printed_and_read_only(admin_client):
    # given
    event = write(payload={"lines": [{"sku": "A-1", "quantity": 2}], "total": "10.00"})

    # when
    response = admin_client.get(f"{CHANGELIST}{event.pk}/change/")

    # then
    assert response.status_code == 200
    content = response.content.decode()
    pretty = json.dumps(event.payload, indent=2, sort_keys=True)
    assert f"<pre>{html.escape(pretty)}</pre>" in content
    assert 'name="_save"' not in content
    assert "corr-default" in content


def test_events_cannot_be_added_changed_or_deleted_even_by_a_superuser(admin_client, three_states):
    event = three_states["pending"]

    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}{event.pk}/change/", {"event_type": "Forged"}).status_code == 403
    assert admin_client.post(f"{CHANGELIST}{event.pk}/delete/").status_code == 403
    assert OutboxEvent.objects.get(pk=event.pk).event_type == "OrderPlaced"


def test_retry_now_makes_selected_pending_events_due_and_leaves_the_others(operator, three_states):
    # given: the pending event is backing off
    pending = three_states["pending"]
    OutboxEvent.objects.filter(pk=pending.pk).update(attempts=3, next_attempt_at=timezone.now() + timedelta(hours=1))

    # when: the whole list is selected
    response = operator.post(
        CHANGELIST,
        {"action": "retry_now", "_selected_action": [str(e.pk) for e in three_states.values()]},
        follow=True,
    )

    # then
    assert "1 pending event(s) will be retried" in response.content.decode()
    pending.refresh_from_db()
    assert (pending.next_attempt_at, pending.attempts) == (None, 3)
    assert OutboxEvent.objects.get(pk=three_states["dead"].pk).status == OutboxEvent.Status.DEAD


def test_retry_now_also_releases_the_later_versions_deferred_behind_the_event(operator):
    # given: version 1 backs off and the relay deferred version 2 behind it
    order_id = str(uuid.uuid4())
    first, second = write(aggregate_id=order_id, version=1), write(aggregate_id=order_id, version=2)
    later = timezone.now() + timedelta(hours=1)
    OutboxEvent.objects.filter(pk__in=[first.pk, second.pk]).update(next_attempt_at=later)

    # when
    operator.post(CHANGELIST, {"action": "retry_now", "_selected_action": [str(first.pk)]})

    # then
    assert list(OutboxEvent.objects.filter(pk__in=[first.pk, second.pk]).values_list("next_attempt_at", flat=True)) == [
        None,
        None,
    ]


def test_requeue_dead_gives_dead_events_fresh_attempts_and_keeps_their_last_error(operator, three_states):
    # when
    response = operator.post(
        CHANGELIST,
        {"action": "requeue_dead", "_selected_action": [str(e.pk) for e in three_states.values()]},
        follow=True,
    )

    # then
    assert "1 dead event(s) requeued" in response.content.decode()
    dead = OutboxEvent.objects.get(pk=three_states["dead"].pk)
    assert (dead.status, dead.attempts, dead.next_attempt_at) == (OutboxEvent.Status.PENDING, 0, None)
    assert dead.last_error == "ValueError: the bus refuses this payload"
    assert OutboxEvent.objects.get(pk=three_states["published"].pk).status == OutboxEvent.Status.PUBLISHED


def test_staff_who_may_only_view_get_the_list_without_the_actions(client, django_user_model, three_states):
    # given
    viewer = django_user_model.objects.create_user(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_outboxevent"))
    client.force_login(viewer)

    # when
    page = client.get(CHANGELIST)
    client.post(CHANGELIST, {"action": "requeue_dead", "_selected_action": [str(three_states["dead"].pk)]})

    # then
    assert page.status_code == 200
    assert "requeue_dead" not in page.content.decode()
    assert OutboxEvent.objects.get(pk=three_states["dead"].pk).status == OutboxEvent.Status.DEAD


def test_non_staff_users_and_staff_without_the_view_permission_are_refused(client, django_user_model, three_states):
    # given
    customer = django_user_model.objects.create_user(username="customer")
    staff = django_user_model.objects.create_user(username="staff", is_staff=True)

    # when
    anonymous = client.get(CHANGELIST)
    client.force_login(customer)
    not_staff = client.get(CHANGELIST)
    client.force_login(staff)
    no_permission = client.get(CHANGELIST)

    # then
    assert anonymous.status_code == not_staff.status_code == 302
    assert "/admin/login/" in not_staff["Location"]
    assert no_permission.status_code == 403


# --- management commands ---------------------------------------------------------------------------


def test_outbox_status_prints_backlog_oldest_pending_age_publish_rate_and_dead_count(three_states):
    # given: two more published in the last minute, one long ago
    for _ in range(2):
        mark_published(write())
    mark_published(write(), ago=timedelta(minutes=5))
    out = StringIO()

    # when
    call_command("outbox_status", stdout=out)

    # then
    lines = out.getvalue().splitlines()
    assert lines[0] == "backlog: 1 event(s)"
    assert re.fullmatch(r"oldest pending: 1[23]\d\.\ds", lines[1])
    assert lines[2] == "publish rate: 0.05 events/s (3 in the last 60s)"
    assert lines[3] == "dead: 1 event(s)"


def test_outbox_status_as_json_counts_the_events_waiting_behind_a_dead_one():
    # given: version 1 of an aggregate is dead, versions 2 and 3 wait behind it
    order_id = str(uuid.uuid4())
    first = write(aggregate_id=order_id, version=1)
    write(aggregate_id=order_id, version=2)
    write(aggregate_id=order_id, version=3)
    park(first)
    out = StringIO()

    # when
    call_command("outbox_status", "--json", stdout=out)

    # then
    status = json.loads(out.getvalue())
    assert status == {
        "backlog": 2,
        "oldest_pending_age_seconds": pytest.approx(status["oldest_pending_age_seconds"]),
        "publish_rate_per_second": 0.0,
        "published_last_minute": 0,
        "dead": 1,
        "blocked_behind_dead": 2,
    }
    assert 0 <= status["oldest_pending_age_seconds"] < 60


def test_outbox_status_on_an_empty_outbox():
    out = StringIO()

    call_command("outbox_status", "--json", stdout=out)

    assert json.loads(out.getvalue())["oldest_pending_age_seconds"] is None


def test_prune_outbox_archives_only_old_published_events_in_batches():
    # given: five old published events, and what must stay: recent published, pending and dead, all old
    old = [write() for _ in range(5)]
    for event in old:
        mark_published(event, ago=timedelta(days=10))
    recent = write()
    mark_published(recent, ago=timedelta(days=2))
    pending, dead = write(), write()
    park(dead)
    OutboxEvent.objects.filter(pk__in=[pending.pk, dead.pk]).update(created_at=timezone.now() - timedelta(days=30))

    # when: a dry run first
    dry_run = StringIO()
    call_command("prune_outbox", "--older-than", "7", "--dry-run", stdout=dry_run)

    # then
    assert dry_run.getvalue().strip() == "would archive 5 published event(s) older than 7 day(s)"
    assert OutboxEvent.objects.count() == 8

    # when: for real, two per batch
    out = StringIO()
    with CaptureQueriesContext(connection) as queries:
        call_command("prune_outbox", "--older-than", "7", "--batch-size", "2", stdout=out)

    # then
    assert out.getvalue().strip() == "archived 5 published event(s) older than 7 day(s)"
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk, dead.pk}
    assert set(ArchivedEvent.objects.values_list("pk", flat=True)) == {event.pk for event in old}
    # one statement per batch moves the rows (DELETE ... RETURNING into INSERT), the last finds none
    assert sum("WITH moved AS (DELETE" in q["sql"] for q in queries.captured_queries) == 4


def test_prune_outbox_refuses_a_negative_age():
    with pytest.raises(CommandError, match="zero or a positive"):
        call_command("prune_outbox", "--older-than", "-1")


def test_relay_outbox_once_publishes_the_backlog_and_reports_the_rate():
    # given: events no subscriber listens to (published without a message)
    for _ in range(3):
        write(event_type="NobodyListens")
    out = StringIO()

    # when
    call_command("relay_outbox", stdout=out)

    # then
    assert re.fullmatch(
        r"published 3 in \d+\.\d\ds \(\d+\.\d events/s\); failed 0, dead 0, held 0; backlog 0, ETA -",
        out.getvalue().strip(),
    )
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


# --- metrics ---------------------------------------------------------------------------------------


def test_the_gauges_read_the_outbox_at_scrape_time(three_states):
    assert REGISTRY.get_sample_value("outbox_backlog_events") == 1
    assert REGISTRY.get_sample_value("outbox_dead_events") == 1
    assert 119 <= REGISTRY.get_sample_value("outbox_oldest_pending_age_seconds") < 140
    exposition = generate_latest(REGISTRY).decode()
    assert "# TYPE outbox_backlog_events gauge" in exposition


def test_the_counters_count_what_the_relay_published_and_what_failed(refused_subscriber):
    # given: one event nobody listens to, two for a subscriber whose messages the bus refuses
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def counters() -> list[float]:
        return [
            sample("outbox_events_published_total"),
            sample("outbox_publish_failures_total", reason="rejected"),
            sample("outbox_publish_failures_total", reason="outage"),
        ]

    def refusing(task_name: str, envelopes: list[dict[str, Any]]) -> None:
        raise ValueError("the bus refuses this payload")

    write(event_type="NobodyListens")
    write(event_type=REFUSED, version=1)
    write(event_type=REFUSED, version=1)
    before = counters()

    # when
    relay_once(publish=refusing)

    # then
    assert [after - was for after, was in zip(counters(), before, strict=True)] == [1, 2, 0]
