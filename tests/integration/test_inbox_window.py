"""The inbox keeps a window of entries; past it, the positions alone keep redeliveries harmless."""

from datetime import timedelta

import pytest
from django.utils import timezone

from queries_app.models import InboxEntry
from queries_app.projection_engine.apply import Outcome, apply_once, project
from queries_app.projection_engine.inbox import prune_inbox
from queries_app.projections import BY_NAME
from queries_app.tasks import prune_inbox as prune_inbox_task
from tests.integration.test_replay_projections import a_day_of_business, snapshot
from tests.streams import write_to_log

pytestmark = pytest.mark.django_db


def age_inbox(by: timedelta) -> None:
    InboxEntry.objects.update(processed_at=timezone.now() - by)


def test_entries_older_than_the_window_are_pruned_in_batches_the_recent_ones_kept():
    # given: a day of business applied two days ago, then a few events just now
    events = write_to_log(a_day_of_business())
    project(events[:10])
    age_inbox(timedelta(days=2))
    project(events[10:])
    recent = set(InboxEntry.objects.filter(processed_at__gt=timezone.now() - timedelta(hours=1)).values_list("pk"))
    old = InboxEntry.objects.count() - len(recent)
    assert old > 3 and recent

    # when
    pruned = prune_inbox(older_than=timedelta(days=1), batch_size=3)

    # then
    assert pruned == old
    assert set(InboxEntry.objects.values_list("pk")) == recent


def test_a_redelivered_old_event_changes_nothing_after_its_inbox_entry_is_pruned(settings):
    # given: everything applied long ago, and the inbox pruned to its window by the beat task
    events = write_to_log(a_day_of_business())
    project(events)
    expected = snapshot()
    age_inbox(timedelta(seconds=settings.PROJECTION_INBOX_WINDOW_SECONDS + 60))
    assert prune_inbox_task() > 0
    assert not InboxEntry.objects.exists()

    # when: every event is delivered again, as one batch and one by one
    again = project(events)
    one_by_one = [apply_once(BY_NAME["customers"], e)[0] for e in events if e["aggregate_type"] == "Customer"]

    # then: all duplicates; the read models, positions and best sellers are as they were
    assert (again.applied, again.pending) == (0, [])
    assert again.duplicates > 0
    assert set(one_by_one) == {Outcome.DUPLICATE}
    assert snapshot() == expected
    assert not InboxEntry.objects.exists()
