"""API clients: one hashed token each, a set of scopes, revocable."""

import hashlib
import secrets
import uuid
from typing import ClassVar

from django.db import models
from django.utils import timezone

SCOPES: tuple[str, ...] = ("read", "write", "catalog", "webhooks")
TOKEN_PREFIX = "cqrs_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiClientQuerySet(models.QuerySet["ApiClient"]):
    def active(self) -> "ApiClientQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiClient(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    scopes = models.JSONField(default=list)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty means API_RATE_LIMIT_PER_MINUTE."
    )

    objects: ClassVar[ApiClientQuerySet] = ApiClientQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    # DRF reads these on request.user; an API client is the authenticated principal of a request.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def issue_token(self) -> str:
        """Give the client a new token, store only its hash, and return the token to show once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.token_hash = hash_token(token)
        return token
