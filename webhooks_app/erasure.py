"""An erased customer in the deliveries kept for retries: their bodies are rebuilt from the log, which now reads
the customer's personal fields as `[erased]` (outbox_app/sealing.py; docs/security.md, "Erasure").

Run by the fan-out when CustomerErased reaches it. A delivery not yet made then sends the erased body (signed anew,
as every attempt is); what receivers already got is theirs to erase (they receive CustomerErased too).
"""

import json
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from outbox_app.log import read_events
from webhooks_app.models import WebhookDelivery

ERASURE_EVENT = "CustomerErased"


def redact_erased_customers(envelopes: Iterable[dict[str, Any]]) -> int:
    """Rebuild the bodies of the stored deliveries that name a customer erased by one of these events."""
    redacted = 0
    for envelope in envelopes:
        if envelope["event_type"] == ERASURE_EVENT:
            redacted += _redact(str(envelope["payload"]["customer_id"]))
    return redacted


def _redact(customer_id: str) -> int:
    with transaction.atomic():
        deliveries = list(WebhookDelivery.objects.filter(body__contains=customer_id).select_for_update())
        events = read_events([delivery.event_id for delivery in deliveries])
        changed = []
        for delivery in deliveries:
            event = events.get(str(delivery.event_id))
            message = json.loads(delivery.body)
            payload = event["payload"] if event is not None else None
            if payload is not None and message["data"]["payload"] != payload:
                message["data"]["payload"] = payload
                delivery.body = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
                changed.append(delivery)
        WebhookDelivery.objects.bulk_update(changed, ["body"])
    return len(changed)
