"""/api/webhook-endpoints: a client registers, lists, deletes, rotates and enables its own endpoints only; every
refusal is a problem with a stable code and writes nothing."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks_app.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "https://93.184.215.14/hooks"  # a public address; no delivery is attempted in these tests


@pytest.fixture
def owner(make_api_client):
    return make_api_client("webhooks")


@pytest.fixture
def stranger(make_api_client):
    return make_api_client("webhooks", "read", "write")


def register(http, url=URL, event_types=("OrderConfirmed", "OrderCancelled")):
    return http.post("/api/webhook-endpoints", {"url": url, "event_types": list(event_types)}, format="json")


def test_registering_answers_the_endpoint_and_its_secret_once(owner):
    # when
    response = register(owner)

    # then: 201 with a whsec_ secret of 32 random bytes, stored to sign
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"] == URL
    assert body["event_types"] == ["OrderConfirmed", "OrderCancelled"]
    assert body["status"] == "enabled"
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == body["secret"]
    # and never again
    listed = owner.get("/api/webhook-endpoints").json()["results"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in owner.get(f"/api/webhook-endpoints/{body['id']}").json()


def test_a_client_sees_and_manages_only_its_own_endpoints(owner, stranger):
    # given
    mine = register(owner).json()["id"]
    register(stranger, url="https://93.184.215.14/other")

    # when / then: the other client's endpoint does not exist for it, whatever it tries
    assert [e["id"] for e in owner.get("/api/webhook-endpoints").json()["results"]] == [mine]
    assert mine not in [e["id"] for e in stranger.get("/api/webhook-endpoints").json()["results"]]
    for response in (
        stranger.get(f"/api/webhook-endpoints/{mine}"),
        stranger.delete(f"/api/webhook-endpoints/{mine}"),
        stranger.post(f"/api/webhook-endpoints/{mine}/rotate-secret", {}, format="json"),
        stranger.post(f"/api/webhook-endpoints/{mine}/enable"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "WEBHOOK_ENDPOINT_NOT_FOUND"
    endpoint = WebhookEndpoint.objects.get(pk=mine)
    assert (endpoint.deleted_at, endpoint.secret_rotated_at) == (None, None)


def test_deleting_stops_deliveries_and_forgets_the_secret(owner):
    # given: an endpoint with a pending delivery
    endpoint_id = register(owner).json()["id"]
    delivery = WebhookDelivery.objects.create(
        endpoint_id=endpoint_id,
        event_id="0190a8c4-0000-7000-8000-000000000001",
        event_type="OrderConfirmed",
        body="{}",
        next_attempt_at=timezone.now(),
        retry_until=timezone.now() + timedelta(days=1),
    )

    # when
    response = owner.delete(f"/api/webhook-endpoints/{endpoint_id}")

    # then
    assert response.status_code == 204
    assert owner.get(f"/api/webhook-endpoints/{endpoint_id}").status_code == 404
    assert owner.get("/api/webhook-endpoints").json()["results"] == []
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert (endpoint.secret, endpoint.status) == ("", "deleted")
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    # and the URL may be registered again
    assert register(owner).status_code == 201


def test_rotating_gives_a_new_secret_and_keeps_the_old_one_signing_for_the_overlap(owner):
    # given
    created = register(owner).json()

    # when
    rotated = owner.post(
        f"/api/webhook-endpoints/{created['id']}/rotate-secret", {"previous_secret_expires_in": 3600}, format="json"
    )

    # then
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"] != created["secret"]
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.signing_secrets(timezone.now()) == [body["secret"], created["secret"]]
    assert endpoint.signing_secrets(timezone.now() + timedelta(hours=2)) == [body["secret"]]


def test_rotating_with_no_overlap_stops_the_old_secret_at_once(owner):
    created = register(owner).json()
    body = owner.post(
        f"/api/webhook-endpoints/{created['id']}/rotate-secret", {"previous_secret_expires_in": 0}, format="json"
    ).json()
    assert WebhookEndpoint.objects.get(pk=created["id"]).signing_secrets(timezone.now()) == [body["secret"]]
    assert body["previous_secret_expires_at"] is None


def test_a_disabled_endpoint_says_why_and_its_client_enables_it_again(owner):
    endpoint_id = register(owner).json()["id"]
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        disabled_at=timezone.now(), disabled_reason="Every delivery attempt failed ...", failing_since=timezone.now()
    )
    shown = owner.get(f"/api/webhook-endpoints/{endpoint_id}").json()
    assert (shown["status"], shown["disabled_reason"]) == ("disabled", "Every delivery attempt failed ...")

    enabled = owner.post(f"/api/webhook-endpoints/{endpoint_id}/enable")

    assert enabled.status_code == 200
    assert (enabled.json()["status"], enabled.json()["failing_since"]) == ("enabled", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://hooks.example.com/x", "event_types": ["OrderConfirmed"]}, "url"),
        ({"url": "https://u:p@hooks.example.com/x", "event_types": ["OrderConfirmed"]}, "url"),
        ({"url": 12, "event_types": ["OrderConfirmed"]}, "url"),
        ({"url": URL, "event_types": []}, "event_types"),
        ({"url": URL, "event_types": ["NoSuchEvent"]}, "event_types[0]"),
        ({"url": URL, "event_types": "OrderConfirmed"}, "event_types"),
        ({"url": URL}, "event_types"),
        ({"url": URL, "event_types": ["OrderConfirmed"], "secret": "whsec_mine"}, "secret"),
    ],
)
def test_invalid_registrations_are_refused_with_the_field_and_write_nothing(owner, body, field):
    response = owner.post("/api/webhook-endpoints", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://10.0.0.5:8443/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://localhost/hooks",
        "https://db/hooks",
    ],
)
def test_a_private_url_is_refused_without_the_setting_and_writes_nothing(owner, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    response = register(owner, url=url)
    assert response.status_code == 422
    assert response.json()["code"] == "WEBHOOK_URL_NOT_PUBLIC"
    assert not WebhookEndpoint.objects.exists()


def test_with_the_setting_a_private_url_is_accepted(owner, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    assert register(owner, url="http://127.0.0.1:9/hooks").status_code == 201


def test_a_second_endpoint_with_the_same_url_is_a_conflict(owner):
    first = register(owner).json()
    second = register(owner, event_types=["OrderPlaced"])
    assert second.status_code == 409
    assert second.json()["code"] == "WEBHOOK_ENDPOINT_EXISTS"
    assert first["id"] in second.json()["detail"]
    assert WebhookEndpoint.objects.count() == 1


def test_a_client_has_a_bounded_number_of_endpoints(owner, settings):
    settings.WEBHOOKS_MAX_ENDPOINTS_PER_CLIENT = 2
    assert register(owner, url="https://93.184.215.14/a").status_code == 201
    assert register(owner, url="https://93.184.215.14/b").status_code == 201
    refused = register(owner, url="https://93.184.215.14/c")
    assert (refused.status_code, refused.json()["code"]) == (422, "WEBHOOK_ENDPOINT_LIMIT_REACHED")
    assert WebhookEndpoint.objects.count() == 2


def test_the_webhooks_scope_is_needed(make_api_client):
    reader = make_api_client("read", "write")
    response = register(reader)
    assert (response.status_code, response.json()["code"]) == (403, "FORBIDDEN")
    assert "webhooks" in response.json()["detail"]
    assert reader.get("/api/webhook-endpoints").status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_without_a_token_nothing_is_shown(client):
    assert client.get("/api/webhook-endpoints").status_code == 401


def test_rotation_refuses_an_overlap_beyond_a_week_and_writes_nothing(owner):
    created = register(owner).json()
    response = owner.post(
        f"/api/webhook-endpoints/{created['id']}/rotate-secret",
        {"previous_secret_expires_in": 8 * 24 * 3600},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (400, "VALIDATION_FAILED")
    assert WebhookEndpoint.objects.get(pk=created["id"]).secret == created["secret"]
