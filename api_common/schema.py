"""OpenAPI pieces both APIs share: the token security scheme and the problem+json error schema."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

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
    400: "Invalid input (VALIDATION_FAILED, MALFORMED_REQUEST, IDEMPOTENCY_KEY_MISSING, IDEMPOTENCY_KEY_INVALID).",
    401: "Missing, invalid or revoked token (NOT_AUTHENTICATED).",
    403: "The API client lacks the scope (FORBIDDEN).",
    404: "No such resource.",
    409: "Conflict: VERSION_CONFLICT, IDEMPOTENCY_IN_PROGRESS (with Retry-After), or an order state conflict.",
    413: "The body is too large.",
    415: "Unsupported content type (UNSUPPORTED_MEDIA_TYPE); send application/json.",
    422: "A business rule refused the command, or IDEMPOTENCY_KEY_REUSED.",
    429: "Too many requests (RATE_LIMITED, with Retry-After).",
    503: "The read model did not catch up with the consistency token in time (with Retry-After).",
}


def problem_responses(*statuses: int, described: dict[int, str] | None = None) -> dict[Any, Any]:
    """Response entries for drf-spectacular, each answered as application/problem+json; `described` overrides the
    common description of a status (the codes one operation answers with it)."""
    descriptions = {**PROBLEM_DESCRIPTIONS, **(described or {})}
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description=descriptions[status])
        for status in statuses
    }


def forbid_unknown_input_fields(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: command inputs refuse unknown fields, so the schema says so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Input") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
