"""URLs of the command endpoints."""

from django.urls import path

from commands_app.api import views

urlpatterns = [
    path("register-customer", views.RegisterCustomerView.as_view(), name="register-customer"),
    path("change-customer-email", views.ChangeCustomerEmailView.as_view(), name="change-customer-email"),
    path("add-product", views.AddProductView.as_view(), name="add-product"),
    path("restock-product", views.RestockProductView.as_view(), name="restock-product"),
    path("change-product-price", views.ChangeProductPriceView.as_view(), name="change-product-price"),
    path("place-order", views.PlaceOrderView.as_view(), name="place-order"),
    path("cancel-order", views.CancelOrderView.as_view(), name="cancel-order"),
]
