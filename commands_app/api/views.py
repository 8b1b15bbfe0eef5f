"""Command endpoints: one thin view per command (input serializer -> command -> mediator -> outcome)."""

from typing import ClassVar
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.consistency import TOKEN_PATTERN
from api_common.correlation import current_correlation_id, new_correlation_id
from api_common.json_fields import UUID_PATTERN, is_canonical_uuid
from api_common.models import ApiClient
from api_common.problems import PROBLEM_CONTENT_TYPE, Problem, problem_response
from api_common.schema import COMMON_PARAMETERS, LINKS_EXTENSION, REFUSED_BEFORE_THE_VIEW, problem_responses
from commands_app.api.serializers import CommandInput
from commands_app.bootstrap import COMMANDS
from commands_app.mediator import CommandContext, CommandOutcome, process_mediator
from commands_app.middleware.idempotency import REPLAYED_HEADER

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    required=True,
    pattern=UUID_PATTERN,
    description="A fresh UUID for each intended effect, chosen by the client. A retry with the same key and body "
    "gets the first response to that key again (Idempotent-Replayed: true); the same key with another body is "
    "422 IDEMPOTENCY_KEY_REUSED. See docs/idempotency.md.",
)


def idempotency_key(request: Request) -> UUID:
    raw = request.headers.get("Idempotency-Key")
    if not raw:
        raise Problem(
            status_code=400, code="IDEMPOTENCY_KEY_MISSING", detail="Send an Idempotency-Key header (a UUID)."
        )
    if not is_canonical_uuid(raw):
        raise Problem(
            status_code=400,
            code="IDEMPOTENCY_KEY_INVALID",
            detail="Idempotency-Key must be a UUID (8-4-4-4-12 hex digits).",
        )
    return UUID(raw)


def command_context(request: Request) -> CommandContext:
    client = request.user
    assert isinstance(client, ApiClient)
    return CommandContext(
        client_id=str(client.id),
        scopes=frozenset(client.scopes),
        correlation_id=current_correlation_id() or new_correlation_id(),
        keeps_business_errors=True,
    )


def to_response(outcome: CommandOutcome, request: Request) -> Response:
    if outcome.error is not None:
        errors = []
        if "field" in outcome.error.details:
            errors.append(
                {
                    "field": str(outcome.error.details["field"]),
                    "code": outcome.error.code,
                    "message": outcome.error.message,
                }
            )
        return problem_response(
            status_code=outcome.status_code,
            code=outcome.error.code,
            detail=outcome.error.message,
            instance=request.path,
            errors=errors,
            headers=outcome.headers,
            correlation_id=outcome.correlation_id,
        )
    return Response(outcome.body, status=outcome.status_code, headers=outcome.headers)


class CommandView(APIView):
    """POST the input serializer's command through the mediator; one subclass per route (command_view())."""

    input_serializer: ClassVar[type[CommandInput]]

    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        command = serializer.to_command(key)
        return to_response(process_mediator().send(command, command_context(request)), request)


PROBLEM_EXAMPLE = {
    "type": "urn:problem:validation-failed",
    "title": "Validation failed",
    "status": 400,
    "code": "VALIDATION_FAILED",
    "detail": "The request is not valid: see errors for each field at fault.",
    "instance": "/api/commands/place-order",
    "correlation_id": "01a21810-72eb-747a-a14c-1ed5a8290f02",
    "errors": [{"field": "lines[0].quantity", "code": "min_value", "message": "Ensure this value is >= 1."}],
}


def consistency_token(success_status: int) -> OpenApiParameter:
    return OpenApiParameter(
        CONSISTENCY_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[success_status],
        required=True,
        pattern=TOKEN_PATTERN,
        description="Send it back on a query to read this write (the query waits until the read model has it).",
    )


def replayed(success_status: int) -> OpenApiParameter:
    return OpenApiParameter(
        REPLAYED_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[success_status, 404, 409, 422],
        enum=["true"],
        description="Present on a replay: the stored first response to this Idempotency-Key (docs/idempotency.md).",
    )


def command_view(input_serializer: type[CommandInput]) -> type[CommandView]:
    """The endpoint of one command, documented from its input serializer and its registration's status."""
    success_status = COMMANDS[input_serializer.command].success_status
    schema = extend_schema(
        summary=input_serializer.summary,
        description=input_serializer.operation_description,
        request=input_serializer,
        examples=[
            OpenApiExample("request", value=input_serializer.example, request_only=True),
            OpenApiExample(
                "response", value=input_serializer.answer, response_only=True, status_codes=[success_status]
            ),
            OpenApiExample(
                "validation problem",
                value=PROBLEM_EXAMPLE,
                response_only=True,
                status_codes=[400],
                media_type=PROBLEM_CONTENT_TYPE,
            ),
        ],
        parameters=[
            IDEMPOTENCY_KEY,
            *COMMON_PARAMETERS,
            consistency_token(success_status),
            replayed(success_status),
        ],
        responses={
            success_status: OpenApiResponse(
                input_serializer.output,
                description=f"Applied. The {CONSISTENCY_HEADER} header lets a query read this write.",
            ),
            **problem_responses(*REFUSED_BEFORE_THE_VIEW, 404, 409, 415, 422),
        },
        extensions={LINKS_EXTENSION: {success_status: input_serializer.links}},
        tags=["commands"],
    )

    class View(CommandView):
        @schema
        def post(self, request: Request) -> Response:
            return super().post(request)

    View.input_serializer = input_serializer
    View.__name__ = View.__qualname__ = input_serializer.command.__name__ + "View"
    return View
