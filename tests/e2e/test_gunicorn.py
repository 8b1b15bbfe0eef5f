"""The web tier as production runs it (README: gunicorn with config/gunicorn.py): queries over kept-alive
connections, and a token revoked by another process refused on its next request."""

import http.client
import subprocess
import sys
import uuid

import pytest

from api_common.models import ApiClient
from queries_app.models import CustomerView
from tests.stack import ROOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


def test_queries_share_one_connection_and_a_revoke_elsewhere_acts_on_the_next(production_web, stack_env):
    # given
    client = ApiClient(name=f"web-{uuid.uuid4().hex[:8]}", scopes=["read"])
    token = client.issue_token()
    client.save()
    customer = CustomerView.objects.create(
        customer_id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", email="ada@example.com", version=1
    )
    connection = http.client.HTTPConnection("127.0.0.1", production_web.port, timeout=10)
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
