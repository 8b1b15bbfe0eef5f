"""X-Consistency-Token on queries: wait until the read model reflects the command, or 503; never stale data."""

import threading
import time
from pathlib import Path
from typing import cast

import pytest
from django.core.management import call_command
from django.db import connection
from drf_spectacular.generators import SchemaGenerator

from api_common.consistency import AggregateVersion, encode_token
from outbox_app.models import OutboxEvent
from queries_app.consistency import applied, wait_until_applied
from queries_app.consistency_map import HEADER, entries
from queries_app.envelopes import Envelope
from queries_app.projection_engine.apply import project
from queries_app.projections import BY_NAME
from tests.conftest import command, eventually
from tests.factories import ProductRecordFactory
from tests.streams import CustomerStream, OrderStream, ProductStream, line

pytestmark = pytest.mark.django_db
DOCS = Path(__file__).resolve().parents[2] / "docs" / "consistency.md"


@pytest.fixture
def reader(make_api_client):
    return make_api_client("read")


def project_the_log() -> None:
    """What the projection workers do, here in the test: apply every event of the log not applied yet."""
    project([cast(Envelope, event.to_envelope()) for event in OutboxEvent.objects.order_by("created_at")])


def token(*versions: tuple[str, str, int]) -> str:
    return encode_token([AggregateVersion(*version) for version in versions])


def test_a_token_the_read_model_reflects_is_answered_read_your_writes_from_the_tables_not_the_cache(reader):
    # given: a cached answer that is older than the read model
    teapot = ProductStream()
    project([teapot.added("Teapot", price="19.90")])
    assert reader.get(f"/api/products/{teapot.sku}").json()["price"] == "19.90"
    project([teapot.price_changed("24.50", "19.90")])  # no on-commit invalidation inside the test's transaction

    # when
    cached = reader.get(f"/api/products/{teapot.sku}")
    strong = reader.get(f"/api/products/{teapot.sku}", HTTP_X_CONSISTENCY_TOKEN=token(("Product", teapot.sku, 2)))

    # then
    assert (cached.json()["price"], cached["X-Consistency-Level"]) == ("19.90", "HIGHLY_EVENTUAL")
    assert (strong.status_code, strong.json()["price"], strong["X-Consistency-Level"]) == (
        200,
        "24.50",
        "READ_YOUR_WRITES",
    )


def test_a_token_the_read_model_has_not_reached_answers_503_with_retry_after(reader, settings):
    # given
    settings.CONSISTENCY_WAIT_SECONDS = 0.3
    ada = CustomerStream()
    project([ada.registered()])
    ahead = token(("Customer", ada.customer_id, 2))

    # when
    started = time.monotonic()
    response = reader.get(f"/api/customers/{ada.customer_id}", HTTP_X_CONSISTENCY_TOKEN=ahead)
    waited = time.monotonic() - started

    # then
    assert (response.status_code, response.json()["code"], response["Retry-After"]) == (503, "CONSISTENCY_TIMEOUT", "1")
    assert 0.3 <= waited < 2


def test_a_token_about_aggregates_the_read_model_does_not_follow_needs_no_wait(reader, settings):
    # given
    settings.CONSISTENCY_WAIT_SECONDS = 5
    ada = CustomerStream()
    project([ada.registered()])

    # when
    response = reader.get(
        f"/api/customers/{ada.customer_id}",
        HTTP_X_CONSISTENCY_TOKEN=token(("Product", "SKU-1", 9), ("Customer", ada.customer_id, 1)),
    )

    # then
    assert response.status_code == 200


def test_a_strong_read_reflects_every_acknowledged_command_or_answers_503(make_api_client, settings):
    # given: an order placed and acknowledged, its events in the log and not yet in the read model
    settings.CONSISTENCY_WAIT_SECONDS = 0.3
    http = make_api_client("read", "write")
    ProductRecordFactory(sku="LAMP-1")
    ada = command(http, "register-customer", {"first_name": "Ada", "last_name": "L", "email": "ada@example.com"})
    customer_id = ada.json()["customer_id"]
    body = {"customer_id": customer_id, "lines": [{"sku": "LAMP-1", "quantity": 1}], "payment_token": "tok_ok"}
    order_id = command(http, "place-order", body).json()["order_id"]
    url = f"/api/orders/{order_id}"

    # when / then: no answer before the projection has the order
    behind = http.get(url)
    assert (behind.status_code, behind.json()["code"], behind["Retry-After"]) == (503, "CONSISTENCY_TIMEOUT", "1")

    # when / then: the projection caught up, so the answer is STRONG and complete
    project_the_log()
    caught_up = http.get(url)
    assert (caught_up.status_code, caught_up["X-Consistency-Level"]) == (200, "STRONG")
    assert (caught_up.json()["status"], caught_up.json()["customer"]["email"]) == ("pending", "ada@example.com")

    # when / then: a later command about the order's customer holds the order's answer back until it is applied
    command(http, "change-customer-email", {"customer_id": customer_id, "email": "ada@lovelace.org"})
    assert http.get(url).status_code == 503
    project_the_log()
    assert http.get(url).json()["customer"]["email"] == "ada@lovelace.org"


def test_an_eventual_read_answers_at_once_and_says_so(make_api_client, settings):
    # given: a customer registered, not yet projected
    settings.CONSISTENCY_WAIT_SECONDS = 5
    http = make_api_client("read", "write")
    ada = command(http, "register-customer", {"first_name": "Ada", "last_name": "L", "email": "ada@example.com"})
    url = f"/api/customers/{ada.json()['customer_id']}"

    # when
    started = time.monotonic()
    eventual = http.get(url)
    waited = time.monotonic() - started
    project_the_log()
    with_token = http.get(url, HTTP_X_CONSISTENCY_TOKEN=ada["X-Consistency-Token"])

    # then: the eventual read did not wait and said what it was; the token's read says it has the write
    assert (eventual.status_code, eventual["X-Consistency-Level"]) == (404, "EVENTUAL")
    assert waited < 1
    assert (with_token.status_code, with_token["X-Consistency-Level"]) == (200, "READ_YOUR_WRITES")


@pytest.mark.parametrize("value", ["", "garbage", token(("Customer", "x", 1)) + "tampered"])
def test_an_invalid_token_is_a_400_problem(reader, value):
    response = reader.get("/api/products", HTTP_X_CONSISTENCY_TOKEN=value)

    assert (response.status_code, response.json()["code"]) == (400, "CONSISTENCY_TOKEN_INVALID")


def test_the_consistency_map_command_and_the_docs_list_the_same_endpoints_levels_and_sources(capsys):
    # when
    call_command("consistency_map")

    # then
    printed = [row.split(" | ") for row in capsys.readouterr().out.splitlines()[2:]]
    documented = [
        row.split(" | ")
        for row in DOCS.read_text().split("| " + " | ".join(HEADER) + " |")[1].strip().splitlines()[1:]
        if row.startswith("| ")
    ]
    assert [row[:3] for row in printed] == [row[:3] for row in documented]
    assert len(printed) == len(entries()) == 7
    assert all("event(s), oldest" in row[3] for row in printed)


def test_the_schema_states_the_levels_each_endpoint_answers_as_the_consistency_map_declares():
    # given
    schema = SchemaGenerator().get_schema(request=None, public=True)

    # when
    answered = {
        entry.endpoint: schema["paths"][entry.endpoint.removeprefix("GET ")]["get"]["responses"]["200"]["headers"][
            "X-Consistency-Level"
        ]["schema"]["enum"]
        for entry in entries()
    }

    # then: a STRONG endpoint answers STRONG only; the others their level, or READ_YOUR_WRITES with a token
    assert answered == {
        entry.endpoint: [entry.level] if entry.level == "STRONG" else sorted([entry.level, "READ_YOUR_WRITES"])
        for entry in entries()
    }


@pytest.mark.django_db(transaction=True)
def test_a_read_waiting_on_a_projection_wakes_at_the_commit_of_its_apply_and_stops_listening_after():
    # given: a read waiting for the orders projection to apply an order placed, whose pauses between probes (20 s)
    # are longer than the test: only the apply's notification can wake it in time
    order = OrderStream(customer_id=CustomerStream().customer_id)
    placed = order.placed(line("SKU-LISTEN"))
    probed = applied(BY_NAME["orders"], [AggregateVersion("Order", order.order_id, 1)], using="default")
    probes: list[bool] = []
    outcome: dict[str, object] = {}

    def probe() -> bool:
        probes.append(probed())
        return probes[-1]

    def read() -> None:
        try:
            outcome["caught_up"] = wait_until_applied(
                probe, "orders", timeout=60, using="default", first_pause=20, max_pause=20
            )
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_listening_channels()")
                outcome["still_listening"] = cursor.fetchone()[0]
        finally:
            connection.close()

    reader = threading.Thread(target=read)
    reader.start()
    # it probed before listening, and once more after its LISTEN: now it sleeps
    eventually(lambda: len(probes) == 2, timeout=10)

    # when: a projection worker applies the event
    project([placed])

    # then: the commit woke it, it probed once more and answered, and its connection listens to nothing now
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert (outcome, probes) == ({"caught_up": True, "still_listening": 0}, [False, False, True])
