"""URLs of the command endpoints: a route per command, named by its input serializer."""

from django.urls import path

from commands_app.api import serializers
from commands_app.api.views import command_view

urlpatterns = [
    path(route, command_view(input_serializer).as_view(), name=route)
    for route, input_serializer in [
        ("register-customer", serializers.RegisterCustomerInput),
        ("change-customer-email", serializers.ChangeCustomerEmailInput),
        ("add-product", serializers.AddProductInput),
        ("restock-product", serializers.RestockProductInput),
        ("change-product-price", serializers.ChangeProductPriceInput),
        ("place-order", serializers.PlaceOrderInput),
        ("cancel-order", serializers.CancelOrderInput),
    ]
]
