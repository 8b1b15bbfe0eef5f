"""The web tier as production runs it (README: gunicorn with config/gunicorn.py): queries over kept-alive
connections, and a token revoked by another process refused on its next request."""

import http.client
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_common.models import ApiClient
from queries_app.models import CustomerView
from tests.stack import ROOT, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]
BIN = Path(sys.executable).parent


@pytest.fixture
def gunicorn(stack_env: dict[str, str], tmp_path: Path) -> Iterator[int]:
    port = free_port()
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "config.wsgi", "-c", "config/gunicorn.py", f"--bind=127.0.0.1:{port}", "-w", "2"],
            cwd=ROOT,
            env=stack_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(port):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/livez")
        return connection.getresponse().status == 200
    except OSError:
        return False


def test_queries_share_one_connection_and_a_revoke_elsewhere_acts_on_the_next(gunicorn, stack_env):
    # given
    client = ApiClient(name=f"web-{uuid.uuid4().hex[:8]}", scopes=["read"])
    token = client.issue_token()
    client.save()
    customer = CustomerView.objects.create(
        customer_id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", email="ada@example.com", version=1
    )
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=10)
    headers = {"Authorization": f"Token {token}"}

    def get() -> http.client.HTTPResponse:
        connection.request("GET", f"/api/customers/{customer.customer_id}", headers=headers)
        response = connection.getresponse()
        response.read()
        return response

    # when: a few queries (every worker caches the client), then a revoke from another process
    answers = [get() for _ in range(6)]
    socket = connection.sock
    subprocess.run([sys.executable, "manage.py", "revoke_api_client", client.name], cwd=ROOT, env=stack_env, check=True)

    # then: one connection throughout, and the revoked token refused at once
    assert [a.status for a in answers] == [200] * 6
    assert not any(a.will_close for a in answers)
    refused = get()
    assert connection.sock is socket
    assert refused.status == 401
    assert refused.getheader("Content-Type") == "application/problem+json"
