"""OpenAPI pieces both APIs share: the token security scheme and the problem+json error schema."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.consistency import LEVEL_HEADER, TOKEN_PATTERN, Consistency
from api_common.problems import PROBLEM_CONTENT_TYPE


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api_common.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`; create one with `manage.py create_api_client NAME --scopes read,write`.",
        }


class FieldErrorSerializer(serializers.Serializer[dict[str, str]]):
    field = serializers.CharField(help_text="The field at fault, dotted, with [i] for list items; empty for the body.")
    code = serializers.CharField()
    message = serializers.CharField()


# RFC 9457 problem details. Built with inline_serializer because a declared field named `errors` would
# shadow Serializer.errors; this serializer only describes responses and never validates anything.
ProblemSerializer = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(help_text="A URN naming the problem type, e.g. urn:problem:email-taken."),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "code": serializers.CharField(help_text="Stable machine-readable code, e.g. EMAIL_TAKEN."),
        "detail": serializers.CharField(),
        "instance": serializers.CharField(),
        "correlation_id": serializers.CharField(allow_null=True),
        "errors": FieldErrorSerializer(many=True, required=False),
    },
)


PROBLEM_DESCRIPTIONS = {
    400: "Invalid input (VALIDATION_FAILED naming each field, MALFORMED_REQUEST, IDEMPOTENCY_KEY_MISSING, "
    "IDEMPOTENCY_KEY_INVALID, CONSISTENCY_TOKEN_INVALID). Nothing was written.",
    401: "Missing, invalid or revoked token (NOT_AUTHENTICATED).",
    403: "The API client lacks the scope (FORBIDDEN).",
    404: "No such resource, the URL's or a command's (CUSTOMER_NOT_FOUND, PRODUCT_NOT_FOUND, ORDER_NOT_FOUND), or "
    "a page past the last (NOT_FOUND).",
    406: "The Accept header names no type this API answers (NOT_ACCEPTABLE); it answers application/json.",
    409: "Conflict: VERSION_CONFLICT, an order state conflict (ORDER_NOT_PENDING, ORDER_ALREADY_CONFIRMED, "
    "ORDER_ALREADY_CANCELLED), or IDEMPOTENCY_IN_PROGRESS (with Retry-After).",
    411: "A body sent without Content-Length (LENGTH_REQUIRED).",
    413: "The body is larger than the limit (BODY_TOO_LARGE).",
    414: "The URL (path and query string) is longer than the limit (URI_TOO_LONG).",
    415: "Unsupported content type (UNSUPPORTED_MEDIA_TYPE); send application/json.",
    422: "A business rule refused the command (a stable code such as EMAIL_TAKEN, SKU_TAKEN, "
    "ORDER_TOTAL_TOO_LARGE, STOCK_LIMIT_EXCEEDED), or IDEMPOTENCY_KEY_REUSED.",
    429: "Too many requests (RATE_LIMITED, with Retry-After).",
    431: "A request header is larger than the limit (HEADER_TOO_LARGE).",
    503: "Try again after Retry-After: the database is unavailable (DATABASE_UNAVAILABLE; nothing was changed, send "
    "the same request with the same Idempotency-Key), or the read model did not catch up in time "
    "(CONSISTENCY_TIMEOUT).",
}
# What any endpoint may answer before its view runs: request limits (api_common.limits and the web server's),
# authentication, scopes, content negotiation, the rate limit, and the database being away.
REFUSED_BEFORE_THE_VIEW = (400, 401, 403, 406, 411, 413, 414, 429, 431, 503)


def problem_responses(*statuses: int, described: dict[int, str] | None = None) -> dict[Any, Any]:
    """Response entries for drf-spectacular, each answered as application/problem+json; `described` overrides the
    common description of a status (the codes one operation answers with it)."""
    descriptions = {**PROBLEM_DESCRIPTIONS, **(described or {})}
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description=descriptions[status])
        for status in statuses
    }


CORRELATION_ID = OpenApiParameter(
    "X-Correlation-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Optional: echoed back and carried by every event and log line of the request. A value that is "
    "not 1-128 of `A-Z a-z 0-9 . _ : -` is replaced by a generated one, never refused.",
)
CORRELATION_ID_ANSWERED = OpenApiParameter(
    "X-Correlation-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=True,
    required=True,
    description="The request's correlation id (the one sent, or a generated one); problem documents carry it too.",
)
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    {"type": "integer", "minimum": 0},
    OpenApiParameter.HEADER,
    response=[429, 503],
    required=True,
    description="Seconds to wait before trying again.",
)
COMMON_PARAMETERS = [CORRELATION_ID, CORRELATION_ID_ANSWERED, RETRY_AFTER]
CONSISTENCY_TOKEN = OpenApiParameter(
    CONSISTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    pattern=TOKEN_PATTERN,
    description="The X-Consistency-Token of a command response: this query then reflects that command.",
)


def level_header(*levels: Consistency) -> OpenApiParameter:
    return OpenApiParameter(
        LEVEL_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200],
        required=True,
        enum=[level.value for level in levels],
        description="The consistency level this answer was served at (docs/consistency.md).",
    )


def forbid_unknown_input_fields(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: command inputs refuse unknown fields, so the schema says so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Input") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


LINKS_EXTENSION = "x-links"


def place_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: OpenAPI links, declared on an operation as
    `extend_schema(extensions={"x-links": {status: {name: link}}})`, moved into the responses they follow."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for status, links in operation.pop(LINKS_EXTENSION, {}).items():
                operation["responses"][str(status)].setdefault("links", {}).update(links)
    return result
