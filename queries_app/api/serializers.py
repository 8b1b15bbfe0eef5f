"""Output serializers of the read models."""

from rest_framework import serializers

from queries_app.models import CustomerView


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


class CustomerQueryInput(serializers.Serializer[dict[str, str]]):
    email = serializers.EmailField(max_length=254)
