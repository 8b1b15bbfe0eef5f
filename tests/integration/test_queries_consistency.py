"""X-Consistency-Token on queries: wait until the read model reflects the command, or 503; never stale data."""

import time
from pathlib import Path

import pytest
from django.core.management import call_command

from api_common.consistency import AggregateVersion, encode_token
from queries_app.consistency_map import HEADER, entries
from queries_app.projection_engine.apply import project
from tests.streams import CustomerStream, ProductStream

pytestmark = pytest.mark.django_db
DOCS = Path(__file__).resolve().parents[2] / "docs" / "consistency.md"


@pytest.fixture
def reader(make_api_client):
    return make_api_client("read")


def token(*versions: tuple[str, str, int]) -> str:
    return encode_token([AggregateVersion(*version) for version in versions])


def test_a_token_the_read_model_reflects_is_answered_strong_from_the_tables_not_the_cache(reader):
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
    assert (strong.status_code, strong.json()["price"], strong["X-Consistency-Level"]) == (200, "24.50", "STRONG")


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
