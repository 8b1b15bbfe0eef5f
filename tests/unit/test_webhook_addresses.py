"""Where webhooks may go: public addresses only, judged on every address a name resolves to (no DNS is asked here:
the resolver is given)."""

import ipaddress

import pytest

from webhooks_app.addresses import (
    AddressRefused,
    checked_addresses,
    is_public,
    parse_target,
    refuse_private_host,
    url_problems,
)

NOT_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "ff02::1",
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_loopback_link_local_and_embedded_private_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_global_unicast_addresses_are_public(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.0.0.8", "[::1]", "localhost", "LOCALHOST.", "api.localhost", "db", "printer.local", "x.internal"],
)
def test_registration_refuses_hosts_that_are_private_by_construction(settings, host):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(AddressRefused):
        refuse_private_host(parse_target(f"https://{host}/hooks").host)


def test_registration_accepts_public_addresses_and_dotted_names_without_asking_dns(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    for url in ("https://93.184.215.14/hooks", "https://hooks.example.com/x", "https://[2606:4700:4700::1111]:8443/"):
        refuse_private_host(parse_target(url).host)


def test_the_setting_lifts_the_refusal(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    refuse_private_host("127.0.0.1")
    assert checked_addresses("hooks.test", 443, lambda host, port: ["10.0.0.1"]) == ["10.0.0.1"]


@pytest.mark.parametrize(
    ("url", "allow_private", "problem"),
    [
        ("http://hooks.example.com/x", False, "https"),
        ("ftp://hooks.example.com/x", True, "https"),
        ("https://user:pass@hooks.example.com/x", False, "credentials"),
        ("https://hooks.example.com/x#frag", False, "fragment"),
        ("https:///x", False, "host"),
        ("https://hooks.example.com:99999/x", False, "valid URL"),
        ("https://hooks.example.com/a b", False, "spaces"),
    ],
)
def test_urls_unfit_for_an_endpoint_are_named(settings, url, allow_private, problem):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = allow_private
    assert any(problem in text for text in url_problems(url))


def test_plain_http_is_allowed_only_with_private_networks(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    assert url_problems("http://127.0.0.1:8080/hooks") == []
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    assert url_problems("https://hooks.example.com/x?a=1") == []


def test_a_name_is_refused_when_any_address_it_resolves_to_is_private(settings):
    # given: a name answering with a public and a private address (the rebinding trick)
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False

    def resolver(host, port):
        return ["93.184.215.14", "169.254.169.254"]

    # when / then
    with pytest.raises(AddressRefused, match=r"169\.254\.169\.254"):
        checked_addresses("hooks.example.com", 443, resolver)


def test_a_name_that_resolves_to_public_addresses_only_gives_those_addresses_to_connect_to(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    assert checked_addresses("hooks.example.com", 443, lambda h, p: ["93.184.215.14", "2606:4700::1"]) == [
        "93.184.215.14",
        "2606:4700::1",
    ]


def test_a_name_that_does_not_resolve_is_refused(settings):
    def resolver(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(AddressRefused, match="does not resolve"):
        checked_addresses("nowhere.example.com", 443, resolver)


def test_the_host_header_names_the_url_host_and_a_non_default_port():
    assert parse_target("https://hooks.example.com/a?b=1").host_header == "hooks.example.com"
    assert parse_target("https://hooks.example.com:8443/a").host_header == "hooks.example.com:8443"
    assert parse_target("http://[::1]:9000/").host_header == "[::1]:9000"
    assert parse_target("https://hooks.example.com/a?b=1").path == "/a?b=1"
