"""A small HTTP client for the service's API on 127.0.0.1 (standard library only), and a paced load driver."""

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Api:
    port: int
    token: str
    timeout: float = 10.0

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        """One request on a new connection (gunicorn's sync workers close it after each answer anyway)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            payload = None if body is None else json.dumps(body)
            all_headers = {"Authorization": f"Token {self.token}", **(headers or {})}
            if payload is not None:
                all_headers["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            raw = response.read()
        except http.client.HTTPException as error:
            # A server killed mid-answer (IncompleteRead, RemoteDisconnected...): a connection failure like any other.
            raise ConnectionError(f"{type(error).__name__}: {error}") from error
        finally:
            connection.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)

    def command(self, name: str, body: Any, *, key: str | None = None, correlation_id: str | None = None) -> Answer:
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        if correlation_id:
            headers["X-Correlation-ID"] = correlation_id
        return self.request("POST", f"/api/commands/{name}", body, headers)


@dataclass
class Paced:
    """Calls `send` at a steady rate from a pool of threads, for a bounded time; counts what came back."""

    rate: float
    seconds: float
    send: Callable[[int], bool]
    threads: int = 32
    sent: int = 0
    ok: int = 0
    late: int = 0
    elapsed: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        total = int(self.rate * self.seconds)
        start = time.monotonic() + 0.1
        slots = iter(range(total))

        def work() -> None:
            while True:
                with self._lock:
                    index = next(slots, None)
                if index is None:
                    return
                due = start + index / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.05:
                    with self._lock:
                        self.late += 1
                try:
                    succeeded = self.send(index)
                except OSError:
                    succeeded = False
                with self._lock:
                    self.sent += 1
                    self.ok += succeeded

        pool = [threading.Thread(target=work, daemon=True) for _ in range(self.threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=self.seconds + 120)
        self.elapsed = time.monotonic() - start
