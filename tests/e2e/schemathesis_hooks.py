"""Schemathesis hooks (schemathesis.toml names this module): values of the two headers whose validity no schema
can state, filled in as a correct client fills them in.

- Idempotency-Key: a client sends a fresh UUID for each intended effect (docs/idempotency.md). Generated keys
  shrink to a few fixed UUIDs, so different bodies would share a key and rightly get 422
  IDEMPOTENCY_KEY_REUSED; a schema-valid key becomes a fresh UUID here. Invalid keys are left as generated.
- X-Consistency-Token: only a token this service signed is valid. A generated value of the token's form is
  replaced by a real one (SCHEMATHESIS_CONSISTENCY_TOKEN, issued by the test); values of another form are left
  as generated, and tokens that links carry from a command's response are real already.

- A webhook endpoint's `url`: a generated host would be a real name or address off this machine, and a delivery to
  it real traffic (DNS included). Every URL generated to be accepted is made one on loopback, which the service
  refuses (422 WEBHOOK_URL_NOT_PUBLIC; tests/integration/test_webhook_endpoints.py covers registering).

Only cases generated to be accepted are changed.
"""

import os
import re
import uuid
from typing import Any

import schemathesis

TOKEN_FORM = re.compile(r"^[A-Za-z0-9_-]+:[A-Za-z0-9]+:[A-Za-z0-9_-]{43}$")
CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# Tokens the service answered with: a link that carries one must keep it.
issued: set[str] = set()


def is_real_token(value: str) -> bool:
    return value == os.environ.get("SCHEMATHESIS_CONSISTENCY_TOKEN") or value in issued


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    for name, values in response.headers.items():
        if name.lower() == "x-consistency-token":
            issued.update([values] if isinstance(values, str) else values)


def _negative(case: Any) -> bool:
    """A case meant to be refused is sent as generated: its refusal comes before any key or token is used, and
    changing it would turn it into a positive case (a missing Authorization header would then be filled in)."""
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_negative


# map_case, not map_headers: every phase applies it (the coverage phase applies no per-part hooks).
@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if _negative(case):
        return case
    if isinstance(case.body, dict) and isinstance(case.body.get("url"), str):
        case.body = {**case.body, "url": f"https://127.0.0.1/{uuid.uuid4()}"}
    if not case.headers:
        return case
    # A new mapping of the same kind: the coverage phase does not see changes made to the generated one in place.
    headers = type(case.headers)(case.headers)
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and CANONICAL_UUID.search(key):
        headers["Idempotency-Key"] = str(uuid.uuid4())
    token = headers.get("X-Consistency-Token")
    if isinstance(token, str) and TOKEN_FORM.search(token) and not is_real_token(token):
        headers["X-Consistency-Token"] = os.environ["SCHEMATHESIS_CONSISTENCY_TOKEN"]
    case.headers = headers
    return case
