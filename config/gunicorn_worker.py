"""gunicorn's threaded worker, answering the requests gunicorn refuses itself as problem documents.

gunicorn reads the request line and headers before Django sees the request, and refuses one past its limits
(limit_request_line, limit_request_field_size) or one it cannot parse with a small HTML page. Every error of
this API is application/problem+json with a stable code, so this worker answers those refusals the same way;
any other error keeps gunicorn's own handling.
"""

import json
from typing import Any

from gunicorn import util
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ObsoleteFolding,
)
from gunicorn.workers.gthread import ThreadWorker

MALFORMED = (
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidHTTPVersion,
    InvalidHeader,
    InvalidHeaderName,
    ObsoleteFolding,
    InvalidChunkSize,
    ChunkMissingTerminator,
    InvalidChunkExtension,
)
REASONS = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def refusal(error: Exception) -> tuple[int, str, str] | None:
    """(status, code, detail) for a request gunicorn refused as a client's error, or None for anything else."""
    if isinstance(error, LimitRequestLine):
        return 414, "URI_TOO_LONG", "The request line (method, path and query string) is too long."
    if isinstance(error, LimitRequestHeaders):
        return 431, "HEADER_TOO_LARGE", "A request header, or the number of them, is over the limit."
    if isinstance(error, MALFORMED) and not isinstance(error, InvalidResponseHeader | InvalidResponseHeaderName):
        return 400, "MALFORMED_REQUEST", "The request is not valid HTTP/1.1."
    return None


def problem_response(status: int, code: str, detail: str) -> bytes:
    # Imported here: gunicorn's master loads this class before the application has set Django up.
    from api_common.correlation import HEADER as CORRELATION_HEADER
    from api_common.correlation import new_correlation_id
    from api_common.problems import PROBLEM_CONTENT_TYPE, problem_body

    correlation_id = new_correlation_id()
    body = problem_body(status_code=status, code=code, detail=detail, instance="")
    body["correlation_id"] = correlation_id
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"{CORRELATION_HEADER}: {correlation_id}\r\n\r\n"
    )
    return head.encode("latin-1") + payload


class ProblemThreadWorker(ThreadWorker):
    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        refused = refusal(exc)
        if refused is None:
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            util.write_nonblock(client, problem_response(*refused))
        except Exception:
            self.log.debug("Failed to send the problem document.")
