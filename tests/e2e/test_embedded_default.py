"""End to end on the embedded default: SQLite, in-process tasks, nothing else; served as `make run` serves."""

import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import eventually
from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
# Short saga timings, so the retries and the payment timeout play out in seconds.
# tok_flaky needs three attempts a tick (1 s) apart or so, well inside the payment deadline even on a busy machine.
FAST_SAGAS = {
    "SAGA_PAYMENT_TIMEOUT_SECONDS": "8",
    "PAYMENT_PROVIDER_TIMEOUT_SECONDS": "0.3",
    "SAGA_LEASE_SECONDS": "2",
    "SAGA_RETRY_BASE_SECONDS": "0.2",
    "SAGA_RETRY_MAX_SECONDS": "0.5",
}


@dataclass(frozen=True)
class Served:
    base: str
    token: str
    data_dir: Path

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode() if body else None, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`make run`'s steps: migrate, collectstatic, runserver; with an environment that sets none of the services."""
    data_dir = tmp_path_factory.mktemp("embedded")
    unset = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY")
    env = {**{k: v for k, v in os.environ.items() if k not in unset}, "DATA_DIR": str(data_dir), **FAST_SAGAS}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*manage, "create_api_client", "newcomer", "--scopes", "read,write,catalog"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield Served(f"http://127.0.0.1:{port}", created.stdout.strip().splitlines()[-1], data_dir)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_customer_flow_on_sqlite_with_in_process_tasks(embedded):
    # when
    status, body = embedded.call(
        "POST", "/api/commands/register-customer", {"first_name": "Alan", "last_name": "Turing", "email": "alan@x.org"}
    )

    # then: the read model has it as soon as the command returns (the relay and projection ran in-process)
    assert (status, body["version"]) == (201, 1)
    status, customer = embedded.call("GET", f"/api/customers/{body['customer_id']}")
    assert (status, customer["email"], customer["version"]) == (200, "alan@x.org", 1)
    assert (embedded.data_dir / "db.sqlite3").exists()

    # when: a second version, which the relay releases only after finding version 1 published
    status, changed = embedded.call(
        "POST", "/api/commands/change-customer-email", {"customer_id": body["customer_id"], "email": "alan.t@x.org"}
    )

    # then
    assert (status, changed["version"]) == (200, 2)
    status, customer = embedded.call("GET", f"/api/customers/{body['customer_id']}")
    assert (status, customer["email"], customer["version"]) == (200, "alan.t@x.org", 2)


def test_the_embedded_default_keeps_a_generated_secret_key_only_its_owner_can_read(embedded):
    key = embedded.data_dir / "secret_key"

    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text().strip()) >= 50


def test_the_in_process_scheduler_settles_orders_that_wait_for_retries_and_timeouts(embedded):
    # given: a product and a customer
    status, _ = embedded.call(
        "POST",
        "/api/commands/add-product",
        {"sku": "LAMP", "name": "Lamp", "description": "", "price": "9.90", "stock": 10},
    )
    assert status == 201
    _, customer = embedded.call(
        "POST", "/api/commands/register-customer", {"first_name": "Ada", "last_name": "L", "email": "ada@x.org"}
    )

    def place(token: str) -> str:
        status, placed = embedded.call(
            "POST",
            "/api/commands/place-order",
            {"customer_id": customer["customer_id"], "lines": [{"sku": "LAMP", "quantity": 1}], "payment_token": token},
        )
        assert status == 202, placed
        return placed["order_id"]

    # when: the provider is unavailable twice (tok_flaky), or never answers (tok_timeout): each needs the
    # scheduler's saga tick to try again, since nothing in a request does
    flaky, timeout = place("tok_flaky"), place("tok_timeout")

    # then: both settle, with no beat and no worker
    def settled(order_id: str) -> dict | None:
        status, order = embedded.call("GET", f"/api/orders/{order_id}")
        return order if status == 200 and order["status"] in ("confirmed", "cancelled") else None

    confirmed = eventually(lambda: settled(flaky), timeout=60)
    assert confirmed["status"] == "confirmed", confirmed
    cancelled = eventually(lambda: settled(timeout), timeout=60)
    assert (cancelled["status"], cancelled["cancellation_reason"]) == ("cancelled", "payment_timeout")
    status, health = embedded.call("GET", "/healthz")
    assert health["checks"]["beat"]["status"] == "ok"
    assert health["checks"]["beat"]["runner"] == "in-process scheduler (embedded default)"
