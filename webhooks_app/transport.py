"""One webhook request: POST the body to an address that was checked, with short timeouts, no redirects, and only
an excerpt of the answer read.

urllib3 connects to the checked IP address while TLS verifies the certificate for the URL's host name (SNI and
hostname check) and the Host header names it: the name is resolved once, by addresses.checked_addresses(), never
again by the HTTP client. A connection refused or timed out on one address tries the next; any answer ends the
attempt. Redirects are answers like any other non-2xx status: not followed.
"""

import time
from dataclasses import dataclass, replace

import urllib3
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError, SSLError

from webhooks_app.addresses import AddressRefused, Resolver, Target, checked_addresses, system_resolver

MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Exchange:
    """What one attempt got: a status code and the start of the body, or why there was none."""

    outcome: str  # a WebhookAttempt.Outcome value
    status_code: int | None = None
    address: str = ""
    error: str = ""
    response_excerpt: str = ""
    duration_ms: int = 0

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


def connect_timeout() -> float:
    return min(settings.WEBHOOKS_CONNECT_TIMEOUT_SECONDS, settings.WEBHOOKS_TIMEOUT_SECONDS)


def post(target: Target, body: bytes, headers: dict[str, str], *, resolve: Resolver = system_resolver) -> Exchange:
    started = time.monotonic()
    exchange = _exchange(target, body, headers, resolve)
    return replace(exchange, duration_ms=int((time.monotonic() - started) * 1000))


def _exchange(target: Target, body: bytes, headers: dict[str, str], resolve: Resolver) -> Exchange:
    try:
        addresses = checked_addresses(target.host, target.port, resolve)
    except AddressRefused as refused:
        return Exchange("address_refused", error=_short(refused))
    error: Exception | None = None
    for address in addresses:
        pool = _pool(target, address)
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": target.host_header},
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                excerpt = response.read(settings.WEBHOOKS_RESPONSE_EXCERPT_BYTES)
            except (ReadTimeoutError, HTTPError, OSError):
                excerpt = b""  # the status is what counts; a body that stalls is not waited for
            finally:
                response.release_conn()
            outcome = "delivered" if 200 <= response.status < 300 else "http_error"
            return Exchange(
                outcome,
                status_code=response.status,
                address=address,
                response_excerpt=excerpt.decode("utf-8", errors="replace"),
                error="" if outcome == "delivered" else f"HTTP {response.status}",
            )
        except (NewConnectionError, ConnectTimeoutError) as refused:
            error = refused  # try the next address
        except ReadTimeoutError as timed_out:
            return Exchange("timeout", address=address, error=_short(timed_out))
        except SSLError as tls:
            return Exchange("tls_error", address=address, error=_short(tls))
        except (HTTPError, OSError) as broken:
            return Exchange("connection_error", address=address, error=_short(broken))
        finally:
            pool.close()
    unanswered = isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError)
    return Exchange("timeout" if unanswered else "connection_error", address=", ".join(addresses), error=_short(error))


def _pool(target: Target, address: str) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=connect_timeout(), read=settings.WEBHOOKS_TIMEOUT_SECONDS)
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1)
    return urllib3.HTTPSConnectionPool(
        address,
        target.port,
        timeout=timeout,
        retries=False,
        maxsize=1,
        cert_reqs="CERT_REQUIRED",
        ca_certs=settings.WEBHOOKS_CA_BUNDLE or None,
        server_hostname=target.host,
        assert_hostname=target.host,
    )


def _short(error: object) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_LENGTH]
