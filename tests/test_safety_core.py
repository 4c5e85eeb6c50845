"""Cases a mutation run showed the rest of the suite did not pin down, in the safety core:
egress forms, argument boundaries, the signature's exact value, the body cap's edges.
(See tests/MUTATION.md; every test here kills mutants that survived before it.)"""

from __future__ import annotations

import gzip
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.actions.models import (
    MAX_STRING_ARGUMENT,
    Action,
    Method,
    Parameter,
    ParameterType,
    parse_arguments,
)
from bot.errors import ArgumentError
from bot.outbound.body import CallFailed, read_capped
from bot.outbound.egress import EgressPolicy, blocked_reason, embedded_ipv4
from bot.outbound.pinning import PinnedBackend, Refused
from bot.outbound.webhooks import WebhookClient, sign
from bot.types import Outcome
from fakes.https_server import WebhookServer

REPO = Path(__file__).resolve().parent.parent

# --- the signature: a known answer ---------------------------------------------------------

KEY = b"whsec-known-answer"
TIMESTAMP = "1700000000"
BODY = b'{"part_name":"screen"}'
SIGNATURE = "v1=6a4ef39baf6a5aefd27d9ff90259732bcb06a9afac6ca9f0ed04ca1b4fcb9bb8"
"""HMAC-SHA256 of `1700000000.{"part_name":"screen"}` under KEY, computed independently:
receivers verify against exactly this format, so any change to it breaks every one of them."""


def test_signature_known_answer() -> None:
    """`sign` produces the documented value for a fixed key, timestamp and body."""
    assert sign(KEY, TIMESTAMP, BODY) == SIGNATURE
    assert sign(KEY, TIMESTAMP, b"") != sign(KEY, TIMESTAMP, BODY)


def test_readme_receiver_snippet_accepts_the_known_answer() -> None:
    """The Python `verify` in README's "Verifying calls" accepts the known vector and
    rejects a changed body, a changed signature and an old timestamp."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Verifying calls on your endpoint") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(code.group(1), namespace)  # noqa: S102 - the README's own sample, run as documented
    verify = namespace["verify"]
    assert callable(verify)
    headers = {"X-ActionBot-Timestamp": TIMESTAMP, "X-ActionBot-Signature": SIGNATURE}
    forever = 10**12
    assert verify(KEY, headers, BODY, tolerance=forever)
    assert not verify(KEY, headers, BODY + b" ", tolerance=forever)
    assert not verify(KEY, headers | {"X-ActionBot-Signature": SIGNATURE[:-1] + "0"}, BODY, forever)
    assert not verify(KEY, headers, BODY)  # 2023: far outside the default 5 minutes


# --- egress: hidden addresses and spellings -----------------------------------------------


@pytest.mark.parametrize(
    ("address", "hidden"),
    [
        ("2001:0:5ef5:79fd::80ff:fffe", "127.0.0.1"),  # Teredo: client bits are inverted
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),
        ("2002:7f00:1::1", "127.0.0.1"),  # 6to4
        ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ("::ffff:10.0.0.1", "10.0.0.1"),  # IPv4-mapped
        ("64:ff9b::a00:1", "10.0.0.1"),  # NAT64
    ],
)
def test_ipv6_forms_that_hide_a_private_ipv4_are_blocked(address: str, hidden: str) -> None:
    """Teredo, 6to4, mapped and NAT64 addresses are judged by the IPv4 address inside (the
    client's, for Teredo, not its server's), so none can smuggle a private one through."""
    addr = ipaddress.ip_address(address)
    assert str(embedded_ipv4(addr)) == hidden
    reason = blocked_reason(addr)
    assert reason is not None
    assert f"embeds {hidden}" in reason
    assert EgressPolicy().host_problem(f"[{address}]") is not None


def test_teredo_hiding_a_public_address_is_judged_by_it() -> None:
    """A Teredo address whose client is public (8.8.8.8) is not refused for its embedding."""
    addr = ipaddress.ip_address("2001:0:5ef5:79fd::f7f7:f7f7")
    assert str(embedded_ipv4(addr)) == "8.8.8.8"
    assert blocked_reason(addr) is None


@pytest.mark.parametrize("host", ["127.0.0.1.", "localhost.", "0x7f.1.", "[::1]."])
async def test_trailing_dot_is_refused_at_connect_time_too(host: str) -> None:
    """The connect-time check strips a trailing dot like the load-time check does."""

    async def resolve(name: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address("127.0.0.1")]

    backend = PinnedBackend(policy=EgressPolicy(), resolver=resolve)
    with pytest.raises(Refused):
        await backend.checked_addresses(host, 443)
    assert EgressPolicy().host_problem(host) is not None


@pytest.mark.parametrize(
    ("entry", "allowed", "refused"),
    [
        ("0x7f.1", "127.0.0.1", "127.0.0.2"),  # an odd literal is an address, not a host name
        ("10.1.2.3/16", "10.1.200.7", "10.2.0.1"),  # a non-strict network is its network
        ("[::1]", "::1", "::2"),
    ],
)
def test_allow_list_entries_in_odd_spellings_are_networks(
    entry: str, allowed: str, refused: str
) -> None:
    """An allow-list entry written as an odd literal or a non-strict CIDR allows exactly
    those addresses; it never silently becomes a host name that allows nothing."""
    policy = EgressPolicy([entry])
    assert policy.hosts == set()
    assert policy.address_problem("api.internal", ipaddress.ip_address(allowed)) is None
    assert policy.address_problem("api.internal", ipaddress.ip_address(refused)) is not None


# --- arguments: boundaries -----------------------------------------------------------------


def _action(kind: ParameterType) -> Action:
    return Action(
        name="a",
        display_name="A",
        description="d",
        url="https://api.example.com/a",
        method=Method.POST,
        parameters=[Parameter(name="v", type=kind, description="v", required=True)],
    )


@pytest.mark.parametrize(("given", "expected"), [(1, True), (0, False), (True, True)])
def test_booleans_accept_one_and_zero(given: object, expected: bool) -> None:
    """1 and 0 are booleans (models send them); the result is a real bool."""
    value = parse_arguments(_action(ParameterType.BOOLEAN), {"v": given})["v"]
    assert value is expected


@pytest.mark.parametrize("given", [5, -1, 2, 1.0, "maybe"])
def test_other_integers_are_not_booleans(given: object) -> None:
    """5, -1 or 2 are not booleans: the model is told, the endpoint is not called."""
    with pytest.raises(ArgumentError, match="must be true or false"):
        parse_arguments(_action(ParameterType.BOOLEAN), {"v": given})


@pytest.mark.parametrize(
    ("given", "expected"), [("5", 5), (5.0, 5), ("2.5", 2.5), (-3, -3), ("1e3", 1000)]
)
def test_whole_numbers_stay_integers_in_the_body(given: object, expected: object) -> None:
    """A whole number is sent as an integer (`5`, not `5.0`): many endpoints reject 5.0."""
    value = parse_arguments(_action(ParameterType.NUMBER), {"v": given})["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_string_limit_is_exactly_two_thousand_characters() -> None:
    """2000 characters pass; 2001 are refused with both numbers named."""
    action = _action(ParameterType.STRING)
    assert MAX_STRING_ARGUMENT == 2000
    assert len(str(parse_arguments(action, {"v": "x" * 2000})["v"])) == 2000
    with pytest.raises(ArgumentError, match=r"too long \(2001 characters; at most 2000\)"):
        parse_arguments(action, {"v": "x" * 2001})


# --- the body cap: its edges ----------------------------------------------------------------


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("size", [99, 100])
async def test_body_at_or_under_the_cap_is_read_whole(size: int) -> None:
    """Exactly the cap, and one byte under it, are read whole (plain and gzip)."""
    body = b"x" * size
    assert await read_capped(_chunks(body[:7], body[7:]), headers={}, status=200, cap=100) == body
    packed = gzip.compress(body)
    inflated = await read_capped(
        _chunks(packed[:5], packed[5:]), headers={"Content-Encoding": "gzip"}, status=200, cap=100
    )
    assert inflated == body


async def test_one_byte_over_the_cap_is_refused() -> None:
    """cap + 1 bytes, plain or inflated, are refused without reading on."""
    with pytest.raises(CallFailed) as plain:
        await read_capped(_chunks(b"x" * 101), headers={}, status=200, cap=100)
    assert plain.value.ending.error == "the response is larger than 100 bytes"
    packed = gzip.compress(b"x" * 101)
    with pytest.raises(CallFailed):
        await read_capped(
            _chunks(packed), headers={"Content-Encoding": "gzip"}, status=200, cap=100
        )


async def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    """A Content-Length over the cap ends the call before any byte is read."""

    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read")
        yield b""  # pragma: no cover - makes this a generator

    with pytest.raises(CallFailed, match="larger than 1 KiB"):
        await read_capped(never(), headers={"Content-Length": "1025"}, status=200, cap=1024)
    assert await read_capped(
        _chunks(b"ok"), headers={"Content-Length": "1024"}, status=200, cap=1024
    )


async def test_corrupt_gzip_is_an_invalid_response() -> None:
    """A body that claims gzip but is not: `invalid_response` with a plain message."""
    with pytest.raises(CallFailed) as caught:
        await read_capped(
            _chunks(b"\x1f\x8b not really gzip"),
            headers={"Content-Encoding": "gzip"},
            status=200,
            cap=100,
        )
    assert caught.value.ending.outcome is Outcome.INVALID_RESPONSE
    assert "could not be decompressed" in (caught.value.ending.error or "")


async def test_an_unexpected_failure_is_an_error_outcome_not_a_crash(
    webhook_server: WebhookServer, client_ssl_context: ssl.SSLContext
) -> None:
    """A header value HTTP cannot carry (only possible if the loader were bypassed) ends as
    an `error` result naming the header, and the endpoint is never called."""
    action = Action(
        name="a",
        display_name="A",
        description="d",
        url=webhook_server.url("/x"),
        header_values={"X-Token": "line\nbreak"},
    )
    async with WebhookClient(
        policy=EgressPolicy(["127.0.0.1/32"]), ssl_context=client_ssl_context
    ) as client:
        result = await client.call(action, {})
    assert result.outcome is Outcome.ERROR
    assert result.error == "header X-Token has a value HTTP cannot carry"
    assert webhook_server.requests == []
