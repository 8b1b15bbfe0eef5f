"""Read-your-writes on the real stack: a GET sent with the command's consistency token sees the command.

The worker (another process) relays and projects; the GET follows the POST at once, with no polling by the
test: the query itself waits for the projection, up to CONSISTENCY_WAIT_SECONDS.
"""

import pytest

from api_common.consistency import HEADER
from tests.conftest import command

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


def test_a_get_with_the_commands_token_always_sees_the_write(celery_stack, writer):
    for n in range(5):
        # given
        registered = command(
            writer, "register-customer", {"first_name": "Grace", "last_name": "Hopper", "email": f"g{n}@navy.mil"}
        )
        assert registered.status_code == 201
        customer_id = registered.json()["customer_id"]

        # when
        created = writer.get(f"/api/customers/{customer_id}", HTTP_X_CONSISTENCY_TOKEN=registered[HEADER])
        changed = command(writer, "change-customer-email", {"customer_id": customer_id, "email": f"grace{n}@navy.mil"})
        updated = writer.get(f"/api/customers/{customer_id}", HTTP_X_CONSISTENCY_TOKEN=changed[HEADER])

        # then
        assert (created.status_code, created.json()["email"], created["X-Consistency-Level"]) == (
            200,
            f"g{n}@navy.mil",
            "READ_YOUR_WRITES",
        )
        assert changed.status_code == 200
        assert (updated.status_code, updated.json()["email"], updated.json()["version"]) == (
            200,
            f"grace{n}@navy.mil",
            2,
        )
