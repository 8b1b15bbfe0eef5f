"""Command endpoints: thin views (input serializer -> mediator -> outcome), one per command."""

from collections.abc import Callable
from typing import Any, ClassVar
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.correlation import current_correlation_id, new_correlation_id
from api_common.models import ApiClient
from api_common.problems import Problem, problem_response
from api_common.schema import problem_responses
from commands_app import commands
from commands_app.api import serializers as io
from commands_app.bootstrap import mediator
from commands_app.mediator import CommandContext, CommandOutcome

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


class CommandView(APIView):
    input_serializer: ClassVar[type[serializers.Serializer[Any]]]
    build_command: ClassVar[Callable[..., commands.Command]]

    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        command = type(self).build_command(idempotency_key=key, **serializer.validated_data)
        return to_response(mediator().send(command, command_context(request)), request)


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


def command_schema(input_serializer: Any, output_serializer: Any, success_status: int, summary: str) -> Any:
    return extend_schema(
        summary=summary,
        request=input_serializer,
        parameters=[IDEMPOTENCY_KEY, CORRELATION_ID, consistency_token(success_status)],
        responses={
            success_status: OpenApiResponse(
                output_serializer,
                description=f"Applied. The {CONSISTENCY_HEADER} header lets a query read this write.",
            ),
            **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
        },
        tags=["commands"],
    )


class RegisterCustomerView(CommandView):
    input_serializer = io.RegisterCustomerInput
    build_command = commands.RegisterCustomer

    @command_schema(io.RegisterCustomerInput, io.CustomerVersionOutput, 201, "Register a customer")
    def post(self, request: Request) -> Response:
        return super().post(request)


class ChangeCustomerEmailView(CommandView):
    input_serializer = io.ChangeCustomerEmailInput
    build_command = commands.ChangeCustomerEmail

    @command_schema(io.ChangeCustomerEmailInput, io.CustomerVersionOutput, 200, "Change a customer's email")
    def post(self, request: Request) -> Response:
        return super().post(request)


class AddProductView(CommandView):
    input_serializer = io.AddProductInput
    build_command = commands.AddProduct

    @command_schema(io.AddProductInput, io.ProductVersionOutput, 201, "Add a product (scope: catalog)")
    def post(self, request: Request) -> Response:
        return super().post(request)


class RestockProductView(CommandView):
    input_serializer = io.RestockProductInput
    build_command = commands.RestockProduct

    @command_schema(io.RestockProductInput, io.ProductVersionOutput, 200, "Restock a product (scope: catalog)")
    def post(self, request: Request) -> Response:
        return super().post(request)


class ChangeProductPriceView(CommandView):
    input_serializer = io.ChangeProductPriceInput
    build_command = commands.ChangeProductPrice

    @command_schema(io.ChangeProductPriceInput, io.ProductVersionOutput, 200, "Change a price (scope: catalog)")
    def post(self, request: Request) -> Response:
        return super().post(request)


def build_place_order(*, idempotency_key: UUID, lines: list[dict[str, Any]], **fields: Any) -> commands.Command:
    requested = tuple(commands.OrderLineRequest(sku=line["sku"], quantity=line["quantity"]) for line in lines)
    return commands.PlaceOrder(idempotency_key=idempotency_key, lines=requested, **fields)


class PlaceOrderView(CommandView):
    input_serializer = io.PlaceOrderInput
    build_command = build_place_order

    @command_schema(io.PlaceOrderInput, io.OrderAcceptedOutput, 202, "Place an order (fulfilment continues in a saga)")
    def post(self, request: Request) -> Response:
        return super().post(request)


def build_cancel_order(*, idempotency_key: UUID, order_id: UUID, reason: str) -> commands.Command:
    return commands.CancelOrder(
        idempotency_key=idempotency_key, order_id=order_id, reason="customer_request", note=reason
    )


class CancelOrderView(CommandView):
    input_serializer = io.CancelOrderInput
    build_command = build_cancel_order

    @command_schema(io.CancelOrderInput, io.OrderAcceptedOutput, 202, "Cancel an order not yet confirmed")
    def post(self, request: Request) -> Response:
        return super().post(request)
