"""The egress policy refuses every non-public destination form and allows what it is told."""

from __future__ import annotations

import ipaddress

import pytest

from bot.outbound.egress import EgressPolicy, parse_ip_literal

BLOCKED_HOSTS = [
    # loopback, in the encodings the C resolver accepts
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "0x7f.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "0177.0.0.1",
    "127.0.0.1.",
    "[::1]",
    # loopback hidden in IPv6 forms
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b::127.0.0.1]",
    "[64:ff9b:1:a00:1:0:808:808]",  # local-use NAT64: 10.0.1.0 behind an RFC 6052 /48 prefix
    "[64:ff9b:1::808:808]",
    "[2002:7f00:1::]",
    # this network, link-local, metadata, CGNAT
    "0.0.0.0",  # noqa: S104 - a host to refuse, not an address to bind
    "0",
    "[::]",
    "169.254.169.254",
    "[::ffff:169.254.169.254]",
    "[fe80::1]",
    "100.64.0.1",
    "100.127.255.254",
    # private, unique-local, multicast, reserved, special-purpose
    "10.0.0.1",
    "0xa.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "[::ffff:192.168.1.1]",
    "[fd00::1]",
    "[fc00::1]",
    "224.0.0.1",
    "[ff02::1]",
    "255.255.255.255",
    "240.0.0.1",
    "198.18.0.1",
    "192.0.2.1",
    "[2001:db8::1]",
    # names for this machine
    "localhost",
    "LOCALHOST",
    "localhost.",
    "foo.localhost",
    "localhost.localdomain",
    "ip6-localhost",
]

PUBLIC_HOSTS = [
    "8.8.8.8",
    "1.1.1.1",
    "[2606:4700::1]",
    "[::ffff:8.8.8.8]",
    "[64:ff9b::808:808]",
    "example.com",
    "api.yourshop.com",
    "localhost.example.com",
    "127.example.com",
]


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
def test_non_public_hosts_are_blocked(host: str) -> None:
    """Every non-public address form and local name is refused with a reason."""
    problem = EgressPolicy().host_problem(host)
    assert problem is not None
    assert "outbound calls may only reach public addresses" in problem


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_public_hosts_are_allowed(host: str) -> None:
    """Public literals (also IPv4-mapped and NAT64 ones) and ordinary names pass."""
    assert EgressPolicy().host_problem(host) is None


@pytest.mark.parametrize(
    ("literal", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("[::1]", "::1"),
    ],
)
def test_odd_literals_read_like_the_c_resolver(literal: str, address: str) -> None:
    """Legacy IPv4 spellings are read as the address the system would connect to."""
    assert parse_ip_literal(literal) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "0x", "08.0.0.1", "[::1"])
def test_names_are_not_literals(host: str) -> None:
    """Names and malformed numbers are not taken for addresses."""
    assert parse_ip_literal(host) is None


def allow() -> EgressPolicy:
    return EgressPolicy(["10.1.0.0/16", "127.0.0.1", "internal.corp", "localhost"])


@pytest.mark.parametrize(
    "host", ["10.1.2.3", "[::ffff:10.1.2.3]", "127.0.0.1", "0x7f000001", "localhost"]
)
def test_allow_list_exempts_what_it_names(host: str) -> None:
    """A CIDR entry allows its range (in any form); a single address and a name allow exactly
    themselves."""
    assert allow().host_problem(host) is None


@pytest.mark.parametrize(
    "host", ["10.2.0.1", "127.0.0.2", "[::1]", "192.168.1.1", "foo.localhost", "169.254.169.254"]
)
def test_allow_list_exempts_nothing_more(host: str) -> None:
    """Neighbouring ranges, other loopback addresses and other local names stay blocked."""
    assert allow().host_problem(host) is not None


def test_allowed_name_may_resolve_to_private_addresses() -> None:
    """A host name on the allow list may connect to private addresses; other names may not."""
    private = ipaddress.ip_address("192.168.5.5")
    assert allow().address_problem("internal.corp", private) is None
    assert allow().address_problem("INTERNAL.corp.", private) is None
    problem = allow().address_problem("other.corp", private)
    assert problem == (
        "other.corp (192.168.5.5) is a private or special-purpose address; "
        "outbound calls may only reach public addresses"
    )


def test_public_address_needs_no_allow_list() -> None:
    """A name resolving to a public address is allowed with an empty policy."""
    assert (
        EgressPolicy().address_problem("api.example.com", ipaddress.ip_address("8.8.8.8")) is None
    )
