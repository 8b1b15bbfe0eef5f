"""PostgreSQL stopped under load: clients get 503 DATABASE_UNAVAILABLE (never a 500), and nothing is lost or doubled.

The production processes (gunicorn, a worker per queue, beat) run on a PostgreSQL cluster of the test's own,
while client threads register customers and place orders, each retried with its Idempotency-Key until a
definite answer. The cluster is stopped (fast shutdown: every session cut) for five seconds and started again.
Then:
  - every answer was a success or a 503 problem (application/problem+json, code DATABASE_UNAVAILABLE,
    Retry-After): no 500, no other error;
  - every command got its success in the end, each key exactly one customer or order in the write model
    (an attempt cut off mid-transaction left nothing behind, and its retry did not write it twice);
  - the relay, the workers and beat reconnected by themselves (the same processes still run), and every
    accepted command reached the read model and every order settled.
"""

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from bench.private_services import PrivatePostgres
from tests.load import FAST_SAGAS, Api, Load, outage_under_load, seed, wait_converged
from tests.stack import ROOT, Stack

pytestmark = [pytest.mark.stack]

OUTAGE_SECONDS = 5


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    with PrivatePostgres.running() as cluster:
        yield cluster


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_postgres_stopped_under_load_answers_503_and_loses_nothing(
    cluster: PrivatePostgres, stack_env: dict[str, str], tmp_path
):
    # given: the service on its own PostgreSQL, and clients registering customers and placing orders
    database = cluster.create_database("cqrs")
    env = {**stack_env, "DATABASE_URL": database, **FAST_SAGAS}
    manage(env, "migrate", "--noinput")
    token = manage(env, "create_api_client", "outage", "--scopes", "read,write,catalog").strip().splitlines()[-1]
    stack = Stack(env=env, logs=tmp_path)
    try:
        api = Api(stack.start_production(), token)
        skus, customers = seed(api)
        running = {name: stack.pid(name) for name in stack.processes}

        # when: PostgreSQL goes away for five seconds under load, and comes back
        load = Load(api, skus, customers)
        back = outage_under_load(load, cluster, seconds=OUTAGE_SECONDS)

        # then: only successes and 503 DATABASE_UNAVAILABLE problems, and every command succeeded in the end
        statuses = load.statuses()
        assert set(statuses) <= {201, 202, 503}, statuses
        assert statuses[503] > 0, "the outage was not seen by any client"
        unavailable = [a for item in load.sent for a in item.answers if a.status == 503]
        assert {a.headers["content-type"] for a in unavailable} == {"application/problem+json"}
        assert {a.body["code"] for a in unavailable} == {"DATABASE_UNAVAILABLE"}
        assert all(int(a.headers["retry-after"]) >= 1 for a in unavailable)
        assert not load.unresolved()
        # and each key wrote exactly one row: no attempt left half a command, none was applied twice
        assert_once(database, load)
        # and the relay, the workers and beat reconnected by themselves: every command reached the read model
        wait_converged(database, load, within=60 - (time.monotonic() - back))
        print(f"converged {time.monotonic() - back:.1f}s after PostgreSQL's return; answers {dict(statuses)}")
        assert {name: stack.pid(name) for name in running} == running
    finally:
        stack.stop_all()


def assert_once(database: str, load: Load) -> None:
    emails = [item.body["email"] for item in load.accepted("register-customer")]
    orders = [item.final.body["order_id"] for item in load.accepted("place-order") if item.final]
    order_keys = {item.key for item in load.accepted("place-order")}
    with psycopg.connect(database, autocommit=True) as connection:
        customers = connection.execute(
            "SELECT email, count(*) FROM write_customer WHERE email = ANY(%s) GROUP BY email", [emails]
        ).fetchall()
        placed = connection.execute("SELECT count(*) FROM write_order WHERE order_id = ANY(%s::uuid[])", [orders])
        stored = connection.execute(
            "SELECT key::text, response_body FROM write_idempotency_record WHERE command_type = 'PlaceOrder'"
        ).fetchall()
        all_orders = connection.execute("SELECT count(*) FROM write_order").fetchone()
    assert sorted(email for email, _ in customers) == sorted(emails)
    assert {n for _, n in customers} == {1}
    assert placed.fetchone() == (len(orders),)
    # every order in the write model belongs to an accepted key, whose stored answer names it
    answered = {key: json.loads(body)["order_id"] for key, body in stored if key in order_keys}
    assert sorted(answered.values()) == sorted(orders), json.dumps(answered)[:500]
    assert all_orders == (len(orders),)
