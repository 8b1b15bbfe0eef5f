"""Standard Webhooks signing: whsec_ secrets, and the webhook-id, webhook-timestamp, webhook-signature headers.

The signature is `v1,` + base64(HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")), computed by the
`standardwebhooks` package, so any receiver verifying with it (or any other Standard Webhooks library) agrees.
While a rotated secret overlaps, the header carries one signature per secret, separated by a space; a receiver
that knows either secret verifies.
"""

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
USER_AGENT = "cqrs-orders-webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature(signing_secrets: list[str], *, webhook_id: str, timestamp: datetime, body: bytes) -> str:
    return " ".join(Webhook(secret).sign(webhook_id, timestamp, body) for secret in signing_secrets)


def delivery_headers(
    signing_secrets: list[str], *, webhook_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature(signing_secrets, webhook_id=webhook_id, timestamp=timestamp, body=body),
    }
