"""Webhooks on the real stack: orders settle through the saga on a worker, a worker of the `webhooks` queue delivers
their events to a real HTTP receiver on 127.0.0.1, beat retries; the feed lists the same events.

The receiver is this process's (tests/receiver.py). WEBHOOKS_ALLOW_PRIVATE_NETWORKS lets it be on loopback; the
retry backoff's base and the lease are shortened through the environment, as an operator would.
"""

import contextlib
import json
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from celery import current_app
from standardwebhooks import Webhook

from outbox_app.models import OutboxEvent
from tests.e2e.test_fulfilment_saga import FAST, finished_saga, place_order
from tests.receiver import Receiver, always, running_receiver
from tests.stack import Stack, wait_until_idle
from webhooks_app.models import WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]

OUTCOMES = ["OrderPlaced", "OrderConfirmed", "OrderCancelled"]
WEBHOOKS_ENV = {
    "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
    "WEBHOOKS_RETRY_BASE_SECONDS": "0.5",
    "WEBHOOKS_DISPATCH_INTERVAL": "0.5",
    "WEBHOOKS_TIMEOUT_SECONDS": "3",
    "WEBHOOKS_LEASE_SECONDS": "13.5",
    "WEBHOOKS_RECONCILE_INTERVAL": "1",
    "WEBHOOKS_RECONCILE_AFTER_SECONDS": "3",
}


def purge_the_webhooks_queue() -> None:
    """Other modules' workers consume no `webhooks` queue: drop what their relays left there for nobody."""
    # A queue never declared has nothing to purge.
    with current_app.connection_for_write() as connection, contextlib.suppress(Exception):
        channel: Any = connection.default_channel
        channel.queue_purge("webhooks")


@pytest.fixture(scope="class")
def stack(stack_env, tmp_path_factory):
    purge_the_webhooks_queue()
    stack = Stack(env={**stack_env, **FAST, **WEBHOOKS_ENV}, logs=tmp_path_factory.mktemp("webhooks-stack"))
    stack.start_worker()
    stack.start_worker("webhooks", queues="webhooks")
    stack.start_beat()
    yield stack
    stack.stop_all()


@pytest.fixture(autouse=True)
def quiet_before_the_flush(transactional_db, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    yield
    wait_until_idle()
    every_delivery_ends()


def every_delivery_ends(timeout: float = 45.0) -> None:
    """Wait until no delivery is pending; fail naming those that still are."""
    deadline = time.monotonic() + timeout
    while True:
        pending = WebhookDelivery.objects.filter(status="pending")
        left = list(pending.values_list("event_type", "attempts", "last_error", "next_attempt_at", "leased_until"))
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries still pending after {timeout}s: {left}")
        time.sleep(0.1)


@pytest.fixture
def shop(make_api_client):
    return make_api_client("read", "write", "catalog")


@pytest.fixture
def owner(make_api_client):
    return make_api_client("webhooks", "read")


def register(http, url: str, event_types: list[str]) -> dict:
    response = http.post("/api/webhook-endpoints", {"url": url, "event_types": event_types}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def logged_events(order_ids: list[str], event_types: list[str]) -> list[OutboxEvent]:
    rows = OutboxEvent.objects.filter(event_type__in=event_types, payload__order_id__in=order_ids)
    return list(rows.order_by("log_position"))


def the_feed(http, event_types: list[str]) -> list[dict]:
    events, after = [], None
    while True:
        query = "&".join(f"type={t}" for t in event_types) + "&limit=4" + (f"&after={after}" if after else "")
        page = http.get(f"/api/events?{query}").json()
        events += page["events"]
        after = page["next_after"]
        if not page["has_more"]:
            return events


@pytest.mark.usefixtures("stack")
class TestWebhooksOnTheStack:
    def test_every_subscribed_outcome_arrives_signed_after_a_failed_first_delivery_and_the_feed_agrees(
        self, shop, owner, make_api_client, settings
    ):
        with running_receiver() as receiver:  # answers 500 to the first delivery of each webhook-id
            # given: an endpoint for the orders' outcomes, and three orders: paid, declined, out of stock
            endpoint = register(owner, receiver.url(), OUTCOMES)
            orders = [
                place_order(shop, token="tok_ok")[0],
                place_order(shop, token="tok_declined")[0],
                place_order(shop, token="tok_ok", quantity=3, stock=2)[0],
            ]
            for order_id in orders:
                finished_saga(order_id)
            expected = logged_events(orders, OUTCOMES)
            assert Counter(e.event_type for e in expected) == Counter(OrderPlaced=3, OrderConfirmed=1, OrderCancelled=2)

            # when: every one of them has been accepted
            got = receiver.wait_for(lambda got: len({r.headers["webhook-id"] for r in got if r.status == 200}) == 6)

        # then: each was refused once, then delivered with the same id and body, signed as Standard Webhooks says
        by_id = defaultdict(list)
        for request in got:
            by_id[request.headers["webhook-id"]].append(request)
        assert set(by_id) == {str(e.event_id) for e in expected}
        for webhook_id, requests in by_id.items():
            assert [r.status for r in requests] == [500, 200], webhook_id
            assert requests[0].body == requests[1].body
            for request in requests:
                message = Webhook(endpoint["secret"]).verify(request.body, request.headers)
                assert message["data"]["event_id"] == webhook_id
        assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 2)}

        # and the feed lists the same events, in log order, each as it was delivered
        feed = the_feed(owner, OUTCOMES)
        assert [e["event_id"] for e in feed] == [str(e.event_id) for e in expected]
        delivered = {webhook_id: json.loads(requests[-1].body)["data"] for webhook_id, requests in by_id.items()}
        assert all(delivered[e["event_id"]] == e for e in feed)
        for order_id in orders:
            types = [e["event_type"] for e in feed if e["payload"]["order_id"] == order_id]
            assert types[0] == "OrderPlaced" and len(types) == 2

        # and another client's endpoint is invisible to it; a private URL is refused without the setting
        stranger = make_api_client("webhooks")
        assert stranger.get("/api/webhook-endpoints").json()["results"] == []
        assert stranger.get(f"/api/webhook-endpoints/{endpoint['id']}").status_code == 404
        settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
        refused = stranger.post(
            "/api/webhook-endpoints",
            {"url": f"https://127.0.0.1:{receiver.port}/hooks", "event_types": OUTCOMES},
            format="json",
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "WEBHOOK_URL_NOT_PUBLIC")
        assert WebhookEndpoint.objects.count() == 1

    def test_the_webhooks_worker_killed_during_deliveries_loses_no_event_and_repeats_only_the_same_id(
        self, stack, shop, owner
    ):
        # given: a slow receiver, and an endpoint for every event of the orders' aggregates
        subscribed = ["OrderPlaced", "InventoryReserved", "PaymentAuthorized", "OrderConfirmed"]
        with running_receiver(Receiver(answer=always(200), delay_seconds=0.2)) as receiver:
            endpoint = register(owner, receiver.url(), subscribed)
            orders = [place_order(shop, token="tok_ok", quantity=quantity)[0] for quantity in (1, 2, 3, 4)]

            # when: the webhooks worker is killed while deliveries are under way, then started again
            receiver.wait_for(lambda got: len(got) >= 2)
            stack.stop("webhooks", sig=9)
            killed_at = len(receiver.deliveries())
            stack.start_worker("webhooks", queues="webhooks")
            for order_id in orders:
                finished_saga(order_id)
            expected = {str(e.event_id) for e in logged_events(orders, subscribed)}
            receiver.wait_for(lambda got: {r.headers["webhook-id"] for r in got} >= expected, timeout=60)
            # an attempt the kill cut short is made again once its lease expires: wait for every delivery to end
            every_delivery_ends()
            got = receiver.deliveries()

        # then: every event arrived; any event that came twice came with the same id, body and valid signature
        assert len(expected) == 16
        assert killed_at < 16
        by_id = defaultdict(list)
        for request in got:
            by_id[request.headers["webhook-id"]].append(request)
        assert set(by_id) == expected
        for requests in by_id.values():
            assert len({r.body for r in requests}) == 1
            for request in requests:
                Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
