"""The read replica for real: a streaming replica (pg_basebackup) of a private primary, behind the production web.

EVENTUAL reads are served by the replica: with its replay paused, a customer the primary already shows stays
invisible to them. Reads carrying a consistency token (READ_YOUR_WRITES) are served by the primary. The replica's
delay is added to the lag that `consistency_map` and `projection_status` report. With the replica stopped,
EVENTUAL reads fall back to the primary (every answer 200), and once it is back they are served by it again.
"""

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from bench.private_services import PrivatePostgres, StreamingReplica
from tests.conftest import eventually
from tests.load import Api
from tests.stack import ROOT, Stack

pytestmark = [pytest.mark.stack]


@pytest.fixture
def replicated(stack_env: dict[str, str], tmp_path) -> Iterator[tuple[Stack, StreamingReplica, Api]]:
    with PrivatePostgres.running() as primary:
        database = primary.create_database("cqrs")
        env = {**stack_env, "DATABASE_URL": database, "REPLICA_CHECK_SECONDS": "0.2"}
        manage(env, "migrate", "--noinput")
        token = manage(env, "create_api_client", "reader", "--scopes", "read,write").strip().splitlines()[-1]
        with StreamingReplica.of(primary) as replica:
            stack = Stack(env={**env, "REPLICA_DATABASE_URL": replica.url("cqrs")}, logs=tmp_path)
            try:
                stack.start_worker()
                yield stack, replica, Api(stack.start_web(), token)
            finally:
                stack.stop_all()


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def register(api: Api) -> tuple[str, str, str]:
    """A new customer: (id, email, consistency token), once the projection shows it on the primary."""
    email = f"{uuid.uuid4().hex[:12]}@replica.example"
    answer = api.until_ok("register-customer", {"first_name": "Rita", "last_name": "Plica", "email": email})
    customer_id, token = answer.body["customer_id"], answer.headers["x-consistency-token"]
    on_primary = api.get(f"/api/customers/{customer_id}", **{"X-Consistency-Token": token})
    assert (on_primary.status, on_primary.headers["x-consistency-level"]) == (200, "READ_YOUR_WRITES"), on_primary
    return customer_id, email, token


def found_by_email(api: Api, email: str, **headers: str) -> list[str]:
    answer = api.get(f"/api/customers?email={email}", **headers)
    assert answer.status == 200, answer
    return [customer["id"] for customer in answer.body["results"]]


def test_eventual_reads_come_from_the_streaming_replica_and_fall_back_to_the_primary_without_it(replicated):
    stack, replica, api = replicated
    ada, ada_email, _ = register(api)
    eventually(lambda: found_by_email(api, ada_email) == [ada])  # the replica has replayed it

    # when: the replica stops replaying, and a customer is registered
    replica.pause_replay()
    bob, bob_email, token = register(api)

    # then: the primary shows Bob to any read with the command's token...
    answer = api.get(f"/api/customers?email={bob_email}", **{"X-Consistency-Token": token})
    assert [c["id"] for c in answer.body["results"]] == [bob]
    assert answer.headers["x-consistency-level"] == "READ_YOUR_WRITES"
    # ...while EVENTUAL reads, served by the replica, do not see him yet
    for _ in range(5):
        assert found_by_email(api, bob_email) == []
        assert api.get(f"/api/customers/{bob}").status == 404
        time.sleep(0.2)
    # and the status reports add the replica's delay to the projection's lag
    env = stack.env
    consistency_map = manage(env, "consistency_map")
    eventual_rows = [line for line in consistency_map.splitlines() if "| EVENTUAL |" in line]
    assert eventual_rows and all("; replica +" in row for row in eventual_rows), consistency_map
    delay = float(eventual_rows[0].split("; replica +")[1].split("s")[0])
    assert delay > 0, consistency_map
    assert "replica: " in manage(env, "projection_status")

    # when the replay resumes, EVENTUAL reads see Bob
    replica.resume_replay()
    eventually(lambda: found_by_email(api, bob_email) == [bob])

    # when the replica is stopped: EVENTUAL reads are answered, from the primary
    replica.stop()
    carol, carol_email, _ = register(api)
    for email, customer in ((ada_email, ada), (bob_email, bob), (carol_email, carol)):
        assert found_by_email(api, email) == [customer]
    assert "unavailable" in api.get("/healthz").body["checks"]["replica"]["summary"]
    assert "replica.unavailable" in (stack.logs / "web.log").read_text()

    # when it is back: EVENTUAL reads are served by it again (its paused replay hides a new customer)
    replica.start()
    eventually(lambda: found_by_email(api, carol_email) == [carol])
    replica.pause_replay()
    dave, dave_email, _ = register(api)
    time.sleep(0.5)  # more than REPLICA_CHECK_SECONDS: every web process has looked at the replica again
    assert found_by_email(api, dave_email) == []
    replica.resume_replay()
    eventually(lambda: found_by_email(api, dave_email) == [dave])
