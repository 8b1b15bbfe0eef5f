"""Correlation ids: taken from X-Correlation-ID (or generated), bound to every log line, echoed back."""

import re
from collections.abc import Callable
from contextvars import ContextVar

import structlog
from django.http import HttpRequest, HttpResponse
from uuid_utils.compat import uuid7

HEADER = "X-Correlation-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _current.get()


def new_correlation_id() -> str:
    return str(uuid7())


class CorrelationIdMiddleware:
    """Outermost middleware: one correlation id per request, invalid incoming ids are replaced."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(HEADER, "")
        correlation_id = incoming if _VALID.match(incoming) else new_correlation_id()
        token = _current.set(correlation_id)
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id")
            _current.reset(token)
        response[HEADER] = correlation_id
        return response
