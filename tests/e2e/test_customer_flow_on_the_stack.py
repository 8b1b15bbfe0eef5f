"""End to end on the real stack: POST a command, a real worker relays and projects it, GET reads it."""

import pytest
from django.core.management import call_command

from outbox_app.models import OutboxEvent
from outbox_app.sealing import ERASED
from queries_app.models import InboxEntry
from tests.conftest import command, eventually

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


def test_a_registered_customer_travels_from_the_post_to_the_get(celery_stack, writer):
    # when
    response = command(
        writer, "register-customer", {"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.mil"}
    )
    assert response.status_code == 201
    customer_id = response.json()["customer_id"]

    # then: the worker (not this process) relays and projects it
    found = eventually(lambda: (r := writer.get(f"/api/customers/{customer_id}")).status_code == 200 and r)
    assert found.json() == {
        "id": customer_id,
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@navy.mil",
        "orders_count": 0,
        "lifetime_value": "0.00",
        "last_order_at": None,
        "version": 1,
    }
    by_email = writer.get("/api/customers", {"email": "Grace@Navy.mil"}).json()
    assert [c["id"] for c in by_email["results"]] == [customer_id]
    assert OutboxEvent.objects.get().published_at is not None
    assert InboxEntry.objects.filter(projection="customers").count() == 1


def test_queries_need_the_read_scope_and_unknown_customers_are_404(celery_stack, make_api_client):
    writer_only = make_api_client("write")
    reader = make_api_client("read")

    assert writer_only.get("/api/customers/01a21810-0000-7000-8000-000000000000").status_code == 403
    missing = reader.get("/api/customers/01a21810-0000-7000-8000-000000000000")
    assert (missing.status_code, missing.json()["code"]) == (404, "CUSTOMER_NOT_FOUND")
    assert reader.get("/api/customers").status_code == 400


def test_an_erased_customer_reads_erased_once_the_workers_apply_the_erasure(celery_stack, writer):
    # given: a customer the workers have projected
    response = command(writer, "register-customer", {"first_name": "Ada", "last_name": "Lovelace", "email": "a@l.org"})
    customer_id = response.json()["customer_id"]
    eventually(lambda: writer.get(f"/api/customers/{customer_id}").status_code == 200)

    # when
    call_command("erase_customer", customer_id)

    # then: the workers relay and project CustomerErased; the feed shows nothing of hers
    erased = eventually(lambda: (r := writer.get(f"/api/customers/{customer_id}").json())["email"] == ERASED and r)
    assert (erased["first_name"], erased["last_name"], erased["version"]) == (ERASED, ERASED, 2)
    feed = writer.get("/api/events?limit=100").content.decode()
    assert "Lovelace" not in feed and "a@l.org" not in feed and "CustomerErased" in feed
