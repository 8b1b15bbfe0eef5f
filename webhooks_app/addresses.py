"""Where webhooks may go: https URLs on public addresses, so an endpoint cannot aim the service at its own network.

Two checks. When an endpoint is registered, its URL is refused if it is not https, or if its host is an address
or a name that is not public by construction (an IP literal in a private, loopback, link-local... range;
localhost, a single-label name, .local, .internal). No DNS is asked then: a name can point anywhere later.
At every delivery, the name is resolved, every address it resolves to must be public, and the request connects to
an address that was checked (never resolving twice), so a name that changes its answer between the check and the
connection (DNS rebinding) cannot slip a private address in.

WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true lifts both (and allows http), for tests and private deployments.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet")


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address that is not public."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def private_networks_allowed() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS)


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local, shared, reserved, documentation or multicast.

    IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


def parse_target(url: str) -> Target:
    """The parts of a URL a delivery needs; ValueError when it is not an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an absolute http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path)


def url_problems(url: str) -> list[str]:
    """What makes a URL unfit for an endpoint, whatever it resolves to (empty when none)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port out of range)
    except ValueError:
        return ["It is not a valid URL."]
    problems = []
    allowed_schemes = ("https", "http") if private_networks_allowed() else ("https",)
    if parts.scheme not in allowed_schemes:
        problems.append("It must be an https URL.")
    if not parts.hostname:
        problems.append("It must name a host.")
    if parts.username is not None or parts.password is not None:
        problems.append("It must not carry credentials; verify the signature of each delivery instead.")
    if parts.fragment:
        problems.append("It must not have a fragment.")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        problems.append("It must not contain spaces or control characters.")
    return problems


def refuse_private_host(host: str) -> None:
    """At registration: refuse a host that is not public by construction (no DNS is asked)."""
    if private_networks_allowed():
        return
    name = host.rstrip(".").lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if name == "localhost" or "." not in name or name.endswith(LOCAL_SUFFIXES):
            raise AddressRefused(f"{host} names a local or private host.") from None
        return
    if not is_public(address):
        raise AddressRefused(f"{host} is not a public address.")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (IP literals come back as they are, with no DNS)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in found:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def checked_addresses(host: str, port: int, resolve: Resolver = system_resolver) -> list[str]:
    """At delivery: the addresses to connect to, every one of them public (unless private networks are allowed).

    Refuses the whole name when any address it resolves to is not public: a name that answers with a public and a
    private address is as dangerous as one that answers with the private one only.
    """
    try:
        addresses = resolve(host, port)
    except OSError as error:
        raise AddressRefused(f"{host} does not resolve: {error}") from error
    if not addresses:
        raise AddressRefused(f"{host} resolves to no address.")
    if not private_networks_allowed():
        refused = [a for a in addresses if not is_public(ipaddress.ip_address(a.split("%")[0]))]
        if refused:
            raise AddressRefused(f"{host} resolves to addresses that are not public: {', '.join(refused)}.")
    return addresses
