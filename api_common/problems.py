"""RFC 9457 problem details: every API error is application/problem+json with a stable `code`."""

import sys
from typing import Any

import structlog
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from api_common.correlation import current_correlation_id

log = structlog.get_logger(__name__)
PROBLEM_CONTENT_TYPE = "application/problem+json"
# The database refused or dropped the connection (restarting, failing over, unreachable): the request wrote
# nothing, or what it wrote was rolled back with its transaction, so the client sends it again, with the same
# Idempotency-Key, after Retry-After seconds. A command whose commit went through before the connection dropped
# replays its stored response on that retry.
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
DATABASE_RETRY_AFTER_SECONDS = 1
_DATABASE_UNAVAILABLE_DETAIL = "The database is unavailable; nothing was changed. Retry the same request shortly."


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether an exception means the database is away (connection refused, dropped, or unusable)."""
    return isinstance(exc, OperationalError | InterfaceError)


class Problem(exceptions.APIException):
    """An API error with a stable code; raise it from views, or build one from a command's Error."""

    def __init__(
        self,
        *,
        status_code: int,
        code: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.problem_code = code
        self.errors = errors or []
        self.headers = headers or {}


def problem_body(
    *,
    status_code: int,
    code: str,
    detail: str,
    instance: str,
    errors: list[dict[str, str]] | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """The problem document; `correlation_id` is this request's unless given (a replayed answer names its first)."""
    body: dict[str, Any] = {
        "type": f"urn:problem:{code.lower().replace('_', '-')}",
        "title": code.replace("_", " ").capitalize(),
        "status": status_code,
        "code": code,
        "detail": detail,
        "instance": instance,
        "correlation_id": correlation_id or current_correlation_id(),
    }
    if errors:
        body["errors"] = errors
    return body


def problem_response(
    *,
    status_code: int,
    code: str,
    detail: str,
    instance: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    correlation_id: str | None = None,
) -> Response:
    body = problem_body(
        status_code=status_code,
        code=code,
        detail=detail,
        instance=instance,
        errors=errors,
        correlation_id=correlation_id,
    )
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def flatten_validation_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error structure into a flat list of {field, code, message}."""
    if isinstance(detail, dict):
        flat: list[dict[str, str]] = []
        for key, value in detail.items():
            if isinstance(key, int) or str(key).isdigit():
                flat.extend(flatten_validation_errors(value, f"{prefix}[{key}]"))
                continue
            name = str(key) if key != "non_field_errors" else ""
            flat.extend(flatten_validation_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name))
        return flat
    if isinstance(detail, list):
        flat = []
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list)
            flat.extend(flatten_validation_errors(value, f"{prefix}[{index}]" if nested else prefix))
        return flat
    return [{"field": prefix, "code": str(getattr(detail, "code", "invalid")), "message": str(detail)}]


_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "MALFORMED_REQUEST",
    exceptions.NotAuthenticated: "NOT_AUTHENTICATED",
    exceptions.AuthenticationFailed: "NOT_AUTHENTICATED",
    exceptions.PermissionDenied: "FORBIDDEN",
    exceptions.NotFound: "NOT_FOUND",
    exceptions.MethodNotAllowed: "METHOD_NOT_ALLOWED",
    exceptions.NotAcceptable: "NOT_ACCEPTABLE",
    exceptions.UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
    exceptions.Throttled: "RATE_LIMITED",
}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    instance = request.path if request is not None else ""
    if database_unavailable(exc):
        log.warning("database.unavailable", path=instance, error=f"{type(exc).__name__}: {exc}"[:500])
        return problem_response(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            code=DATABASE_UNAVAILABLE,
            detail=_DATABASE_UNAVAILABLE_DETAIL,
            instance=instance,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    headers = {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
    if isinstance(exc, Problem):
        headers.update(exc.headers)
        return problem_response(
            status_code=exc.status_code,
            code=exc.problem_code,
            detail=str(exc.detail),
            instance=instance,
            errors=exc.errors,
            headers=headers,
        )
    if isinstance(exc, exceptions.ValidationError):
        return problem_response(
            status_code=status.HTTP_400_BAD_REQUEST,
            code="VALIDATION_FAILED",
            detail="The request is not valid: see errors for each field at fault.",
            instance=instance,
            errors=flatten_validation_errors(exc.detail),
            headers=headers,
        )
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), str(exc.default_code).upper())
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem_response(
        status_code=response.status_code, code=code, detail=detail, instance=instance, headers=headers
    )


def json_problem_view(status_code: int, code: str, detail: str) -> Any:
    """A plain Django view (for handler404/handler500) that answers a problem document."""

    def view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
        return problem_json(request, status_code=status_code, code=code, detail=detail)

    return view


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500: 503 DATABASE_UNAVAILABLE when the exception being handled is the database going away (outside
    the API's own handler: middleware, the admin, /metrics), else 500 INTERNAL_ERROR."""
    if database_unavailable(sys.exc_info()[1]):
        response = problem_json(
            request, status_code=503, code=DATABASE_UNAVAILABLE, detail=_DATABASE_UNAVAILABLE_DETAIL
        )
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    return problem_json(
        request,
        status_code=500,
        code="INTERNAL_ERROR",
        detail="The server failed; the correlation id identifies the failure.",
    )


def problem_json(request: HttpRequest, *, status_code: int, code: str, detail: str) -> JsonResponse:
    """A problem document outside DRF (plain Django views and middleware)."""
    body = problem_body(status_code=status_code, code=code, detail=detail, instance=request.path)
    response = JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)
    # Middleware that answers early (api_common.limits) runs outside CommonMiddleware, which would set it.
    response["Content-Length"] = str(len(response.content))
    return response
