"""URLs of the query endpoints."""

from django.urls import path

from queries_app.api import views

urlpatterns = [
    path("customers", views.CustomerListView.as_view(), name="customer-list"),
    path("customers/<uuid:customer_id>", views.CustomerDetailView.as_view(), name="customer-detail"),
    path("orders", views.OrderListView.as_view(), name="order-list"),
    path("orders/<uuid:order_id>", views.OrderDetailView.as_view(), name="order-detail"),
    path("products", views.ProductListView.as_view(), name="product-list"),
    path("products/best-sellers", views.BestSellersView.as_view(), name="product-best-sellers"),
    path("products/<str:sku>", views.ProductDetailView.as_view(), name="product-detail"),
]
