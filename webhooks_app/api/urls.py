"""URLs of the event feed and the webhook endpoints."""

from django.urls import path

from webhooks_app.api import views

urlpatterns = [
    path("events", views.EventFeedView.as_view(), name="event-feed"),
    path("webhook-endpoints", views.EndpointListView.as_view(), name="webhook-endpoint-list"),
    path("webhook-endpoints/<uuid:endpoint_id>", views.EndpointDetailView.as_view(), name="webhook-endpoint-detail"),
    path(
        "webhook-endpoints/<uuid:endpoint_id>/rotate-secret",
        views.RotateSecretView.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<uuid:endpoint_id>/enable",
        views.EnableEndpointView.as_view(),
        name="webhook-endpoint-enable",
    ),
]
