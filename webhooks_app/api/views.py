"""The event feed (scope read) and the webhook endpoints (scope webhooks): thin views over outbox_app.log and
webhooks_app.endpoints; every refusal is a problem document with a stable code, and writes nothing."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.consistency import LEVEL_HEADER, Consistency, token_versions, wait_until
from api_common.models import ApiClient
from api_common.permissions import HasReadScope, HasWebhooksScope
from api_common.problems import Problem
from api_common.schema import (
    COMMON_PARAMETERS,
    CONSISTENCY_TOKEN,
    REFUSED_BEFORE_THE_VIEW,
    level_header,
    problem_responses,
)
from outbox_app.log import UnknownCursor, in_log, read_log
from webhooks_app import asyncapi, endpoints
from webhooks_app.api import serializers as io

ENDPOINT_NOT_FOUND = {404: "No endpoint of this client has this id (WEBHOOK_ENDPOINT_NOT_FOUND)."}
WEBHOOKS_SCOPE = {403: "The API client lacks the 'webhooks' scope (FORBIDDEN)."}


def _client(request: Request) -> ApiClient:
    assert isinstance(request.user, ApiClient)
    return request.user


@contextmanager
def refusals_as_problems() -> Iterator[None]:
    try:
        yield
    except endpoints.Refusal as refusal:
        raise Problem(status_code=refusal.status, code=refusal.code, detail=refusal.detail) from None


class EventFeedView(APIView):
    permission_classes = [HasReadScope]

    @extend_schema(
        operation_id="events_list",
        summary="The published events after a cursor, in log order",
        description=(
            "Every event the service has published, oldest first, in the order of the log: pass each page's "
            "`next_after` back as `after` and you will never miss an event, even one that was written before an "
            "event you have already read but published after it. Versions of one aggregate come in order. Only "
            "published events are listed (an event appears within milliseconds of its command, later while the "
            "bus is down). Consistency: EVENTUAL; READ_YOUR_WRITES with X-Consistency-Token (the answer waits "
            "until that command's events are in the feed, or answers 503). Payloads per type: /api/asyncapi.yaml."
        ),
        parameters=[
            io.EventFeedQueryInput,
            CONSISTENCY_TOKEN,
            *COMMON_PARAMETERS,
            level_header(Consistency.EVENTUAL, Consistency.READ_YOUR_WRITES),
        ],
        responses={
            200: io.EventPageOutput,
            **problem_responses(
                *REFUSED_BEFORE_THE_VIEW,
                422,
                503,
                described={
                    400: "Invalid parameters (VALIDATION_FAILED), or a consistency token this service did not "
                    "issue (CONSISTENCY_TOKEN_INVALID).",
                    422: "`after` names no published event of the log, live or archived (EVENT_CURSOR_UNKNOWN).",
                    503: "The token's events are not in the feed yet (CONSISTENCY_TIMEOUT, with Retry-After).",
                },
            ),
        },
        tags=["events"],
    )
    def get(self, request: Request) -> Response:
        query = io.EventFeedQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        level = Consistency.EVENTUAL
        token = request.headers.get(CONSISTENCY_HEADER)
        if token is not None:
            self.wait_for(token)
            level = Consistency.READ_YOUR_WRITES
        try:
            page = read_log(
                after=query.validated_data.get("after"),
                event_types=query.validated_data["type"],
                limit=query.validated_data["limit"],
            )
        except UnknownCursor:
            raise Problem(
                status_code=422,
                code="EVENT_CURSOR_UNKNOWN",
                detail="`after` names no published event of the log.",
            ) from None
        body = {"events": [e.envelope for e in page.entries], "next_after": page.next_after, "has_more": page.has_more}
        return Response(body, headers={LEVEL_HEADER: level.value})

    @staticmethod
    def wait_for(token: str) -> None:
        """READ_YOUR_WRITES: wait until the token's events are in the log (published), or answer 503."""
        keys = [(v.aggregate_type, v.aggregate_id, v.version) for v in token_versions(token)]
        if not wait_until(lambda: in_log(keys), timeout=settings.CONSISTENCY_WAIT_SECONDS):
            raise Problem(
                status_code=503,
                code="CONSISTENCY_TIMEOUT",
                detail="Your command's events are not published yet; retry shortly.",
                headers={"Retry-After": "1"},
            )


class EndpointListView(APIView):
    permission_classes = [HasWebhooksScope]

    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="This client's webhook endpoints (never their secrets)",
        parameters=COMMON_PARAMETERS,
        responses={200: io.EndpointListOutput, **problem_responses(*REFUSED_BEFORE_THE_VIEW, described=WEBHOOKS_SCOPE)},
        tags=["webhooks"],
    )
    def get(self, request: Request) -> Response:
        return Response({"results": io.EndpointOutput(endpoints.endpoints_of(_client(request)), many=True).data})

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Register a webhook endpoint; the answer shows its signing secret, once",
        description=(
            "Deliveries follow Standard Webhooks (docs/webhooks.md): a POST of {type, timestamp, data} with the "
            "headers webhook-id (the event id, the same on every retry), webhook-timestamp and webhook-signature. "
            "The endpoint receives the events of its types that occur after it is registered."
        ),
        request=io.EndpointInput,
        parameters=COMMON_PARAMETERS,
        responses={
            201: io.EndpointWithSecretOutput,
            **problem_responses(
                *REFUSED_BEFORE_THE_VIEW,
                409,
                415,
                422,
                described={
                    **WEBHOOKS_SCOPE,
                    409: "This client has an endpoint with this URL already (WEBHOOK_ENDPOINT_EXISTS).",
                    422: "The URL's host is not public (WEBHOOK_URL_NOT_PUBLIC), or the client has as many "
                    "endpoints as it may (WEBHOOK_ENDPOINT_LIMIT_REACHED).",
                },
            ),
        },
        tags=["webhooks"],
    )
    def post(self, request: Request) -> Response:
        given = io.EndpointInput(data=request.data)
        given.is_valid(raise_exception=True)
        with refusals_as_problems():
            endpoint, _ = endpoints.create_endpoint(client=_client(request), **given.validated_data)
        return Response(io.EndpointWithSecretOutput(endpoint).data, status=201)


class EndpointDetailView(APIView):
    permission_classes = [HasWebhooksScope]

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="One of this client's webhook endpoints: its status, and why it is disabled if it is",
        parameters=COMMON_PARAMETERS,
        responses={
            200: io.EndpointOutput,
            **problem_responses(*REFUSED_BEFORE_THE_VIEW, 404, described={**WEBHOOKS_SCOPE, **ENDPOINT_NOT_FOUND}),
        },
        tags=["webhooks"],
    )
    def get(self, request: Request, endpoint_id: UUID) -> Response:
        with refusals_as_problems():
            endpoint = endpoints.endpoint_of(_client(request), endpoint_id)
        return Response(io.EndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_destroy",
        summary="Delete a webhook endpoint: no delivery is attempted after this",
        parameters=COMMON_PARAMETERS,
        responses={
            204: OpenApiResponse(description="Deleted."),
            **problem_responses(*REFUSED_BEFORE_THE_VIEW, 404, described={**WEBHOOKS_SCOPE, **ENDPOINT_NOT_FOUND}),
        },
        tags=["webhooks"],
    )
    def delete(self, request: Request, endpoint_id: UUID) -> Response:
        with refusals_as_problems():
            endpoints.delete_endpoint(client=_client(request), endpoint_id=endpoint_id)
        return Response(status=204)


class RotateSecretView(APIView):
    permission_classes = [HasWebhooksScope]

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        summary="Replace the signing secret; the answer shows the new one, once",
        description=(
            "Until `previous_secret_expires_at`, deliveries carry two signatures in webhook-signature (one per "
            "secret, space-separated), so receivers verify with either while they switch to the new one."
        ),
        request=io.RotateSecretInput,
        parameters=COMMON_PARAMETERS,
        responses={
            200: io.EndpointWithSecretOutput,
            **problem_responses(*REFUSED_BEFORE_THE_VIEW, 404, 415, described={**WEBHOOKS_SCOPE, **ENDPOINT_NOT_FOUND}),
        },
        tags=["webhooks"],
    )
    def post(self, request: Request, endpoint_id: UUID) -> Response:
        given = io.RotateSecretInput(data=request.data)
        given.is_valid(raise_exception=True)
        seconds = given.validated_data.get("previous_secret_expires_in", settings.WEBHOOKS_SECRET_OVERLAP_SECONDS)
        with refusals_as_problems():
            endpoint, _ = endpoints.rotate_secret(
                client=_client(request), endpoint_id=endpoint_id, previous_expires_in=timedelta(seconds=seconds)
            )
        return Response(io.EndpointWithSecretOutput(endpoint).data)


class EnableEndpointView(APIView):
    permission_classes = [HasWebhooksScope]

    @extend_schema(
        operation_id="webhook_endpoints_enable",
        summary="Enable a disabled endpoint again (events it missed are in the feed)",
        request=None,
        parameters=COMMON_PARAMETERS,
        responses={
            200: io.EndpointOutput,
            **problem_responses(*REFUSED_BEFORE_THE_VIEW, 404, described={**WEBHOOKS_SCOPE, **ENDPOINT_NOT_FOUND}),
        },
        tags=["webhooks"],
    )
    def post(self, request: Request, endpoint_id: UUID) -> Response:
        with refusals_as_problems():
            endpoint = endpoints.enable_endpoint(client=_client(request), endpoint_id=endpoint_id)
        return Response(io.EndpointOutput(endpoint).data)


def asyncapi_document(request: HttpRequest, *args: Any) -> HttpResponse:
    """The AsyncAPI document of the published events (docs/asyncapi.yaml holds the same)."""
    return HttpResponse(asyncapi.render(), content_type="application/yaml; charset=utf-8")
