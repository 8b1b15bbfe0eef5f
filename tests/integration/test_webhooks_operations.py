"""What operators use for webhooks: the admin (deliveries, attempts, retry; endpoints without their secrets), the
webhooks_status command, the metrics; and the documents API consumers read (schema, AsyncAPI, docs link)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY, generate_latest

from api_common.models import ApiClient
from webhooks_app.asyncapi import document
from webhooks_app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks_app.signing import new_secret

pytestmark = pytest.mark.django_db

DELIVERIES = "/admin/webhooks_app/webhookdelivery/"
ENDPOINTS = "/admin/webhooks_app/webhookendpoint/"


@pytest.fixture
def endpoint():
    client = ApiClient(name="shop", scopes=["webhooks"])
    client.issue_token()
    client.save()
    return WebhookEndpoint.objects.create(
        client=client, url="https://93.184.215.14/hooks", event_types=["OrderConfirmed"], secret=new_secret()
    )


def delivery(endpoint, status: str, n: int) -> WebhookDelivery:
    now = timezone.now()
    row = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=f"0190a8c4-0000-7000-8000-00000000000{n}",
        event_type="OrderConfirmed",
        body=json.dumps({"type": "OrderConfirmed", "timestamp": "t", "data": {"n": n}}),
        status=status,
        attempts=3,
        next_attempt_at=now - timedelta(seconds=30) if status == "pending" else None,
        retry_until=now,
        failed_at=now if status == "failed" else None,
        last_error="HTTP 500" if status != "delivered" else "",
    )
    WebhookAttempt.objects.create(
        delivery=row,
        number=1,
        started_at=now,
        duration_ms=12,
        outcome="http_error",
        status_code=500,
        error="HTTP 500",
        response_excerpt="upstream down",
    )
    return row


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_user(username="operator", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_webhookdelivery", "retry_webhookdelivery", "view_webhookendpoint"]
        )
    )
    client.force_login(user)
    return client


def test_the_deliveries_list_shows_pending_failed_and_the_figures_above_it(operator, endpoint):
    delivery(endpoint, "pending", 1)
    delivery(endpoint, "failed", 2)
    delivery(endpoint, "delivered", 3)

    page = operator.get(DELIVERIES).content.decode()

    assert 'id="webhooks-pending"' in page
    assert ">1</a>" in page  # one pending, one failed
    assert page.count("OrderConfirmed") >= 3
    assert operator.get(DELIVERIES, {"status__exact": "failed"}).content.decode().count("HTTP 500") >= 1


def test_a_delivery_shows_its_attempts_and_body(operator, endpoint):
    row = delivery(endpoint, "failed", 1)
    page = operator.get(f"{DELIVERIES}{row.pk}/change/").content.decode()
    assert "upstream down" in page
    assert "&quot;OrderConfirmed&quot;" in page


def test_retry_makes_failed_deliveries_due_with_a_fresh_window(operator, endpoint):
    # given
    failed, done = delivery(endpoint, "failed", 1), delivery(endpoint, "delivered", 2)

    # when
    response = operator.post(DELIVERIES, {"action": "retry", "_selected_action": [failed.pk, done.pk]})

    # then
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == "pending"
    assert failed.next_attempt_at <= timezone.now()
    assert failed.retry_until > timezone.now() + timedelta(days=1)
    done.refresh_from_db()
    assert done.status == "delivered"


def test_retry_needs_its_permission(client, django_user_model, endpoint):
    user = django_user_model.objects.create_user(username="viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(user)
    failed = delivery(endpoint, "failed", 1)
    client.post(DELIVERIES, {"action": "retry", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_the_endpoint_page_never_shows_the_secret(operator, endpoint):
    page = operator.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()
    assert endpoint.url in page
    assert endpoint.secret not in page
    assert endpoint.secret.removeprefix("whsec_") not in page


def test_the_status_command_and_the_metrics_count_pending_and_failed_deliveries(client, endpoint):
    delivery(endpoint, "pending", 1)
    delivery(endpoint, "failed", 2)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=timezone.now())

    out = StringIO()
    call_command("webhooks_status", "--json", stdout=out)
    status = json.loads(out.getvalue())
    metrics = generate_latest(REGISTRY).decode()

    assert (status["pending"], status["failed"], status["disabled_endpoints"]) == (1, 1, 1)
    assert status["oldest_due_age_seconds"] >= 29
    assert 'webhook_deliveries{status="pending"} 1.0' in metrics
    assert 'webhook_deliveries{status="failed"} 1.0' in metrics
    assert 'webhook_endpoints{status="disabled"} 1.0' in metrics
    assert "webhook_deliveries_delivered_total" in metrics
    assert 'webhook_attempts_total{outcome="timeout"}' in metrics


def test_the_asyncapi_document_is_served_and_linked_from_the_api_docs(client):
    served = client.get("/api/asyncapi.yaml")
    assert served.status_code == 200
    assert yaml.safe_load(served.content) == document()
    assert "/api/asyncapi.yaml" in client.get("/api/schema").content.decode()


def test_the_openapi_schema_describes_the_feed_and_the_endpoints():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    paths = yaml.safe_load(out.getvalue())["paths"]
    assert set(paths["/api/webhook-endpoints"]) == {"get", "post"}
    assert set(paths["/api/webhook-endpoints/{endpoint_id}"]) == {"get", "delete"}
    assert "post" in paths["/api/webhook-endpoints/{endpoint_id}/rotate-secret"]
    assert "post" in paths["/api/webhook-endpoints/{endpoint_id}/enable"]
    feed = paths["/api/events"]["get"]
    assert {p["name"] for p in feed["parameters"]} >= {"after", "limit", "type"}
    assert "X-Consistency-Token" in feed["description"]
    created = paths["/api/webhook-endpoints"]["post"]["responses"]
    assert {"201", "400", "409", "422"} <= set(created)
    assert "application/problem+json" in created["422"]["content"]
