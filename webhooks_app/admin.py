"""Webhooks in the Django admin: endpoints (status, why disabled; never their secrets), deliveries with their attempts,
and a retry action for operators (the webhooks_app.retry_webhookdelivery permission).

Endpoints are their clients': operators may disable or enable one, never edit its URL or types. Deliveries are
never edited by hand: retrying is an explicit action.
"""

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from webhooks_app import operations
from webhooks_app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("enabled", "enabled"), ("disabled", "disabled"), ("deleted", "deleted by its client")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> QuerySet[WebhookEndpoint]:
        match self.value():
            case "enabled":
                return queryset.filter(deleted_at__isnull=True, disabled_at__isnull=True)
            case "disabled":
                return queryset.filter(deleted_at__isnull=True, disabled_at__isnull=False)
            case "deleted":
                return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "client", "status", "types", "failing_since", "last_delivered_at", "created_at")
    list_filter = (EndpointStatusFilter,)
    search_fields = ("url", "client__name")
    list_select_related = ("client",)
    ordering = ("-created_at",)
    actions = ("disable", "enable")
    # The secrets are left out on purpose: shown once to the client, never to anyone again.
    fields = (
        "id",
        "client",
        "url",
        "event_types",
        "status",
        "created_at",
        "failing_since",
        "last_delivered_at",
        "disabled_at",
        "disabled_reason",
        "secret_rotated_at",
        "previous_secret_expires_at",
        "deleted_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # clients register endpoints through the API, which shows them the secret once

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # clients delete their own; operators disable

    @admin.display(description="event types")
    def types(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types)

    @admin.action(description="Disable (no more deliveries until enabled)", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        count = queryset.filter(deleted_at__isnull=True, disabled_at__isnull=True).update(
            disabled_at=timezone.now(), disabled_reason=f"Disabled by an operator ({request.user})."
        )
        self.message_user(request, f"{count} endpoint(s) disabled.", messages.SUCCESS)

    @admin.action(description="Enable again", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        count = queryset.filter(deleted_at__isnull=True, disabled_at__isnull=False).update(
            disabled_at=None, disabled_reason="", failing_since=None
        )
        self.message_user(request, f"{count} endpoint(s) enabled.", messages.SUCCESS)


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "duration_ms", "outcome", "status_code", "address", "error", "response_excerpt")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("webhooks_app.view_webhookdelivery")  # attempts are part of their delivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event_type",
        "event_id",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "short_error",
    )
    list_filter = ("status", "event_type")
    search_fields = ("event_id", "endpoint__url")
    search_help_text = "An event id (the webhook-id) or an endpoint URL."
    list_select_related = ("endpoint",)
    ordering = ("-id",)
    show_full_result_count = False
    list_per_page = 50
    actions = ("retry",)
    inlines = (AttemptInline,)
    fields = (
        "event_id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "retry_until",
        "leased_until",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "failed_at",
        "pretty_body",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks_app.retry_webhookdelivery")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "webhooks_status": operations.read_status()})

    @admin.display(description="last error")
    def short_error(self, delivery: WebhookDelivery) -> str:
        return delivery.last_error[:80]

    @admin.display(description="body")
    def pretty_body(self, delivery: WebhookDelivery) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(json.loads(delivery.body), indent=2, ensure_ascii=False))

    @admin.action(description="Retry now (pending or failed; a fresh retry window)", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = operations.retry_now(queryset)
        self.message_user(
            request,
            f"{count} delivery(ies) will be attempted within a second; delivered ones and those of disabled or "
            "deleted endpoints were left as they are.",
            messages.SUCCESS,
        )
