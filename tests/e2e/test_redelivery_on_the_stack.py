"""On the real worker and beat: published events whose deliveries were lost reach the read model anyway.

The loss is staged the way a killed worker leaves it: the outbox rows say published, and no message for them
is on the broker or in any worker. Nothing but beat's redelivery can apply them.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from outbox_app.models import OutboxEvent
from queries_app import metrics
from queries_app.models import CustomerReadModel, ParkedEvent
from tests.conftest import eventually
from tests.stack import Stack
from tests.streams import CustomerStream, write_to_log

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


@pytest.fixture
def redelivering_stack(stack_env, tmp_path):
    stack = Stack(
        env={**stack_env, "PROJECTION_REDELIVER_AFTER_SECONDS": "2", "PROJECTION_REDELIVER_INTERVAL": "1"},
        logs=tmp_path,
    )
    yield stack
    stack.stop_all()


def test_beat_feeds_the_projections_the_published_events_they_never_received(redelivering_stack):
    # given: a customer's two events, published five seconds ago, delivered to nobody
    ada = CustomerStream()
    logged = write_to_log([ada.registered(email="ada@example.org"), ada.email_changed("countess@example.org")])
    then = timezone.now() - timedelta(seconds=5)
    OutboxEvent.objects.filter(event_id__in=[e["event_id"] for e in logged]).update(created_at=then, published_at=then)
    cache.delete(metrics.CACHE_KEY)

    # when
    redelivering_stack.start_worker()
    redelivering_stack.start_beat()

    # then
    view = eventually(
        lambda: CustomerReadModel.objects.filter(customer_id=ada.customer_id, email="countess@example.org").first(),
        timeout=60,
    )
    assert view.version == 2
    assert not ParkedEvent.objects.exists()
    redelivering_stack.wait_for_log("worker", "projection.redelivered")
