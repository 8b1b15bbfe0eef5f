"""Command endpoints: thin views (input serializer -> mediator -> outcome), one per command."""

from collections.abc import Callable
from typing import Any, ClassVar
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
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
from commands_app import commands
from commands_app.api import serializers as io
from commands_app.bootstrap import mediator
from commands_app.domain.limits import MAX_LINE_QUANTITY, MAX_MONEY, MAX_STOCK
from commands_app.mediator import CommandContext, CommandOutcome
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
    input_serializer: ClassVar[type[serializers.Serializer[Any]]]
    build_command: ClassVar[Callable[..., commands.Command]]

    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        command = type(self).build_command(idempotency_key=key, **serializer.validated_data)
        return to_response(mediator().send(command, command_context(request)), request)


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
CUSTOMER_ID = "01a21810-7325-7691-b3c9-f11ffa325cc4"
ORDER_ID = "01a21811-02aa-7c41-9d0b-5b8c3e7f6a10"


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


def read_link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """A link to a query, carrying the command's consistency token so that the query reads this write."""
    return {
        "operationId": operation_id,
        "description": description,
        "parameters": {**parameters, f"header.{CONSISTENCY_HEADER}": f"$response.header.{CONSISTENCY_HEADER}"},
    }


def command_link(operation_id: str, description: str, **body: str) -> dict[str, Any]:
    """A link to another command, with the body fields this command's result gives it."""
    return {"operationId": operation_id, "description": description, "requestBody": body}


CUSTOMER_LINKS = {
    "GetCustomer": read_link(
        "customers_retrieve", "The customer, as the read model has it.", customer_id="$response.body#/customer_id"
    ),
    "ListOrdersOfCustomer": read_link(
        "orders_list", "The customer's orders.", customer_id="$response.body#/customer_id"
    ),
}
PRODUCT_LINKS = {
    "GetProduct": read_link("products_retrieve", "The product in the catalog.", sku="$response.body#/sku"),
}
ORDER_LINKS = {
    "GetOrder": read_link(
        "orders_retrieve", "The order with its status and timeline.", order_id="$response.body#/order_id"
    ),
}


def command_schema(
    input_serializer: Any,
    output_serializer: Any,
    success_status: int,
    summary: str,
    *,
    example: dict[str, Any],
    answer: dict[str, Any],
    links: dict[str, dict[str, Any]],
    description: str = "",
) -> Any:
    return extend_schema(
        summary=summary,
        description=description,
        request=input_serializer,
        examples=[
            OpenApiExample("request", value=example, request_only=True),
            OpenApiExample("response", value=answer, response_only=True, status_codes=[success_status]),
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
                output_serializer,
                description=f"Applied. The {CONSISTENCY_HEADER} header lets a query read this write.",
            ),
            **problem_responses(*REFUSED_BEFORE_THE_VIEW, 404, 409, 415, 422),
        },
        extensions={LINKS_EXTENSION: {success_status: links}},
        tags=["commands"],
    )


class RegisterCustomerView(CommandView):
    input_serializer = io.RegisterCustomerInput
    build_command = commands.RegisterCustomer

    @command_schema(
        io.RegisterCustomerInput,
        io.CustomerVersionOutput,
        201,
        "Register a customer",
        example={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        answer={"customer_id": CUSTOMER_ID, "version": 1},
        links={
            **CUSTOMER_LINKS,
            "ChangeEmail": command_link(
                "commands_change_customer_email_create",
                "Change this customer's email.",
                customer_id="$response.body#/customer_id",
            ),
            "PlaceOrder": command_link(
                "commands_place_order_create",
                "Place an order for this customer.",
                customer_id="$response.body#/customer_id",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class ChangeCustomerEmailView(CommandView):
    input_serializer = io.ChangeCustomerEmailInput
    build_command = commands.ChangeCustomerEmail

    @command_schema(
        io.ChangeCustomerEmailInput,
        io.CustomerVersionOutput,
        200,
        "Change a customer's email",
        example={"customer_id": CUSTOMER_ID, "email": "ada@lovelace.org", "expected_version": 1},
        answer={"customer_id": CUSTOMER_ID, "version": 2},
        links=CUSTOMER_LINKS,
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class AddProductView(CommandView):
    input_serializer = io.AddProductInput
    build_command = commands.AddProduct

    @command_schema(
        io.AddProductInput,
        io.ProductVersionOutput,
        201,
        "Add a product (scope: catalog)",
        example={"sku": "LAMP-1", "name": "Desk lamp", "description": "Warm light.", "price": "19.90", "stock": 25},
        answer={"sku": "LAMP-1", "version": 1},
        links={
            **PRODUCT_LINKS,
            "Restock": command_link(
                "commands_restock_product_create", "Restock this product.", sku="$response.body#/sku"
            ),
            "ChangePrice": command_link(
                "commands_change_product_price_create", "Change this product's price.", sku="$response.body#/sku"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class RestockProductView(CommandView):
    input_serializer = io.RestockProductInput
    build_command = commands.RestockProduct

    @command_schema(
        io.RestockProductInput,
        io.ProductVersionOutput,
        200,
        "Restock a product (scope: catalog)",
        example={"sku": "LAMP-1", "quantity": 10, "expected_version": 1},
        answer={"sku": "LAMP-1", "version": 2},
        links=PRODUCT_LINKS,
        description=f"A product takes in at most {MAX_STOCK} units over its life, opening stock included "
        "(422 STOCK_LIMIT_EXCEEDED).",
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class ChangeProductPriceView(CommandView):
    input_serializer = io.ChangeProductPriceInput
    build_command = commands.ChangeProductPrice

    @command_schema(
        io.ChangeProductPriceInput,
        io.ProductVersionOutput,
        200,
        "Change a price (scope: catalog)",
        example={"sku": "LAMP-1", "price": "17.50"},
        answer={"sku": "LAMP-1", "version": 3},
        links=PRODUCT_LINKS,
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


def build_place_order(*, idempotency_key: UUID, lines: list[dict[str, Any]], **fields: Any) -> commands.Command:
    requested = tuple(commands.OrderLineRequest(sku=line["sku"], quantity=line["quantity"]) for line in lines)
    return commands.PlaceOrder(idempotency_key=idempotency_key, lines=requested, **fields)


class PlaceOrderView(CommandView):
    input_serializer = io.PlaceOrderInput
    build_command = build_place_order

    @command_schema(
        io.PlaceOrderInput,
        io.OrderAcceptedOutput,
        202,
        "Place an order (fulfilment continues in a saga)",
        example={"customer_id": CUSTOMER_ID, "lines": [{"sku": "LAMP-1", "quantity": 2}], "payment_token": "tok_ok"},
        answer={"order_id": ORDER_ID, "status": "pending"},
        links={
            **ORDER_LINKS,
            "Cancel": command_link(
                "commands_cancel_order_create", "Cancel this order.", order_id="$response.body#/order_id"
            ),
        },
        description="Lines naming one sku count as one line. Business rules (422): the customer and every sku "
        f"must exist (UNKNOWN_CUSTOMER, UNKNOWN_PRODUCT), at most {MAX_LINE_QUANTITY} units of one sku "
        f"(QUANTITY_TOO_LARGE), and the total at today's prices at most {MAX_MONEY} (ORDER_TOTAL_TOO_LARGE).",
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


def build_cancel_order(*, idempotency_key: UUID, order_id: UUID, reason: str) -> commands.Command:
    return commands.CancelOrder(
        idempotency_key=idempotency_key, order_id=order_id, reason="customer_request", note=reason
    )


class CancelOrderView(CommandView):
    input_serializer = io.CancelOrderInput
    build_command = build_cancel_order

    @command_schema(
        io.CancelOrderInput,
        io.OrderAcceptedOutput,
        202,
        "Cancel an order not yet confirmed",
        example={"order_id": ORDER_ID, "reason": "Ordered the wrong colour."},
        answer={"order_id": ORDER_ID, "status": "cancelled"},
        links=ORDER_LINKS,
    )
    def post(self, request: Request) -> Response:
        return super().post(request)
