"""Request limits that protect the service before any view runs: URL length, body size, header size, JSON depth.

The web server has limits of its own, past these (config/gunicorn.py); gunicorn's answers are problem
documents too (config/gunicorn_worker.py).
"""

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _problem(request: HttpRequest, status: int, code: str, detail: str) -> JsonResponse:
    # Imported here: api_common.problems imports DRF's views, which load this module's parser class.
    from api_common.problems import problem_json

    return problem_json(request, status_code=status, code=code, detail=detail)


class RequestLimitsMiddleware:
    """431 for a huge header, 414 for a URL over API_MAX_URL_BYTES, 413 for a body over API_MAX_BODY_BYTES, 411 for
    a body of unknown length."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for name, value in request.META.items():
            if name.startswith("HTTP_") and len(value) > settings.API_MAX_HEADER_BYTES:
                return _problem(request, 431, "HEADER_TOO_LARGE", f"The {name[5:]} header is too large.")
        url_bytes = len(request.get_full_path())
        if url_bytes > settings.API_MAX_URL_BYTES:
            detail = f"The URL is {url_bytes} bytes; the limit is {settings.API_MAX_URL_BYTES}."
            return _problem(request, 414, "URI_TOO_LONG", detail)
        length = request.META.get("CONTENT_LENGTH") or ""
        if request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" and not length:
            return _problem(request, 411, "LENGTH_REQUIRED", "Send a Content-Length with the body.")
        try:
            size = int(length) if length else 0
        except ValueError:
            return _problem(request, 400, "MALFORMED_REQUEST", "Content-Length is not a number.")
        if size > settings.API_MAX_BODY_BYTES:
            return _problem(
                request, 413, "BODY_TOO_LARGE", f"The body is {size} bytes; the limit is {settings.API_MAX_BODY_BYTES}."
            )
        return self.get_response(request)


class DepthLimitedJSONParser(JSONParser):
    """JSON that nests deeper than API_MAX_JSON_DEPTH is refused before it is parsed (no RecursionError)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ParseError("The body is not valid UTF-8.") from error
        if _max_depth(text) > settings.API_MAX_JSON_DEPTH:
            raise ParseError(f"JSON nests deeper than {settings.API_MAX_JSON_DEPTH} levels.")
        if "\x00" in text:
            raise ParseError("NUL characters are not allowed.")
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except ValueError as error:
            raise ParseError(f"Malformed JSON: {error}") from error


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _max_depth(text: str) -> int:
    """The deepest bracket nesting, skipping strings; linear and allocation-free."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
