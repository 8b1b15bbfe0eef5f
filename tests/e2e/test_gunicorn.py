"""The web tier as production runs it (README: gunicorn with config/gunicorn.py): queries over kept-alive
connections, and a token revoked by another process refused on its next request."""

import http.client
import json
import socket
import subprocess
import sys
import uuid

import pytest

from api_common.models import ApiClient
from queries_app.models import CustomerView
from tests.stack import ROOT, Web

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


@pytest.fixture
def web(production_web: Web) -> int:
    """The port of gunicorn on the production profile (tests/stack.py), shared with the session's other tests."""
    return production_web.port


def test_queries_share_one_connection_and_a_revoke_elsewhere_acts_on_the_next(web, stack_env):
    # given
    client = ApiClient(name=f"web-{uuid.uuid4().hex[:8]}", scopes=["read"])
    token = client.issue_token()
    client.save()
    customer = CustomerView.objects.create(
        customer_id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", email="ada@example.com", version=1
    )
    connection = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
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


def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], dict]:
    """Send bytes as they are (http.client would refuse some of these) and read the one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                lengths = [
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if lengths and len(body) >= lengths[0]:
                    break
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        pytest.param(
            b"GET /api/products?search=" + b"a" * 5_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "URI_TOO_LONG",
            id="URL over the API's limit (Django)",
        ),
        pytest.param(
            b"GET /api/products?search=" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "URI_TOO_LONG",
            id="request line over gunicorn's limit",
        ),
        pytest.param(
            b"GET /api/products HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 9_000 + b"\r\n\r\n",
            431,
            "HEADER_TOO_LARGE",
            id="header over gunicorn's limit",
        ),
        pytest.param(
            b"GET /api/products HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            400,
            "MALFORMED_REQUEST",
            id="malformed header",
        ),
    ],
)
def test_what_the_web_server_refuses_is_a_problem_document_too(web, request_bytes, status, code):
    # when
    answered, headers, problem = raw_request(web, request_bytes)

    # then
    assert (answered, headers["content-type"], problem["code"], problem["status"]) == (
        status,
        "application/problem+json",
        code,
        status,
    )
    assert headers["x-correlation-id"] == problem["correlation_id"]
