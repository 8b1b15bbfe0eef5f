"""Inputs and outputs of the event feed and the webhook endpoints."""

from typing import Any

from rest_framework import serializers

from api_common.json_fields import StrictCharField, StrictIntegerField
from api_common.serializers import QueryInput, QueryIntegerField, StrictInput
from outbox_app import catalog
from webhooks_app.addresses import url_problems
from webhooks_app.endpoints import MAX_SECRET_OVERLAP
from webhooks_app.models import WebhookEndpoint

MAX_PAGE = 500
DEFAULT_PAGE = 100


class EventTypeField(serializers.ChoiceField):
    """One of the event types in the log's catalog (read when the field is built: the catalog is filled by then)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=catalog.names(), **kwargs)


class EventFeedQueryInput(QueryInput):
    after = serializers.UUIDField(
        required=False,
        help_text="The cursor: the id of the last event you read (a page's next_after). Omit it to start from the "
        "first event of the log.",
    )
    limit = QueryIntegerField(
        required=False, default=DEFAULT_PAGE, min_value=1, max_value=MAX_PAGE, help_text="Events per page."
    )
    type = serializers.ListField(
        child=EventTypeField(),
        required=False,
        default=list,
        max_length=len(catalog.names()) or None,
        help_text="Only events of this type; repeat the parameter for several types.",
    )


class EventOutput(serializers.Serializer[dict[str, Any]]):
    """An event as the service publishes it (the envelope; docs/events.md and the AsyncAPI document)."""

    event_id = serializers.UUIDField(help_text="Unique and stable: the webhook-id of its deliveries.")
    event_type = serializers.CharField()
    schema_version = serializers.IntegerField()
    aggregate_type = serializers.CharField(help_text="Customer, Product or Order.")
    aggregate_id = serializers.CharField()
    aggregate_version = serializers.IntegerField(help_text="The aggregate's version after this event (1, 2, ...).")
    occurred_at = serializers.DateTimeField()
    correlation_id = serializers.CharField(allow_null=True, help_text="The X-Correlation-ID of the request behind it.")
    causation_id = serializers.CharField(allow_null=True, help_text="The command or event that caused it.")
    payload = serializers.DictField(help_text="The event's data, as published; per type in the AsyncAPI document.")


class EventPageOutput(serializers.Serializer[dict[str, Any]]):
    events = EventOutput(many=True)
    next_after = serializers.UUIDField(
        allow_null=True,
        help_text="Pass it as `after` to read on. Past the last event of the log it names that event, whatever its "
        "type, so a reader of a few types does not scan the same events again; null while the log is empty.",
    )
    has_more = serializers.BooleanField(help_text="More events of the asked types wait: read on at once.")


class EndpointInput(StrictInput):
    url = StrictCharField(
        max_length=2000, help_text="https, on a public address (checked again at every delivery, after DNS)."
    )
    event_types = serializers.ListField(
        child=EventTypeField(), min_length=1, help_text="The event types to receive (the AsyncAPI document has them)."
    )

    def validate_url(self, url: str) -> str:
        problems = url_problems(url)
        if problems:
            raise serializers.ValidationError(problems)
        return url

    def validate_event_types(self, event_types: list[str]) -> list[str]:
        return list(dict.fromkeys(event_types))


class RotateSecretInput(StrictInput):
    previous_secret_expires_in = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=int(MAX_SECRET_OVERLAP.total_seconds()),
        help_text="Seconds during which deliveries are signed with the replaced secret too (0: stop at once). "
        "Defaults to WEBHOOKS_SECRET_OVERLAP_SECONDS (a day).",
    )


class EndpointOutput(serializers.ModelSerializer[WebhookEndpoint]):
    status = serializers.ChoiceField(
        choices=["enabled", "disabled"], help_text="disabled: every attempt failed for too long; see disabled_reason."
    )
    event_types = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "event_types",
            "status",
            "created_at",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "last_delivered_at",
            "secret_rotated_at",
            "previous_secret_expires_at",
        ]


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(
        help_text="whsec_ + base64: the signing secret, shown only now. Verify every delivery with it."
    )

    class Meta(EndpointOutput.Meta):
        fields = [*EndpointOutput.Meta.fields, "secret"]


class EndpointListOutput(serializers.Serializer[dict[str, Any]]):
    results = EndpointOutput(many=True)
