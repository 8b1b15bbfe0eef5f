"""An OTLP/HTTP endpoint for tests: the service's processes export their spans to it as they would to a collector
(OTEL_EXPORTER_OTLP_ENDPOINT), and it hands them, as OpenTelemetry SDK spans, to an InMemorySpanExporter the test
reads (`finished()`)."""

import gzip
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, TraceFlags


@dataclass
class Receiver:
    port: int = 0
    memory: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def finished(self) -> Sequence[ReadableSpan]:
        return self.memory.get_finished_spans()

    def in_trace(self, trace_id: int) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.context is not None and span.context.trace_id == trace_id]

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = Resource({a.key: _value(a.value) for a in resource_spans.resource.attributes})
            for scope_spans in resource_spans.scope_spans:
                spans += [_span(span, resource) for span in scope_spans.spans]
        self.memory.export(spans)


def service(span: ReadableSpan) -> str:
    return str(span.resource.attributes.get("service.name"))


def _context(trace_id: bytes, span_id: bytes) -> SpanContext:
    return SpanContext(
        int.from_bytes(trace_id, "big"), int.from_bytes(span_id, "big"), True, TraceFlags(TraceFlags.SAMPLED)
    )


def _span(span: Any, resource: Resource) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=_context(span.trace_id, span.span_id),
        parent=_context(span.trace_id, span.parent_span_id) if span.parent_span_id else None,
        resource=resource,
        attributes={a.key: _value(a.value) for a in span.attributes},
        links=[Link(_context(link.trace_id, link.span_id)) for link in span.links],
        start_time=span.start_time_unix_nano,
        end_time=span.end_time_unix_nano,
    )


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    return getattr(value, kind) if kind else None


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            receiver.receive(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
