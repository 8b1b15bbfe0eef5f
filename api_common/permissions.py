"""Request-level permissions: an authenticated API client, and scope checks for queries."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from api_common.models import ApiClient


class IsApiClient(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, ApiClient)


class HasScope(IsApiClient):
    scope: str

    @property
    def message(self) -> str:
        return f"This API client lacks the '{self.scope}' scope."

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and request.user.has_scope(self.scope)  # type: ignore[union-attr]


class HasReadScope(HasScope):
    scope = "read"


class HasWebhooksScope(HasScope):
    scope = "webhooks"
