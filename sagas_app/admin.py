"""Sagas in the Django admin: a read-only view with each saga's step timeline, plus retry and abort.

Retrying and aborting need the sagas_app.operate_saga permission; nothing is edited by hand, since a saga's
row is also its executor's lease and version.
"""

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from sagas_app import lifecycle
from sagas_app.models import Saga, SagaStep
from sagas_app.tasks import queue_advance

AGES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1h", "older than an hour"), ("1d", "older than a day"), ("7d", "older than a week")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Saga]) -> QuerySet[Saga] | None:
        age = AGES.get(self.value() or "")
        return queryset if age is None else queryset.filter(created_at__lte=timezone.now() - age)


class SagaStepInline(admin.TabularInline):
    model = SagaStep
    fields = ("step", "direction", "status", "attempts", "started_at", "finished_at", "error", "idempotency_key")
    readonly_fields = fields
    ordering = ("started_at", "id")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Saga)
class SagaAdmin(admin.ModelAdmin):
    list_display = (
        "saga_id",
        "saga_type",
        "correlation_id",
        "status",
        "current_step",
        "attempts",
        "outcome",
        "reason",
        "age",
        "next_attempt_at",
        "short_error",
    )
    list_filter = ("status", "saga_type", AgeFilter)
    search_fields = ("=correlation_id", "=saga_id")
    search_help_text = "A correlation id (an order id) or a saga id (exact match)."
    ordering = ("-created_at",)
    list_per_page = 50
    actions = ("retry_sagas", "abort_sagas")
    inlines = (SagaStepInline,)
    fields = (
        "saga_id",
        "saga_type",
        "correlation_id",
        "status",
        "current_step",
        "attempts",
        "outcome",
        "reason",
        "requested_cancellation",
        "deadline",
        "next_attempt_at",
        "lease_owner",
        "lease_expires_at",
        "version",
        "last_error",
        "pretty_context",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Saga | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Saga | None = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sagas_app.operate_saga")

    @admin.display(description="age")
    def age(self, saga: Saga) -> str:
        return timesince(saga.created_at)

    @admin.display(description="last error")
    def short_error(self, saga: Saga) -> str:
        return saga.last_error[:80]

    @admin.display(description="context")
    def pretty_context(self, saga: Saga) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(saga.context, indent=2, sort_keys=True))

    @admin.action(description="Retry (a failed saga tries its current step again)", permissions=["operate"])
    def retry_sagas(self, request: HttpRequest, queryset: QuerySet[Saga]) -> None:
        self._operate(request, queryset, lifecycle.retry, "retried")

    @admin.action(description="Abort (compensate: undo the steps, cancel the order)", permissions=["operate"])
    def abort_sagas(self, request: HttpRequest, queryset: QuerySet[Saga]) -> None:
        self._operate(request, queryset, lifecycle.abort, "aborted")

    def _operate(self, request: HttpRequest, queryset: QuerySet[Saga], operation: Any, done: str) -> None:
        with transaction.atomic():
            changed = [saga_id for saga_id in queryset.values_list("saga_id", flat=True) if operation(saga_id)]
            transaction.on_commit(lambda: queue_advance(changed))
        skipped = queryset.count() - len(changed)
        self.message_user(request, f"{len(changed)} saga(s) {done}; {skipped} skipped (completed).", messages.SUCCESS)
