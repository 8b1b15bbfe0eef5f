"""Admin for the write model: read-only, because every change must go through the command pipeline."""

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from commands_app.models import CustomerRecord, IdempotencyRecord, OrderRecord, ProductRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key", "client_id", "command_type", "status_code", "created_at", "expires_at")
    list_filter = ("command_type", "status_code")
    search_fields = ("key", "client_id")
    date_hierarchy = "created_at"
    fields = ("client_id", "key", "command_type", "request_hash", "status_code", "response", "created_at", "expires_at")
    readonly_fields = fields

    @admin.display(description="stored response")
    def response(self, obj: IdempotencyRecord) -> str:
        body = json.loads(obj.response_body) if obj.response_body is not None else None
        shown = {"body": body, "error": obj.response_error, "headers": obj.response_headers}
        return format_html("<pre>{}</pre>", json.dumps(shown, indent=2))


@admin.register(CustomerRecord)
class CustomerRecordAdmin(ReadOnlyAdmin):
    list_display = ("customer_id", "first_name", "last_name", "email", "version")
    search_fields = ("customer_id", "email", "last_name")


@admin.register(ProductRecord)
class ProductRecordAdmin(ReadOnlyAdmin):
    list_display = ("sku", "name", "price", "stock", "reserved", "sold", "version")
    search_fields = ("sku", "name")


@admin.register(OrderRecord)
class OrderRecordAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "customer_id", "status", "cancellation_reason", "payment_status", "total", "version")
    list_filter = ("status", "cancellation_reason", "payment_status")
    search_fields = ("order_id", "customer_id")
