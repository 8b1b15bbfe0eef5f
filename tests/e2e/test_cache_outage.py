"""Redis (the cache) stopped: commands are accepted, queries answered; the rate limit and the caches step aside.

The production web, a worker and beat run with a redis-server of the test's own as REDIS_URL (persistent, as the
fake payment provider's state needs). With it stopped:
  - commands succeed on their first attempt (the durable idempotency tier in PostgreSQL alone keeps them
    exactly-once: a retried key replays its first answer);
  - every query answers 200: STRONG and EVENTUAL ones from the read tables, HIGHLY_EVENTUAL ones without their
    cache (product detail and best sellers from their tables);
  - nothing is rate limited or refused (the limiter lets requests through and logs `throttle.degraded`), and
    /readyz keeps the process in service while the status document (/healthz) reports the cache failing;
  - new events still reach the read models (beat relays them: the nudge needs Redis).
An order's payment waits meanwhile: the fake payment provider (the external system the tests simulate) keeps
its state in this Redis, so for it the outage is the provider's. Once Redis is back the order settles, and
`verify_projections` finds every read model equal to the log: none of them lives in Redis.
"""

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from bench.private_services import ThrowawayRedis
from tests.conftest import eventually
from tests.load import FAST_SAGAS, Answer, Api, api_token
from tests.stack import ROOT, Stack

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


@pytest.fixture
def cache_server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis.running(durable=True) as server:
        yield server


@pytest.fixture
def stack(cache_server: ThrowawayRedis, stack_env: dict[str, str], transactional_db: None, tmp_path) -> Iterator[Stack]:
    stack = Stack(env={**stack_env, "REDIS_URL": cache_server.url, **FAST_SAGAS}, logs=tmp_path)
    yield stack
    stack.stop_all()


def confirmed_order(api: Api, customer_id: str, sku: str, quantity: int) -> str:
    order = api.until_ok(
        "place-order",
        {"customer_id": customer_id, "lines": [{"sku": sku, "quantity": quantity}], "payment_token": "tok_ok"},
    )
    order_id = order.body["order_id"]
    eventually(lambda: (api.get(f"/api/orders/{order_id}").body or {}).get("status") == "confirmed", timeout=30)
    return order_id


def test_with_redis_stopped_commands_are_accepted_and_queries_answered(cache_server: ThrowawayRedis, stack: Stack):
    # given: a product sold once, its detail and the best sellers cached
    stack.start_worker()
    stack.start_beat()
    api = Api(stack.start_web(), api_token())
    sku = f"CACHE-{uuid.uuid4().hex[:6]}"
    api.until_ok("add-product", {"sku": sku, "name": "Kettle", "description": "", "price": "20.00", "stock": 100})
    ada = api.until_ok("register-customer", {"first_name": "Ada", "last_name": "L", "email": f"{sku}@x.org"})
    confirmed_order(api, ada.body["customer_id"], sku, 2)
    # (each projection applies the event in its own transaction: the best sellers may follow the order's by a moment)
    eventually(
        lambda: (
            api.get("/api/products/best-sellers").body["results"][:1]
            == [{"sku": sku, "name": "Kettle", "units_sold": 2}]
        )
    )

    # when: Redis goes away
    cache_server.stop()

    # then: commands succeed at once, and a retried key replays its first answer
    key = str(uuid.uuid4())
    grace = {"first_name": "Grace", "last_name": "H", "email": f"grace-{sku}@x.org"}
    first, again = api.command("register-customer", grace, key=key), api.command("register-customer", grace, key=key)
    assert (first.status, again.status) == (201, 201), (first, again)
    assert again.body == first.body and again.headers["idempotent-replayed"] == "true"
    order = api.command(
        "place-order",
        {"customer_id": ada.body["customer_id"], "lines": [{"sku": sku, "quantity": 3}], "payment_token": "tok_ok"},
    )
    assert order.status == 202, order
    # and queries answer, at every level, the new writes included once projected (never a 5xx or a 429)
    grace_id = first.body["customer_id"]
    answers: list[Answer] = []

    def answered(path: str, **headers: str) -> Answer:
        answer = api.get(path, **headers)
        answers.append(answer)
        assert answer.status in (200, 404), answer
        return answer

    eventually(lambda: answered(f"/api/customers/{grace_id}").status == 200, timeout=30)
    found = answered(f"/api/customers?email={grace['email']}").body["results"]
    assert [c["id"] for c in found] == [grace_id]
    token = answered(f"/api/customers/{grace_id}", **{"X-Consistency-Token": first.headers["x-consistency-token"]})
    assert token.headers["x-consistency-level"] == "READ_YOUR_WRITES"
    assert answered(f"/api/products/{sku}").body["name"] == "Kettle"
    # (the order is in the read model; its payment waits: the fake payment provider keeps its state in Redis)
    eventually(lambda: answered(f"/api/orders/{order.body['order_id']}").status == 200, timeout=30)
    best = answered("/api/products/best-sellers").body["results"][0]
    assert best == {"sku": sku, "name": "Kettle", "units_sold": 2}  # from read_best_seller, the cache away
    ready, health = api.get("/readyz"), api.get("/healthz")
    assert (ready.status, ready.body["status"]) == (200, "ok"), ready.body
    assert health.body["checks"]["cache"]["status"] == "failing", health.body
    web_log = (stack.logs / "web.log").read_text()
    assert "throttle.degraded" in web_log and "idempotency.degraded" in web_log

    # when Redis is back: the order's saga ends, and every read model matches the log
    cache_server.start()
    eventually(lambda: api.get(f"/api/orders/{order.body['order_id']}").body["status"] != "pending", timeout=60)
    verify = subprocess.run(
        [sys.executable, "manage.py", "verify_projections"], cwd=ROOT, env=stack.env, capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
