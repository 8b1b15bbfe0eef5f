"""What a client does with its webhook endpoints: register, list, delete, rotate the secret, enable again.

A client reaches only its own endpoints: any other id, whoever owns it, is not found (never "forbidden", which
would tell that it exists). Each refusal is a Refusal with a stable code, raised before anything is written.
"""

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api_common.models import ApiClient
from webhooks_app.addresses import AddressRefused, parse_target, refuse_private_host
from webhooks_app.models import WebhookDelivery, WebhookEndpoint
from webhooks_app.signing import new_secret

MAX_SECRET_OVERLAP = timedelta(days=7)


@dataclass
class Refusal(Exception):
    status: int
    code: str
    detail: str


def not_found() -> Refusal:
    return Refusal(404, "WEBHOOK_ENDPOINT_NOT_FOUND", "This client has no webhook endpoint with this id.")


def endpoints_of(client: ApiClient) -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.live().filter(client=client).order_by("created_at", "id"))


def endpoint_of(client: ApiClient, endpoint_id: UUID, *, for_update: bool = False) -> WebhookEndpoint:
    endpoints = WebhookEndpoint.objects.live().filter(client=client, pk=endpoint_id)
    endpoint = (endpoints.select_for_update() if for_update else endpoints).first()
    if endpoint is None:
        raise not_found()
    return endpoint


def create_endpoint(*, client: ApiClient, url: str, event_types: list[str]) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its signing secret, which is never shown again."""
    try:
        refuse_private_host(parse_target(url).host)
    except AddressRefused as refused:
        raise Refusal(
            422,
            "WEBHOOK_URL_NOT_PUBLIC",
            f"{refused} Webhooks go to public addresses only (WEBHOOKS_ALLOW_PRIVATE_NETWORKS lifts this).",
        ) from None
    secret = new_secret()
    with transaction.atomic():
        # One registration at a time per client, so the limit and the one-endpoint-per-URL rule hold under races.
        list(ApiClient.objects.select_for_update().filter(pk=client.pk).values_list("pk", flat=True))
        live = WebhookEndpoint.objects.live().filter(client=client)
        existing = live.filter(url=url).values_list("pk", flat=True).first()
        if existing is not None:
            raise Refusal(
                409,
                "WEBHOOK_ENDPOINT_EXISTS",
                f"Endpoint {existing} has this URL already; rotate its secret if you lost it.",
            )
        limit = settings.WEBHOOKS_MAX_ENDPOINTS_PER_CLIENT
        if live.count() >= limit:
            raise Refusal(422, "WEBHOOK_ENDPOINT_LIMIT_REACHED", f"A client may have {limit} webhook endpoints.")
        endpoint = WebhookEndpoint.objects.create(client=client, url=url, event_types=event_types, secret=secret)
    return endpoint, secret


def delete_endpoint(*, client: ApiClient, endpoint_id: UUID) -> None:
    """Stop deliveries to it and forget its secrets; its delivery history stays for operators until pruned."""
    now = timezone.now()
    with transaction.atomic():
        endpoint = endpoint_of(client, endpoint_id, for_update=True)
        endpoint.deleted_at = now
        endpoint.secret = endpoint.previous_secret = ""
        endpoint.previous_secret_expires_at = None
        endpoint.save(update_fields=["deleted_at", "secret", "previous_secret", "previous_secret_expires_at"])
        WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.FAILED,
            failed_at=now,
            next_attempt_at=None,
            lease_token=None,
            leased_until=None,
            last_error="The endpoint was deleted.",
        )


def rotate_secret(
    *, client: ApiClient, endpoint_id: UUID, previous_expires_in: timedelta
) -> tuple[WebhookEndpoint, str]:
    """A new secret; deliveries are signed with the replaced one too until it expires (at once for 0).

    A secret replaced before it expired is dropped: only the secret being replaced overlaps.
    """
    if not timedelta(0) <= previous_expires_in <= MAX_SECRET_OVERLAP:
        raise ValueError("previous_expires_in must be between 0 and 7 days")
    now = timezone.now()
    secret = new_secret()
    with transaction.atomic():
        endpoint = endpoint_of(client, endpoint_id, for_update=True)
        overlaps = previous_expires_in > timedelta(0)
        endpoint.previous_secret = endpoint.secret if overlaps else ""
        endpoint.previous_secret_expires_at = now + previous_expires_in if overlaps else None
        endpoint.secret = secret
        endpoint.secret_rotated_at = now
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "secret_rotated_at"])
    return endpoint, secret


def enable_endpoint(*, client: ApiClient, endpoint_id: UUID) -> WebhookEndpoint:
    """Deliver to a disabled endpoint again, from the next event on (the feed has what it missed)."""
    with transaction.atomic():
        endpoint = endpoint_of(client, endpoint_id, for_update=True)
        endpoint.disabled_at = endpoint.failing_since = None
        endpoint.disabled_reason = ""
        endpoint.save(update_fields=["disabled_at", "failing_since", "disabled_reason"])
    return endpoint
