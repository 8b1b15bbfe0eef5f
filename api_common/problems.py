"""RFC 9457 problem details: every API error is application/problem+json with a stable `code`."""

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from api_common.correlation import current_correlation_id

PROBLEM_CONTENT_TYPE = "application/problem+json"


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
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    request = context.get("request")
    instance = request.path if request is not None else ""
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


def problem_json(request: HttpRequest, *, status_code: int, code: str, detail: str) -> JsonResponse:
    """A problem document outside DRF (plain Django views and middleware)."""
    body = problem_body(status_code=status_code, code=code, detail=detail, instance=request.path)
    response = JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)
    # Middleware that answers early (api_common.limits) runs outside CommonMiddleware, which would set it.
    response["Content-Length"] = str(len(response.content))
    return response
