"""A real HTTP(S) receiver of webhooks on 127.0.0.1, for the tests: it records every request it gets and answers as
the test tells it (by default: fail the first delivery of each webhook-id, accept the retries)."""

import http.server
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    host: str
    status: int


Answer = Callable[["Receiver", dict[str, str], bytes], int]


def fail_first_of_each(receiver: "Receiver", headers: dict[str, str], body: bytes) -> int:
    earlier = [r for r in receiver.received if r.headers.get("webhook-id") == headers.get("webhook-id")]
    return 200 if earlier else 500


def always(status: int) -> Answer:
    return lambda receiver, headers, body: status


@dataclass
class Receiver:
    answer: Answer = fail_first_of_each
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str = "/hooks", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def deliveries(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def accepted(self) -> list[Received]:
        return [r for r in self.deliveries() if 200 <= r.status < 300]

    def wait_for(self, probe: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe(self.deliveries()):
                return self.deliveries()
            time.sleep(0.05)
        raise AssertionError(f"the receiver did not get what was expected within {timeout}s: {self.deliveries()}")


def _handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if receiver.delay_seconds:
                time.sleep(receiver.delay_seconds)
            with receiver.lock:
                status = receiver.answer(receiver, headers, body)
                receiver.received.append(Received(self.path, headers, body, headers.get("host", ""), status))
            reply = b'{"ok": true}' if status < 300 else b"x" * 5000
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(
    receiver: Receiver | None = None, *, certificate: tuple[Path, Path] | None = None
) -> Iterator[Receiver]:
    """A receiver served from a thread of the test process; https with `certificate` (cert, key)."""
    receiver = receiver or Receiver()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        receiver.scheme = "https"
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate for `host` (and its key), made with openssl; trust it with WEBHOOKS_CA_BUNDLE."""
    cert, key = directory / f"{host}.pem", directory / f"{host}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=DNS:{host}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
