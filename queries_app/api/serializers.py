"""Output serializers of the read models, and the inputs of the list queries. Money is a decimal string."""

from typing import Any

from rest_framework import serializers

from api_common.json_fields import StrictUUIDField
from queries_app.models import CustomerView, OrderView, ProductView

MAX_PAGE_SIZE = 200
# The write side's sku rule, as a separate service would keep its own copy of it.
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class QueryIntegerField(serializers.IntegerField):
    """An integer in a query string: digits only, as the schema's integer says ("10.0", " 10" and "1e1" are refused;
    DRF's IntegerField takes them)."""

    def to_internal_value(self, data: Any) -> int:
        if not (isinstance(data, str) and data.isascii() and data.isdigit()):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class QueryInput(serializers.Serializer[dict[str, Any]]):
    """Query parameters as the schema states them: each at most once, and empty only where text may be empty.

    DRF reads a query string as an HTML form: the last of repeated values wins, and an empty value of an optional
    field counts as absent. Here both are refused, naming the parameter.
    """

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        problems: dict[str, str] = {}
        for name, field in self.fields.items():
            values = data.getlist(name) if hasattr(data, "getlist") else [data[name]] if name in data else []
            if len(values) > 1:
                problems[name] = "Give this parameter once."
            elif values == [""] and not getattr(field, "allow_blank", False):
                problems[name] = "This parameter may not be empty."
        if problems:
            raise serializers.ValidationError(problems)
        return super().to_internal_value(data)


class PageInput(QueryInput):
    """The pagination parameters of a list: validated here, so a bad one is a 400 naming it (a page past the last
    is 404)."""

    page = QueryIntegerField(min_value=1, max_value=2**31 - 1, required=False, help_text="From 1.")
    page_size = QueryIntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False, help_text="50 by default.")


class CustomerOutput(serializers.ModelSerializer[CustomerView]):
    id = serializers.UUIDField(source="customer_id")
    lifetime_value = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = CustomerView
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


class OrderCustomerOutput(serializers.Serializer[OrderView]):
    id = serializers.UUIDField(source="customer_id")
    first_name = serializers.CharField(source="customer_first_name")
    last_name = serializers.CharField(source="customer_last_name")
    email = serializers.CharField(source="customer_email")


class OrderLineOutput(serializers.Serializer[dict[str, Any]]):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.CharField(help_text="Decimal string, e.g. 19.90")
    line_total = serializers.CharField(help_text="Decimal string, e.g. 39.80")


class TimelineEntryOutput(serializers.Serializer[dict[str, Any]]):
    at = serializers.CharField(help_text="When the event occurred (ISO 8601)")
    event = serializers.CharField()
    detail = serializers.CharField()


class OrderOutput(serializers.ModelSerializer[OrderView]):
    id = serializers.UUIDField(source="order_id")
    customer = OrderCustomerOutput(source="*")
    lines = OrderLineOutput(many=True)
    total = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    timeline = TimelineEntryOutput(many=True)
    cancellation_reason = serializers.SerializerMethodField()

    class Meta:
        model = OrderView
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

    def get_cancellation_reason(self, order: OrderView) -> str | None:
        return order.cancellation_reason or None


class OrderQueryInput(PageInput):
    customer_id = StrictUUIDField()
    status = serializers.ChoiceField(choices=OrderView.Status.choices, required=False)


class ProductOutput(serializers.ModelSerializer[ProductView]):
    price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = ProductView
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
