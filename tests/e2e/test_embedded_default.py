"""End to end on the embedded default: SQLite, in-process tasks, nothing else; served as `make run` serves."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


def call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if method == "POST":
        headers["Idempotency-Key"] = str(uuid.uuid4())
    request = urllib.request.Request(
        url, data=json.dumps(body).encode() if body else None, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_customer_flow_on_sqlite_with_in_process_tasks(tmp_path):
    # given: an environment with none of the service variables set
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env["DATA_DIR"] = str(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*manage, "create_api_client", "newcomer", "--scopes", "read,write"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token = created.stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

        # when
        status, body = call(
            "POST",
            f"{base}/api/commands/register-customer",
            token,
            {"first_name": "Alan", "last_name": "Turing", "email": "alan@example.org"},
        )

        # then: the read model has it as soon as the command returns (the relay and projection ran in-process)
        assert (status, body["version"]) == (201, 1)
        status, customer = call("GET", f"{base}/api/customers/{body['customer_id']}", token)
        assert (status, customer["email"], customer["version"]) == (200, "alan@example.org", 1)
        assert (tmp_path / "db.sqlite3").exists()

        # when: a second version, which the relay releases only after finding version 1 published
        status, changed = call(
            "POST",
            f"{base}/api/commands/change-customer-email",
            token,
            {"customer_id": body["customer_id"], "email": "alan.turing@example.org"},
        )

        # then
        assert (status, changed["version"]) == (200, 2)
        status, customer = call("GET", f"{base}/api/customers/{body['customer_id']}", token)
        assert (status, customer["email"], customer["version"]) == (200, "alan.turing@example.org", 2)
    finally:
        server.terminate()
        server.wait(timeout=10)
