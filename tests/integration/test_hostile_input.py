"""Hostile input: every attempt gets a 4xx problem+json, and the row counts prove nothing was written."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from commands_app.models import CustomerRecord, IdempotencyRecord, ProductRecord
from outbox_app.models import OutboxEvent

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
URL = "/api/commands/register-customer"


def nothing_written() -> bool:
    return (
        CustomerRecord.objects.count()
        + ProductRecord.objects.count()
        + OutboxEvent.objects.count()
        + IdempotencyRecord.objects.count()
        == 0
    )


def post_raw(http, body: bytes | str, content_type: str = "application/json", url: str = URL, **extra):
    return http.generic("POST", url, body, content_type=content_type, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **extra)


def assert_problem(response, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, response.content[:300]
    if status is not None:
        assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == response.status_code and problem["code"]
    return problem


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"first_name": "A\\u0000", "last_name": "B", "email": "a@b.co"}', id="escaped NUL in a value"),
        pytest.param('{"first_name\\u0000": "A", "last_name": "B", "email": "a@b.co"}', id="escaped NUL in a key"),
        pytest.param(b'{"first_name": "A\x00", "last_name": "B", "email": "a@b.co"}', id="raw NUL byte"),
        pytest.param(b'{"first_name": "\xff\xfe", "last_name": "B", "email": "a@b.co"}', id="invalid UTF-8"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="deeply nested arrays"),
        pytest.param('{"a":' * 5000 + "1" + "}" * 5000, id="deeply nested objects"),
        pytest.param('{"first_name": NaN, "last_name": "B", "email": "a@b.co"}', id="NaN"),
        pytest.param('{"first_name": "A", "last_name": "B", "email": "a@b.co"', id="truncated"),
        pytest.param("", id="empty body"),
        pytest.param("[]", id="a list, not an object"),
        pytest.param('"just a string"', id="a string, not an object"),
    ],
)
def test_malformed_or_hostile_json_is_refused(writer, body):
    assert_problem(post_raw(writer, body))
    assert nothing_written()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "x@example.com' OR '1'='1"),
        ("email", "a@b.co; DROP TABLE write_customer; --"),
        ("first_name", "<script>alert(1)</script>"),
        ("last_name", "Robert\u0007"),
        ("first_name", "x" * 10_000),
        ("email", 18446744073709551617),
        ("first_name", {"$gt": ""}),
        ("last_name", ["a", "b"]),
    ],
)
def test_injection_and_type_confusion_in_fields_are_refused(writer, field, value):
    body = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", field: value}

    problem = assert_problem(writer.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())), 400)

    assert field in [e["field"] for e in problem["errors"]]
    assert nothing_written()


def test_a_10_mb_body_is_refused_before_it_is_read(writer):
    body = b'{"first_name": "' + b"a" * (10 * 1024 * 1024) + b'"}'

    assert_problem(post_raw(writer, body), 413)
    assert nothing_written()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"],
)
def test_unknown_content_types_are_refused(writer, content_type):
    assert_problem(post_raw(writer, "first_name=A", content_type=content_type), 415)
    assert nothing_written()


def test_a_header_of_absurd_size_is_refused(writer):
    response = post_raw(writer, "{}", HTTP_X_PADDING="p" * 100_000)

    assert_problem(response, 431)
    assert nothing_written()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/customers?email=" + "a" * 5000),
        ("get", "/api/products/" + "x" * 5000),
        ("post", URL + "?" + "q" * 5000),
    ],
)
def test_a_url_over_the_limit_is_a_414_problem(writer, method, path):
    response = getattr(writer, method)(path, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))

    problem = assert_problem(response, 414)
    assert problem["code"] == "URI_TOO_LONG"
    assert nothing_written()


def test_a_query_string_of_too_many_fields_is_a_400_problem_not_a_page(writer):
    # Django refuses more than DATA_UPLOAD_MAX_NUMBER_FIELDS (1000) fields outside DRF: handler400 answers it.
    response = writer.get("/api/products?" + "&".join(["a=1"] * 1001))

    assert_problem(response, 400)


@pytest.mark.parametrize(
    "path",
    [
        "/api/customers/1' OR '1'='1",
        "/api/customers?email=' OR 1=1 --",
        "/api/customers/%00",
        "/api/customers?email=%00",
    ],
)
def test_injection_in_queries_is_a_4xx(writer, path):
    assert_problem(writer.get(path))


def test_too_many_requests_answer_429_with_retry_after(make_api_client, settings):
    # given
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    reader = make_api_client("read")

    # when
    statuses = [reader.get("/api/customers", {"email": "a@b.co"}).status_code for _ in range(5)]
    last = reader.get("/api/customers", {"email": "a@b.co"})

    # then
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    problem = assert_problem(last, 429)
    assert problem["code"] == "RATE_LIMITED"
    assert 0 < int(last["Retry-After"]) <= 60


def test_a_revoked_token_is_refused_on_its_next_request(make_api_client):
    reader = make_api_client("read")
    assert reader.get("/api/customers", {"email": "a@b.co"}).status_code == 200

    reader.api_client.revoked_at = "2026-01-01T00:00:00Z"
    reader.api_client.save()

    assert_problem(reader.get("/api/customers", {"email": "a@b.co"}), 401)


def test_check_deploy_passes_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_SECURE": "true",
        "DJANGO_SECRET_KEY": "x7!Vq" + uuid.uuid4().hex + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "orders.example.com",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
