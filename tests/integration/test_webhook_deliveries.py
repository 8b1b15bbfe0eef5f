"""Webhook deliveries against a real HTTP(S) receiver on 127.0.0.1, attempted in this process (the Celery tasks
are thin wrappers of these functions; tests/e2e/test_webhooks_on_the_stack.py runs them on real workers)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from api_common.models import ApiClient
from outbox_app.log import mark_published_in_log_order
from outbox_app.models import OutboxEvent
from outbox_app.outbox import NewEvent, append
from tests.receiver import Receiver, always, running_receiver, self_signed_certificate
from webhooks_app import deliveries
from webhooks_app.models import FanOutPosition, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks_app.reconcile import fan_out_missed_events
from webhooks_app.signing import new_secret

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_networks(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOKS_TIMEOUT_SECONDS = 2.0
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 5.0


@pytest.fixture
def client_record():
    record = ApiClient(name="receiver-owner", scopes=["webhooks"])
    record.issue_token()
    record.save()
    return record


def endpoint_for(client, url: str, event_types=("OrderConfirmed",)) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(client=client, url=url, event_types=list(event_types), secret=new_secret())


def published_envelope(event_type: str = "OrderConfirmed", aggregate_id: str = "o-1", version: int = 1) -> dict:
    event = NewEvent(
        event_type=event_type,
        aggregate_type="Order",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        payload={"order_id": aggregate_id, "total": "9.90"},
        metadata={"correlation_id": "corr", "causation_id": "cause"},
    )
    append([event])
    mark_published_in_log_order([event.event_id])
    return OutboxEvent.objects.get(event_id=event.event_id).to_envelope()


def the_delivery(**filters) -> WebhookDelivery:
    return WebhookDelivery.objects.get(**filters)


def test_a_delivery_is_a_signed_standard_webhook_that_the_package_verifies(client_record):
    with running_receiver(Receiver(answer=always(204))) as receiver:
        # given
        endpoint = endpoint_for(client_record, receiver.url())
        envelope = published_envelope()
        [handout] = deliveries.fan_out([envelope])

        # when
        outcome = deliveries.deliver(handout.delivery_id, handout.lease_token)

    # then: one POST, verified by standardwebhooks with the endpoint's secret, carrying the event as the feed has it
    assert outcome == "delivered"
    [request] = receiver.deliveries()
    body = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert body == {"type": "OrderConfirmed", "timestamp": envelope["occurred_at"], "data": envelope}
    assert request.headers["webhook-id"] == envelope["event_id"]
    assert request.headers["content-type"] == "application/json"
    assert request.host == f"127.0.0.1:{receiver.port}"
    delivery = the_delivery(pk=handout.delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 204)
    endpoint.refresh_from_db()
    assert endpoint.last_delivered_at is not None


def test_a_failed_attempt_is_retried_later_with_the_same_id_and_body(client_record, settings):
    with running_receiver() as receiver:  # fails the first delivery of each webhook-id
        # given
        endpoint_for(client_record, receiver.url())
        [handout] = deliveries.fan_out([published_envelope()])

        # when: the first attempt fails
        assert deliveries.deliver(handout.delivery_id, handout.lease_token) == "http_error"

        # then: the next one is scheduled after the backoff, the answer kept as a short excerpt only
        delivery = the_delivery(pk=handout.delivery_id)
        assert (delivery.status, delivery.attempts, delivery.lease_token) == ("pending", 1, None)
        wait = delivery.next_attempt_at - delivery.last_attempt_at
        assert timedelta(seconds=4.4) <= wait <= timedelta(seconds=5.6)
        attempt = WebhookAttempt.objects.get(delivery=delivery)
        assert (attempt.outcome, attempt.status_code) == ("http_error", 500)
        assert len(attempt.response_excerpt) == settings.WEBHOOKS_RESPONSE_EXCERPT_BYTES
        assert deliveries.dispatch_due() == []  # not due yet

        # when: it is due, beat hands it out again
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        [again] = deliveries.dispatch_due()
        assert deliveries.deliver(again.delivery_id, again.lease_token) == "delivered"
        # the old lease is gone: its task, were it to run, would do nothing
        assert deliveries.deliver(handout.delivery_id, handout.lease_token) is None

    first, second = receiver.deliveries()
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert the_delivery(pk=handout.delivery_id).attempts == 2


def test_a_redirect_is_not_followed(client_record):
    with running_receiver(Receiver(answer=always(302))) as receiver:
        endpoint_for(client_record, receiver.url())
        [handout] = deliveries.fan_out([published_envelope()])
        assert deliveries.deliver(handout.delivery_id, handout.lease_token) == "http_error"
    assert [r.path for r in receiver.deliveries()] == ["/hooks"]
    assert the_delivery(pk=handout.delivery_id).last_status_code == 302


def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(client_record, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.3
    with running_receiver(Receiver(answer=always(200), delay_seconds=1.0)) as receiver:
        endpoint_for(client_record, receiver.url())
        [handout] = deliveries.fan_out([published_envelope()])
        assert deliveries.deliver(handout.delivery_id, handout.lease_token) == "timeout"
    assert the_delivery(pk=handout.delivery_id).status == "pending"


def test_a_closed_port_is_a_connection_error(client_record):
    with running_receiver() as receiver:
        url = receiver.url()
    endpoint_for(client_record, url)
    [handout] = deliveries.fan_out([published_envelope()])
    assert deliveries.deliver(handout.delivery_id, handout.lease_token) == "connection_error"


def test_without_the_setting_a_delivery_to_a_private_address_is_refused_before_connecting(client_record, settings):
    with running_receiver(Receiver(answer=always(200))) as receiver:
        # given: an endpoint registered while private networks were allowed, on a name resolving to loopback
        endpoint_for(client_record, receiver.url(host="localhost"))
        [handout] = deliveries.fan_out([published_envelope()])
        settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False

        # when
        outcome = deliveries.deliver(handout.delivery_id, handout.lease_token)

    # then
    assert outcome == "address_refused"
    assert receiver.deliveries() == []
    assert "127.0.0.1" in WebhookAttempt.objects.get().error


def test_the_request_goes_to_the_address_that_was_checked_and_names_the_host(client_record):
    # given: a name that DNS does not know, which the (injected) resolver answers with the receiver's address
    with running_receiver(Receiver(answer=always(200))) as receiver:
        endpoint_for(client_record, f"http://hooks.test:{receiver.port}/in")
        [handout] = deliveries.fan_out([published_envelope()])
        asked = []

        def resolver(host, port):
            asked.append((host, port))
            return ["127.0.0.1"]

        # when
        assert deliveries.deliver(handout.delivery_id, handout.lease_token, resolve=resolver) == "delivered"

    # then: resolved once, connected to that address, with the name in the Host header
    assert asked == [("hooks.test", receiver.port)]
    [request] = receiver.deliveries()
    assert (request.host, request.path) == (f"hooks.test:{receiver.port}", "/in")
    assert WebhookAttempt.objects.get().address == "127.0.0.1"


def test_https_verifies_the_certificate_for_the_host_name_while_connecting_to_the_checked_address(
    client_record, settings, tmp_path
):
    # given: a receiver whose certificate is for "localhost", trusted through WEBHOOKS_CA_BUNDLE
    certificate = self_signed_certificate(tmp_path, "localhost")
    settings.WEBHOOKS_CA_BUNDLE = str(certificate[0])
    with running_receiver(Receiver(answer=always(200)), certificate=certificate) as receiver:
        endpoint_for(client_record, receiver.url(host="localhost"))
        first, second = deliveries.fan_out([published_envelope(), published_envelope(aggregate_id="o-2")])

        # when / then: delivered over TLS
        assert deliveries.deliver(first.delivery_id, first.lease_token) == "delivered"

        # when / then: a certificate for another name is refused
        other = self_signed_certificate(tmp_path, "other.test")
        settings.WEBHOOKS_CA_BUNDLE = str(other[0])
        assert deliveries.deliver(second.delivery_id, second.lease_token) == "tls_error"
    assert len(receiver.deliveries()) == 1


def test_a_delivery_whose_retry_window_has_closed_fails(client_record):
    with running_receiver(Receiver(answer=always(503))) as receiver:
        endpoint_for(client_record, receiver.url())
        [handout] = deliveries.fan_out([published_envelope()])
        WebhookDelivery.objects.filter(pk=handout.delivery_id).update(retry_until=timezone.now())
        assert deliveries.deliver(handout.delivery_id, handout.lease_token) == "http_error"
    delivery = the_delivery(pk=handout.delivery_id)
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)
    assert delivery.failed_at is not None


def test_an_endpoint_failing_for_too_long_is_disabled_and_its_waiting_deliveries_end(
    client_record, settings, owner_http
):
    # given: an endpoint that has failed since long ago, with a second delivery waiting
    settings.WEBHOOKS_DISABLE_AFTER_SECONDS = 3600
    with running_receiver(Receiver(answer=always(500))) as receiver:
        endpoint = endpoint_for(owner_http.api_client, receiver.url())
        first, second = deliveries.fan_out([published_envelope(), published_envelope(aggregate_id="o-2")])
        WebhookDelivery.objects.filter(pk=second.delivery_id).update(leased_until=None)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(hours=2))

        # when
        deliveries.deliver(first.delivery_id, first.lease_token)

    # then: disabled, with the reason, shown by the API; nothing is delivered to it any more
    shown = owner_http.get(f"/api/webhook-endpoints/{endpoint.pk}").json()
    assert shown["status"] == "disabled"
    assert "HTTP 500" in shown["disabled_reason"]
    assert the_delivery(pk=first.delivery_id).status == "failed"
    assert the_delivery(pk=second.delivery_id).status == "failed"
    assert deliveries.fan_out([published_envelope(aggregate_id="o-3")]) == []


@pytest.fixture
def owner_http(make_api_client):
    return make_api_client("webhooks")


def test_a_success_ends_the_failure_streak(client_record):
    with running_receiver(Receiver(answer=always(200))) as receiver:
        endpoint = endpoint_for(client_record, receiver.url())
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now())
        [handout] = deliveries.fan_out([published_envelope()])
        deliveries.deliver(handout.delivery_id, handout.lease_token)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_the_fan_out_creates_one_delivery_per_subscribed_endpoint_once(client_record, make_api_client):
    # given: endpoints subscribed or not, disabled, of a revoked client, and one created after the event
    url = "http://127.0.0.1:9/hooks"
    subscribed = endpoint_for(client_record, url, event_types=["OrderConfirmed", "OrderCancelled"])
    endpoint_for(client_record, url + "/other-types", event_types=["OrderPlaced"])
    disabled = endpoint_for(client_record, url + "/disabled")
    WebhookEndpoint.objects.filter(pk=disabled.pk).update(disabled_at=timezone.now())
    revoked_client = make_api_client("webhooks").api_client
    endpoint_for(revoked_client, url)
    ApiClient.objects.filter(pk=revoked_client.pk).update(revoked_at=timezone.now())
    envelope = published_envelope()
    endpoint_for(client_record, url + "/later")

    # when: the same event reaches the fan-out twice
    first = deliveries.fan_out([envelope])
    second = deliveries.fan_out([envelope])

    # then
    assert len(first) == 1
    assert second == []
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [subscribed.pk]


def test_during_a_rotation_each_delivery_verifies_with_either_secret(client_record, owner_http):
    with running_receiver(Receiver(answer=always(200))) as receiver:
        endpoint = endpoint_for(owner_http.api_client, receiver.url())
        old_secret = endpoint.secret
        new_secret_shown = owner_http.post(
            f"/api/webhook-endpoints/{endpoint.pk}/rotate-secret", {}, format="json"
        ).json()["secret"]
        [handout] = deliveries.fan_out([published_envelope()])
        deliveries.deliver(handout.delivery_id, handout.lease_token)
    [request] = receiver.deliveries()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old_secret, new_secret_shown):
        Webhook(secret).verify(request.body, request.headers)


def test_the_safety_net_creates_the_deliveries_whose_fan_out_was_lost_and_only_once(client_record, settings):
    # given: the safety net started before the events; two events published, whose fan-out never came
    settings.WEBHOOKS_RECONCILE_AFTER_SECONDS = 0
    endpoint_for(client_record, "http://127.0.0.1:9/hooks", event_types=["OrderConfirmed", "OrderPlaced"])
    assert fan_out_missed_events() == 0  # the first run starts at the head of the log
    envelopes = [published_envelope(), published_envelope("OrderPlaced", aggregate_id="o-2")]

    # when
    created = fan_out_missed_events()

    # then
    assert created == 2
    assert {str(e) for e in WebhookDelivery.objects.values_list("event_id", flat=True)} == {
        e["event_id"] for e in envelopes
    }
    assert (
        FanOutPosition.objects.get().log_position
        == OutboxEvent.objects.get(event_id=envelopes[1]["event_id"]).log_position
    )
    assert fan_out_missed_events() == 0


def test_the_safety_net_leaves_events_published_too_recently_to_the_bus(client_record, settings):
    settings.WEBHOOKS_RECONCILE_AFTER_SECONDS = 60
    endpoint_for(client_record, "http://127.0.0.1:9/hooks")
    fan_out_missed_events()
    published_envelope()
    assert fan_out_missed_events() == 0
    assert FanOutPosition.objects.get().log_position == 0
