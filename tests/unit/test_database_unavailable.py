"""The database going away is a 503 problem the client retries, never a 500: in the API and outside it."""

import json

from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from api_common.problems import problem_exception_handler, server_error


def handled_outside_the_api(error: Exception):
    request = RequestFactory().get("/metrics")
    try:
        raise error
    except Exception:
        return server_error(request)  # as Django calls handler500, while handling the exception


def test_a_database_error_in_a_view_is_503_database_unavailable_with_retry_after():
    response = problem_exception_handler(OperationalError("connection refused"), {"request": None})

    assert response is not None
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response["Retry-After"] == "1"
    assert response.data["code"] == "DATABASE_UNAVAILABLE"


def test_outside_the_api_a_lost_connection_is_503_too_and_any_other_failure_500():
    away = handled_outside_the_api(InterfaceError("connection already closed"))
    broken = handled_outside_the_api(ValueError("a bug"))

    assert (away.status_code, away["Retry-After"], json.loads(away.content)["code"]) == (
        503,
        "1",
        "DATABASE_UNAVAILABLE",
    )
    assert (broken.status_code, json.loads(broken.content)["code"]) == (500, "INTERNAL_ERROR")
    assert not broken.has_header("Retry-After")
