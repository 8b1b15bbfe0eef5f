"""Command endpoints: one thin view per command (input serializer -> command -> mediator -> outcome)."""

from typing import ClassVar
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.correlation import current_correlation_id, new_correlation_id
from api_common.models import ApiClient
from api_common.problems import PROBLEM_CONTENT_TYPE, Problem, problem_response
from api_common.schema import problem_responses
from commands_app.api.serializers import CommandInput
from commands_app.bootstrap import COMMANDS
from commands_app.mediator import CommandContext, CommandOutcome, process_mediator

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    required=True,
    description="A UUID chosen by the client; retries with the same key and body return the first response.",
)


def idempotency_key(request: Request) -> UUID:
    raw = request.headers.get("Idempotency-Key")
    if not raw:
        raise Problem(
            status_code=400, code="IDEMPOTENCY_KEY_MISSING", detail="Send an Idempotency-Key header (a UUID)."
        )
    try:
        return UUID(raw)
    except ValueError:
        raise Problem(
            status_code=400, code="IDEMPOTENCY_KEY_INVALID", detail="Idempotency-Key must be a UUID."
        ) from None


def command_context(request: Request) -> CommandContext:
    client = request.user
    assert isinstance(client, ApiClient)
    return CommandContext(
        client_id=str(client.id),
        scopes=frozenset(client.scopes),
        correlation_id=current_correlation_id() or new_correlation_id(),
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
        )
    return Response(outcome.body, status=outcome.status_code, headers=outcome.headers)


PROBLEM_EXAMPLE = {
    "type": "urn:problem:validation-failed",
    "title": "Validation failed",
    "status": 400,
    "code": "VALIDATION_FAILED",
    "detail": "The request body is not valid.",
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
        description="Send it back on a query to read this write (the query waits until the read model has it).",
    )


CORRELATION_ID = OpenApiParameter(
    "X-Correlation-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Optional; generated when absent, echoed back, and carried by every event and log line.",
)


class CommandView(APIView):
    """POST the input serializer's command through the mediator; one subclass per route (command_view())."""

    input_serializer: ClassVar[type[CommandInput]]

    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        command = serializer.to_command(key)
        return to_response(process_mediator().send(command, command_context(request)), request)


def command_view(input_serializer: type[CommandInput]) -> type[CommandView]:
    """The endpoint of one command, documented from its input serializer and its registration's status."""
    success_status = COMMANDS[input_serializer.command].success_status
    schema = extend_schema(
        summary=input_serializer.summary,
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
        parameters=[IDEMPOTENCY_KEY, CORRELATION_ID, consistency_token(success_status)],
        responses={
            success_status: OpenApiResponse(
                input_serializer.output,
                description=f"Applied. The {CONSISTENCY_HEADER} header lets a query read this write.",
            ),
            **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
        },
        tags=["commands"],
    )

    class View(CommandView):
        @schema
        def post(self, request: Request) -> Response:
            return super().post(request)

    View.input_serializer = input_serializer
    View.__name__ = View.__qualname__ = input_serializer.command.__name__ + "View"
    return View
