"""Payment tokens are kept only until the payment is decided: after orders are placed and settled on the stack as
deployed (gunicorn, a worker and beat), no dump of the database, no log and no Redis key holds a token."""

import base64
import http.client
import json
import subprocess
import time
import uuid
from typing import Any

import pytest
import redis
from django.conf import settings

from api_common.models import ApiClient
from commands_app.models import PaymentToken
from tests.stack import gunicorn, queued_bodies

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]
# The fake provider's tokens (authorizes, declines, unavailable twice before it authorizes), each made unique
# as a real card's token is, so that finding one anywhere can only mean this test's token leaked.
TOKENS = {
    f"{kind}_{uuid.uuid4().hex}": outcome
    for kind, outcome in [("tok_ok", "confirmed"), ("tok_declined", "cancelled"), ("tok_flaky", "confirmed")]
}


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def send(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())} if body is not None else self.headers
        self.connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")


def settled(api: Api, order_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, order = api.send("GET", f"/api/orders/{order_id}")
        if status == 200 and order["status"] != "pending":
            return str(order["status"])
        time.sleep(0.2)
    raise AssertionError(f"order {order_id} did not settle")


def test_after_orders_settle_no_dump_log_or_cache_holds_a_payment_token(celery_stack, stack_env, tmp_path):
    # given: a shop served as deployed
    client = ApiClient(name=f"shop-{uuid.uuid4().hex[:6]}", scopes=["read", "write", "catalog"])
    token = client.issue_token()
    client.save()
    with gunicorn(stack_env, tmp_path) as web:
        api = Api(web.port, token)
        assert (
            api.send(
                "POST",
                "/api/commands/add-product",
                {"sku": "LAMP-1", "name": "Lamp", "description": "", "price": "19.90", "stock": 10},
            )[0]
            == 201
        )
        _, customer = api.send(
            "POST",
            "/api/commands/register-customer",
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        )

        # when: an order with each token is placed, and the sagas settle them
        outcomes = {}
        for payment_token, expected in TOKENS.items():
            status, placed = api.send(
                "POST",
                "/api/commands/place-order",
                {
                    "customer_id": customer["customer_id"],
                    "lines": [{"sku": "LAMP-1", "quantity": 1}],
                    "payment_token": payment_token,
                },
            )
            assert status == 202, placed
            outcomes[payment_token] = (settled(api, placed["order_id"]), expected)

    # then: the orders settled as their tokens say, and no token is left anywhere
    assert all(got == expected for got, expected in outcomes.values()), outcomes
    assert PaymentToken.objects.count() == 0
    database = settings.DATABASES["default"]
    dump = subprocess.run(
        ["pg_dump", "-h", database["HOST"], "-p", str(database["PORT"]), "-U", database["USER"], database["NAME"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "write_payment_token" in dump and "OrderPlaced" in dump  # the dump is of the right database
    logs = "".join(
        path.read_text(errors="replace")
        for path in [*tmp_path.glob("gunicorn-*.log"), *celery_stack.logs.glob("*.log")]
    )
    assert "command.completed" in logs and "saga" in logs  # the logs are the service's
    cached = cache_contents()
    for payment_token in TOKENS:
        secret = payment_token.rsplit("_", 1)[1]
        assert secret not in dump, f"{payment_token} is in the database dump"
        assert secret not in logs, f"{payment_token} is in the logs"
        assert secret not in cached, f"{payment_token} is in Redis"


def cache_contents() -> str:
    """Every key and value in the cache's Redis database, and every message waiting in the broker (a Redis
    database's keys too, if Redis is the broker), as text, Celery's base64 message bodies decoded."""
    found: list[str] = []
    redis_urls = [settings.REDIS_URL]
    if settings.BROKER_IS_RABBITMQ:
        found.extend(body.decode("utf-8", errors="replace") for body in queued_bodies(settings.CELERY_BROKER_URL))
    else:
        redis_urls.append(settings.CELERY_BROKER_URL)
    for url in redis_urls:
        server = redis.Redis.from_url(url)
        for key in server.scan_iter(count=1000):
            found.append(repr(key))
            found.extend(readable(value) for value in values_of(server, key) if value is not None)
    return "\n".join(found)


def values_of(server: redis.Redis, key: bytes) -> list[Any]:
    named = server.type(key)
    kind = named.decode() if isinstance(named, bytes) else str(named)
    if kind == "string":
        return [server.get(key)]
    if kind == "list":
        return list(server.lrange(key, 0, -1))
    if kind == "hash":
        return [item for pair in server.hgetall(key).items() for item in pair]
    if kind == "set":
        return list(server.smembers(key))
    if kind == "zset":
        return list(server.zrange(key, 0, -1))
    return []


def readable(value: bytes) -> str:
    text = value.decode("utf-8", errors="replace")
    try:
        message = json.loads(text)
    except ValueError:
        return repr(value)
    body = message.get("body") if isinstance(message, dict) else None
    if isinstance(body, str) and message.get("properties", {}).get("body_encoding") == "base64":
        return text + base64.b64decode(body).decode("utf-8", errors="replace")
    return text
