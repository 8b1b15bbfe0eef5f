"""The outbox in the Django admin: a read-only view of the event log, plus retry and requeue for operators.

Events are never added, edited or deleted here: a change would bypass the command pipeline that wrote them.
Retrying and requeueing need the outbox_app.retry_outboxevent permission.
"""

import json
from contextlib import suppress
from typing import Any
from uuid import UUID

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from outbox_app import operations
from outbox_app.models import OutboxEvent


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(status.value, status.label) for status in OutboxEvent.Status]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> QuerySet[OutboxEvent] | None:
        match self.value():
            case OutboxEvent.Status.PENDING:
                return queryset.filter(published_at__isnull=True, dead_at__isnull=True)
            case OutboxEvent.Status.PUBLISHED:
                return queryset.filter(published_at__isnull=False)
            case OutboxEvent.Status.DEAD:
                return queryset.filter(published_at__isnull=True, dead_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = (
        "event_type",
        "aggregate",
        "aggregate_version",
        "status",
        "created_at",
        "published_at",
        "attempts",
        "next_attempt_at",
        "short_error",
    )
    list_filter = (StatusFilter, "event_type", "aggregate_type")
    search_fields = ("aggregate_id", "metadata__correlation_id")
    search_help_text = "An aggregate id, a correlation id or an event id (exact match)."
    # UUIDv7 primary keys are time-ordered: newest first, straight from the primary key index.
    ordering = ("-event_id",)
    show_full_result_count = False
    list_per_page = 50
    actions = ("retry_now", "requeue_dead")
    fields = (
        "event_id",
        "event_type",
        "schema_version",
        "aggregate_type",
        "aggregate_id",
        "aggregate_version",
        "status",
        "created_at",
        "published_at",
        "dead_at",
        "attempts",
        "next_attempt_at",
        "last_error",
        "pretty_metadata",
        "pretty_payload",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("outbox_app.retry_outboxevent")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OutboxEvent], search_term: str
    ) -> tuple[QuerySet[OutboxEvent], bool]:
        # Exact matches only, so the unique and correlation id indexes answer them on a long event log.
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(aggregate_id=term) | Q(Exact(KeyTextTransform("correlation_id", "metadata"), term))
        with suppress(ValueError):
            condition |= Q(event_id=UUID(term))
        return queryset.filter(condition), False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "outbox_status": operations.read_status()})

    @admin.display(description="aggregate")
    def aggregate(self, event: OutboxEvent) -> str:
        return f"{event.aggregate_type}/{event.aggregate_id}"

    @admin.display(description="status")
    def status(self, event: OutboxEvent) -> str:
        return event.status.label

    @admin.display(description="last error")
    def short_error(self, event: OutboxEvent) -> str:
        return event.last_error[:80]

    @admin.display(description="payload")
    def pretty_payload(self, event: OutboxEvent) -> SafeString:
        return _pretty_json(event.payload)

    @admin.display(description="metadata")
    def pretty_metadata(self, event: OutboxEvent) -> SafeString:
        return _pretty_json(event.metadata)

    @admin.action(description="Retry now (skip the backoff of selected pending events)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = operations.retry_now(queryset)
        self.message_user(request, f"{count} pending event(s) will be retried on the next relay run.", messages.SUCCESS)

    @admin.action(description="Requeue dead (fresh attempts for selected dead events)", permissions=["retry"])
    def requeue_dead(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = operations.requeue_dead(queryset)
        self.message_user(request, f"{count} dead event(s) requeued.", messages.SUCCESS)


def _pretty_json(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
