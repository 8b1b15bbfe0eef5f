"""Output serializers of the read models, and the inputs of the list queries. Money is a decimal string."""

from typing import Any

from rest_framework import serializers

from api_common.json_fields import StrictUUIDField
from api_common.serializers import QueryInput, QueryIntegerField
from queries_app.models import CustomerReadModel, OrderReadModel, ProductReadModel

MAX_PAGE_SIZE = 200
# The write side's sku rule, as a separate service would keep its own copy of it.
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class PageInput(QueryInput):
    """The pagination parameters of a list: validated here, so a bad one is a 400 naming it (a page past the last
    is 404)."""

    page = QueryIntegerField(min_value=1, max_value=2**31 - 1, required=False, help_text="From 1.")
    page_size = QueryIntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False, help_text="50 by default.")


class CustomerOutput(serializers.ModelSerializer[CustomerReadModel]):
    id = serializers.UUIDField(source="customer_id")
    lifetime_value = serializers.DecimalField(max_digits=20, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = CustomerReadModel
        fields = [
            "id",
            "first_name",
            "last_name",
            "email",
            "orders_count",
            "lifetime_value",
            "last_order_at",
            "version",
        ]


class CustomerQueryInput(PageInput):
    email = serializers.EmailField(max_length=254)


class OrderCustomerOutput(serializers.Serializer[OrderReadModel]):
    id = serializers.UUIDField(source="customer_id")
    first_name = serializers.CharField(source="customer_first_name")
    last_name = serializers.CharField(source="customer_last_name")
    email = serializers.CharField(source="customer_email")


class StoredRows(serializers.ListSerializer[dict[str, Any]]):
    """A list stored in its output's own shape (a JSON column of flat objects: an order's lines, its timeline),
    rendered by each declared field's own to_representation without DRF's lookup machinery per field and row, which
    cost more than a page's reads (docs/benchmarks.md, "Measured choices in the code"). A missing key raises, as
    DRF's lookup does for a required field."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        fields = [(field.field_name, field.to_representation) for field in self.child._readable_fields]  # type: ignore[union-attr]
        return [
            {name: None if (value := row[name]) is None else render(value) for name, render in fields} for row in data
        ]


class OrderLineOutput(serializers.Serializer[dict[str, Any]]):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.CharField(help_text="Decimal string, e.g. 19.90")
    line_total = serializers.CharField(help_text="Decimal string, e.g. 39.80")

    class Meta:
        list_serializer_class = StoredRows


class TimelineEntryOutput(serializers.Serializer[dict[str, Any]]):
    at = serializers.CharField(help_text="When the event occurred (ISO 8601)")
    event = serializers.CharField()
    detail = serializers.CharField()

    class Meta:
        list_serializer_class = StoredRows


class OrderOutput(serializers.ModelSerializer[OrderReadModel]):
    id = serializers.UUIDField(source="order_id")
    customer = OrderCustomerOutput(source="*")
    lines = OrderLineOutput(many=True)
    total = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    timeline = TimelineEntryOutput(many=True)
    cancellation_reason = serializers.SerializerMethodField()

    class Meta:
        model = OrderReadModel
        fields = [
            "id",
            "status",
            "total",
            "lines",
            "customer",
            "cancellation_reason",
            "payment_status",
            "placed_at",
            "timeline",
            "version",
        ]

    def get_cancellation_reason(self, order: OrderReadModel) -> str | None:
        return order.cancellation_reason or None


class OrderQueryInput(PageInput):
    customer_id = StrictUUIDField()
    status = serializers.ChoiceField(choices=OrderReadModel.Status.choices, required=False)


class ProductOutput(serializers.ModelSerializer[ProductReadModel]):
    price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = ProductReadModel
        fields = ["sku", "name", "description", "price", "available", "version"]


class ProductQueryInput(PageInput):
    # Omitted for the whole catalog; given, at least one character and no NUL (PostgreSQL text cannot hold one),
    # searched as sent (a trimmed value could be empty although the schema allows it).
    search = serializers.RegexField(r"^[^\x00]*$", min_length=1, max_length=200, required=False, trim_whitespace=False)


class BestSellerOutput(serializers.Serializer[dict[str, Any]]):
    sku = serializers.CharField()
    name = serializers.CharField()
    units_sold = serializers.IntegerField()


class BestSellersQueryInput(QueryInput):
    limit = QueryIntegerField(min_value=1, max_value=100, default=10)


def paginated(serializer: type[serializers.Serializer[Any]]) -> type[serializers.Serializer[Any]]:
    """The schema of a page of `serializer` rows, as the Pagination class answers it."""
    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer(many=True),
    }
    return type(f"Paginated{serializer.__name__}", (serializers.Serializer,), fields)


class BestSellersOutput(serializers.Serializer[dict[str, Any]]):
    results = BestSellerOutput(many=True)
