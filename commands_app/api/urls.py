"""URLs of the command endpoints."""

from django.urls import path

from commands_app.api import views

urlpatterns = [
    path("register-customer", views.RegisterCustomerView.as_view(), name="register-customer"),
]
