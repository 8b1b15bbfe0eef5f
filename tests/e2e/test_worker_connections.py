"""A worker keeps its PostgreSQL connections between tasks (config/celery.py), as a web process does between requests.

Celery's Django fixup would otherwise close them before and after every task: a new connection per task,
about half the cost of a small relay run or projection batch.
"""

import pytest
from django.db import connection

from outbox_app.models import OutboxEvent
from queries_app.models import CustomerReadModel
from tests.conftest import eventually
from tests.stack import Stack, wait_until_idle
from tests.streams import CustomerStream, write_to_log

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


@pytest.fixture
def stack(stack_env, tmp_path):
    stack = Stack(env=stack_env, logs=tmp_path)
    yield stack
    stack.stop_all()
    wait_until_idle()


def worker_backends() -> set[int]:
    """The other sessions on the test database: the worker's processes (no web server or beat uses it here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def relay_and_project_one_customer() -> None:
    from outbox_app.tasks import relay_outbox

    ada = CustomerStream()
    (registered,) = write_to_log([ada.registered()])
    relay_outbox.delay()
    eventually(lambda: CustomerReadModel.objects.filter(customer_id=ada.customer_id).first(), timeout=20)
    assert OutboxEvent.objects.get(event_id=registered["event_id"]).published_at is not None


def test_a_worker_reuses_its_database_connections_from_task_to_task(stack):
    # given: a worker (two processes) that has run tasks in both of them
    stack.start_worker(concurrency=2)
    for _ in range(4):
        relay_and_project_one_customer()
    before = worker_backends()

    # when: twenty more relay runs and projection batches
    for _ in range(10):
        relay_and_project_one_customer()

    # then: the same sessions served them all
    assert before and worker_backends() == before
