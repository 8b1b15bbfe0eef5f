"""OpenTelemetry tracing: off unless OTEL_* variables ask for it; spans for the service's own steps; the W3C trace
context carried from a command to everything its events cause (docs/operations.md, "Traces").

Turning it on: name an exporter the way OpenTelemetry's own configuration does (`OTEL_TRACES_EXPORTER=otlp` or
`console`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`). An OTLP endpoint alone means `otlp`; `otlp` means OTLP over HTTP
(the exporter this service ships) unless the protocol says grpc. `OTEL_SDK_DISABLED=true` turns it all off.
The served processes call configure() on start (config/wsgi.py, config/celery.py); a process that did not, or
found nothing asked, creates no spans, and every hook below costs a flag test.

What is traced: the HTTP request (Django), SQL (an execute wrapper on every database connection: any backend),
Redis and Celery tasks (OpenTelemetry's instrumentations), and the service's own steps through the hooks below,
which the apps call: the mediator and each middleware, the relay, the consumers of events (projections, sagas)
and each saga step.

How one trace follows a command: the outbox row a command writes keeps the traceparent of the span that wrote it
(its metadata). The relay publishes each trace's events under a span of that trace and sends that span's
traceparent in the envelope; a consumer's span is the child of the traceparent it received (linked to the
others when one message carries events of several traces); a saga keeps the traceparent that started it, and each
of its runs, retries included, continues that trace. So a command's trace shows its POST, the relay, the
projections and every saga step with the commands it sent, and their events in turn.
"""

import functools
import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
DEFAULT_SERVICE_NAME = "cqrs-orders"
# Probes and scrapes every few seconds would drown the traces that matter.
UNTRACED_URLS = "livez,readyz,healthz,metrics,static/.*"
MAX_STATEMENT_LENGTH = 2000
OTLP_EXPORTERS = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}

_tracer = trace.get_tracer("cqrs_orders")
_propagator = TraceContextTextMapPropagator()
# Set once per process by configure(); a forked child (a prefork Celery worker's pool) inherits it with the provider.
_configured = False

F = TypeVar("F", bound=Callable[..., Any])


def enabled() -> bool:
    """Whether this process traces (configure() found an exporter to send spans to)."""
    return _configured


# --- Configuration ------------------------------------------------------------------------------------------


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The span exporters OpenTelemetry's variables ask for, as entry point names; none when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not names and (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        names = "otlp"
    if names.lower() in ("", "none"):
        return []
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in OTLP_EXPORTERS:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}: use one of {', '.join(OTLP_EXPORTERS)}.")
    return [OTLP_EXPORTERS[protocol] if name.strip() == "otlp" else name.strip() for name in names.split(",")]


def configure(environ: Mapping[str, str] = os.environ) -> bool:
    """Set up tracing in this process as OTEL_* asks (once per process); whether it is on."""
    global _configured
    if enabled():
        return True
    names = exporter_names(environ)
    if not names:
        return False
    from importlib.metadata import entry_points

    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))  # sampler: OTEL_TRACES_SAMPLER
    for name in names:
        found = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            installed = sorted(e.name for e in entry_points(group="opentelemetry_traces_exporter"))
            raise ValueError(f"No span exporter {name!r} is installed (OTEL_TRACES_EXPORTER); installed: {installed}.")
        provider.add_span_processor(BatchSpanProcessor(next(iter(found)).load()()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(excluded_urls=environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", UNTRACED_URLS))
    CeleryInstrumentor().instrument()
    RedisInstrumentor().instrument()
    _trace_sql()
    _configured = True
    return True


def _trace_sql() -> None:
    """Every database connection, the open ones and those opened later, runs its statements in a span."""
    from django.db import connections
    from django.db.backends.signals import connection_created

    def add_wrapper(connection: Any, **kwargs: Any) -> None:
        if _sql_span not in connection.execute_wrappers:
            # First, so it is the outermost wrapper; and at the front, so the execute_wrapper() context managers
            # of other code, which pop the last wrapper, still pop their own.
            connection.execute_wrappers.insert(0, _sql_span)

    connection_created.connect(add_wrapper, weak=False)
    for connection in connections.all(initialized_only=True):
        add_wrapper(connection)


def _sql_span(
    execute: Callable[..., Any], sql: str | bytes, params: Any, many: bool, context: Mapping[str, Any]
) -> Any:
    from sqlkit.statement import sending  # here: this module is imported before Django's settings are

    connection = context["connection"]
    # A query of several statements sqlkit sends, their values quoted in, is shown as its statements are written:
    # placeholders, no values (as a query with parameters is).
    statements = sending.get()
    if statements:
        text = "; ".join(statement.sql for statement in statements)
    else:
        text = sql.decode(errors="replace") if isinstance(sql, bytes) else sql
    operation = text.lstrip().split(None, 1)[0].upper() if text.strip() else "SQL"
    attributes = {
        "db.system": connection.vendor,
        "db.name": str(connection.settings_dict.get("NAME", "")),
        "db.operation": operation,
        "db.statement": text[:MAX_STATEMENT_LENGTH],
    }
    if many:
        attributes["db.executemany"] = True
    with _tracer.start_as_current_span(operation, kind=SpanKind.CLIENT, attributes=attributes):
        return execute(sql, params, many, context)


# --- Spans for the service's own steps --------------------------------------------------------------------------


def span(name: str, **attributes: Any) -> AbstractContextManager[Any]:
    """A span around a step of the service, the child of the current one; nothing when tracing is off."""
    if not enabled():
        return nullcontext()
    return _tracer.start_as_current_span(name, attributes=_clean(attributes))


def traced(name: str) -> Callable[[F], F]:
    """Decorate a function so each call runs in a span of that name."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            with span(name):
                return function(*args, **kwargs)

        return call  # type: ignore[return-value]

    return decorate


def annotate(**attributes: Any) -> None:
    """Add attributes to the current span (a step's figures, known at its end)."""
    if enabled():
        trace.get_current_span().set_attributes(_clean(attributes))


def fail(reason: str) -> None:
    """Mark the current span as an error (an outcome that is not an exception, such as a refused command)."""
    if enabled():
        trace.get_current_span().set_status(Status(StatusCode.ERROR, reason))


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, when there is one to continue."""
    if not enabled():
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def trace_metadata() -> dict[str, str]:
    """What an outbox row keeps of the trace that wrote it: {"traceparent": ...}, or nothing."""
    traceparent = current_traceparent()
    return {TRACEPARENT: traceparent} if traceparent else {}


def _context_of(traceparent: str | None) -> Any:
    return _propagator.extract({TRACEPARENT: traceparent}) if traceparent else None


def _span_context(traceparent: str | None) -> trace.SpanContext | None:
    context = _context_of(traceparent)
    if context is None:
        return None
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


@contextmanager
def continuing(name: str, traceparent: str | None, **attributes: Any) -> Iterator[None]:
    """A span in the given trace (a saga's run continues the trace that started the saga, whenever it resumes):
    the child of the current span when that is in the trace already, else of the traceparent, linked to the
    current span (the beat tick, or the task that resumed it)."""
    if not enabled():
        yield
        return
    parent = _span_context(traceparent)
    current = trace.get_current_span().get_span_context()
    elsewhere = parent is not None and not (current.is_valid and current.trace_id == parent.trace_id)
    with _tracer.start_as_current_span(
        name,
        context=_context_of(traceparent) if elsewhere else None,
        links=[Link(current)] if elsewhere and current.is_valid else [],
        attributes=_clean(attributes),
    ):
        yield


@contextmanager
def consuming(name: str, envelopes: Sequence[Mapping[str, Any]], **attributes: Any) -> Iterator[None]:
    """A consumer's span over a message of envelopes, the child of the first envelope's traceparent (the relay's
    span that published it), linked to the task that received it.

    A message can carry the events of several commands, each with its trace: the work is done once, in this span,
    and each other trace gets a span of the same name, linked to it, so every command's trace shows its events
    consumed; this span links to each of them.
    """
    if not enabled():
        yield
        return
    traceparents = [t for t in dict.fromkeys(e.get(TRACEPARENT) for e in envelopes) if t and _span_context(t)]
    current = trace.get_current_span().get_span_context()
    parents = [_span_context(t) for t in traceparents]
    links = [Link(p) for p in parents[1:] if p is not None] + ([Link(current)] if current.is_valid else [])
    attributes = _clean(
        {
            "events.count": len(envelopes),
            "events.types": sorted({str(e.get("event_type")) for e in envelopes}),
            **attributes,
        }
    )
    with _tracer.start_as_current_span(
        name,
        context=_context_of(traceparents[0]) if traceparents else None,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    ) as consumer:
        traced = {parent.trace_id for parent in parents[:1] if parent is not None}
        companions = []
        for traceparent, parent in zip(traceparents[1:], parents[1:], strict=True):
            if parent is None or parent.trace_id in traced:
                continue
            traced.add(parent.trace_id)
            companions.append(
                _tracer.start_span(
                    name,
                    context=_context_of(traceparent),
                    kind=SpanKind.CONSUMER,
                    links=[Link(consumer.get_span_context())],
                    attributes=attributes,
                )
            )
        try:
            yield
        finally:
            for companion in companions:
                companion.end()


@contextmanager
def relaying(envelopes: Sequence[dict[str, Any]]) -> Iterator[None]:
    """While the relay publishes these envelopes: one span per trace among them, the child of the span that wrote
    the events (their stored traceparent), each envelope re-pointed to its trace's span for its consumers."""
    if not enabled():
        yield
        return
    batch = trace.get_current_span().get_span_context()
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for envelope in envelopes:
        if envelope.get(TRACEPARENT):
            by_trace.setdefault(envelope[TRACEPARENT], []).append(envelope)
    spans = []
    for traceparent, events in by_trace.items():
        published = _tracer.start_span(
            "outbox publish",
            context=_context_of(traceparent),
            kind=SpanKind.PRODUCER,
            links=[Link(batch)] if batch.is_valid else [],
            attributes={"events.count": len(events), "events.types": sorted({e["event_type"] for e in events})},
        )
        spans.append(published)
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, context=trace.set_span_in_context(published, otel_context.Context()))
        for envelope in events:
            envelope[TRACEPARENT] = carrier[TRACEPARENT]
    try:
        yield
    finally:
        for published in spans:
            published.end()


def add_trace_ids(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: every log line written inside a span names its trace and span."""
    if enabled():
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            event["trace_id"] = format(span_context.trace_id, "032x")
            event["span_id"] = format(span_context.span_id, "016x")
    return event


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes take strings, numbers, booleans and lists of them; anything else as its text."""
    cleaned: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, str | bool | int | float):
            cleaned[key] = value
        elif isinstance(value, list | tuple):
            cleaned[key] = [item if isinstance(item, str | bool | int | float) else str(item) for item in value]
        else:
            cleaned[key] = str(value)
    return cleaned
