"""Schemathesis against the live OpenAPI schema: every endpoint and method, zero 5xx, responses conform.

The service runs as pytest-django's live server (PostgreSQL, Redis), with a token holding every scope.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api_common.models import ApiClient

pytestmark = pytest.mark.django_db(transaction=True)
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_server, tmp_path):
    # given: a client with every scope and no practical rate limit
    client = ApiClient(name="schemathesis", scopes=["read", "write", "catalog"], rate_limit_per_minute=10**9)
    token = client.issue_token()
    client.save()
    examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40")

    # when
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(CONFIG),
            "run",
            f"{live_server.url}/api/schema",
            "--header",
            f"Authorization: Token {token}",
            "--checks",
            "all",
            "--max-examples",
            examples,
            "--seed",
            "20261126",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )

    # then
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "ST101" not in result.stdout  # no server error
