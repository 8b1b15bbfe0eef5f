"""Fixtures shared by every tier: API clients with tokens, and waiting for asynchronous effects."""

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from api_common.models import ApiClient

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll until probe() returns something truthy; fail with the last value after the timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


@pytest.fixture(scope="session", autouse=True)
def static_files_by_their_own_names(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """In the test process, templates link static files by their own names, with no collectstatic first.

    The production storage (hashed names from the manifest that collectstatic writes) is tested as deployed:
    tests/e2e/test_production_profile.py collects the files and serves them with gunicorn.
    """
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages, STATIC_ROOT=tmp_path_factory.mktemp("static")):
        yield


@pytest.fixture
def make_api_client() -> Callable[..., APIClient]:
    """An HTTP test client authenticated as a new API client with the given scopes."""

    def make(*scopes: str, name: str | None = None) -> APIClient:
        record = ApiClient(name=name or f"client-{uuid.uuid4().hex[:8]}", scopes=list(scopes))
        token = record.issue_token()
        record.save()
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        http.api_client = record  # type: ignore[attr-defined]
        return http

    return make


@pytest.fixture
def writer(db: Any, make_api_client: Callable[..., APIClient]) -> APIClient:
    return make_api_client("read", "write")


def command(http: APIClient, name: str, body: Any, *, key: str | None = None, **headers: Any) -> Any:
    """POST a command with a fresh (or the given) Idempotency-Key."""
    return http.post(
        f"/api/commands/{name}",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()),
        **headers,
    )
