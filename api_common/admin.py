"""Admin for API clients: operators see and revoke clients; tokens are only ever created by management commands."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from api_common.authentication import forget_clients
from api_common.models import ApiClient


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "scopes", "created_at", "rotated_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name",)
    readonly_fields = ("id", "name", "scopes", "created_at", "rotated_at", "revoked_at")
    exclude = ("token_hash",)
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token must be shown once to its owner: use `manage.py create_api_client`

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead, so records that name the client keep their meaning

    @admin.action(description="Revoke the selected clients (their tokens are refused at once)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        forget_clients()
        self.message_user(request, f"Revoked {count} client(s).", messages.SUCCESS)
