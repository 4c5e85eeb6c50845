"""Cases a mutation run showed the rest of the suite did not pin down, in the safety core:
egress forms, argument boundaries, the signature's exact value, the body cap's edges.
(See tests/MUTATION.md; every test here kills mutants that survived before it.)"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import logging
import ssl
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from readme import readme_verify

from bot.actions.models import (
    MAX_STRING_ARGUMENT,
    Action,
    Method,
    Parameter,
    ParameterType,
    parse_arguments,
)
from bot.errors import ArgumentError, ConfigError
from bot.outbound import signing
from bot.outbound.body import CallFailed, Ending, interpret, read_capped
from bot.outbound.egress import EgressPolicy, blocked_reason, embedded_ipv4
from bot.outbound.pinning import PinnedBackend, Refused
from bot.outbound.signing import SigningKey, parse_keys, signed_headers
from bot.outbound.webhooks import USER_AGENT, WebhookClient
from bot.types import Outcome
from fakes.https_server import WebhookServer

REPO = Path(__file__).resolve().parent.parent

# --- the signature: a known answer ---------------------------------------------------------

KEY = b"whsec-known-answer"
TIMESTAMP = "1700000000"
BODY = b'{"part_name":"screen"}'
TARGET = "/inventory/check?part=screen"
CALLER = "platform=slack; team=T1; user=U1; channel=C1"
SIGNATURE = "v2=4ca911b4672b8a91a541d0fe0e289969f1df14920174d9f4db45118cd73bb102"
"""HMAC-SHA256 under KEY of "v2\n1700000000\nPOST\n{TARGET}\n{CALLER}\nkey-1\n{BODY}",
computed independently (`printf … | openssl dgst -sha256 -hmac …`): receivers verify against
exactly this format, so any change to it breaks every one of them."""
HEADERS = {
    "X-ActionBot-Timestamp": TIMESTAMP,
    "X-ActionBot-Key-Id": "k1",
    "X-ActionBot-Signature": SIGNATURE,
    "X-ActionBot-Caller": CALLER,
    "Idempotency-Key": "key-1",
}
FOREVER = 10**12


def test_signature_known_answer() -> None:
    """The signer produces the documented value for a fixed key and request."""
    headers = signed_headers(
        SigningKey("k1", KEY),
        method="post",
        target=TARGET,
        caller=CALLER,
        idempotency_key="key-1",
        body=BODY,
        now=int(TIMESTAMP),
    )
    assert headers == {
        k: v
        for k, v in HEADERS.items()
        if k.startswith("X-ActionBot-") and k != "X-ActionBot-Caller"
    }


@pytest.mark.parametrize("verify", ["readme", "library"])
def test_verifiers_accept_the_known_answer_and_refuse_each_tampering(verify: str) -> None:
    """The README snippet and `bot.outbound.signing.verify` accept the known vector and
    refuse a changed method, path, query, caller, key, body, key id, signature or an old
    timestamp."""
    check = readme_verify() if verify == "readme" else signing.verify
    url = f"https://api.example.com{TARGET}"
    secrets = {"k1": KEY}
    assert check(HEADERS, "POST", url, BODY, secrets, FOREVER)
    assert check(HEADERS, "POST", TARGET, BODY, secrets, FOREVER)  # path?query alone
    tampered = [
        (HEADERS, "GET", url, BODY),
        (HEADERS, "POST", url.replace("check", "checks"), BODY),
        (HEADERS, "POST", url.replace("screen", "battery"), BODY),
        (HEADERS | {"X-ActionBot-Caller": CALLER.replace("U1", "U2")}, "POST", url, BODY),
        (HEADERS | {"Idempotency-Key": "key-2"}, "POST", url, BODY),
        (HEADERS, "POST", url, BODY + b" "),
        (HEADERS | {"X-ActionBot-Key-Id": "k2"}, "POST", url, BODY),
        (HEADERS | {"X-ActionBot-Signature": SIGNATURE[:-1] + "0"}, "POST", url, BODY),
    ]
    for headers, method, where, body in tampered:
        assert not check(headers, method, where, body, secrets, FOREVER)
    malformed = [  # refused, never an exception
        HEADERS | {"X-ActionBot-Timestamp": "²"},
        HEADERS | {"X-ActionBot-Timestamp": "-1"},
        HEADERS | {"X-ActionBot-Signature": "v2=\u00e9" + SIGNATURE[4:]},
    ]
    for headers in malformed:
        assert not check(headers, "POST", url, BODY, secrets, FOREVER)
    # A target that starts with // is a path, not a host: it must not stand for /inventory.
    assert not check(HEADERS, "POST", "//api.example.com" + TARGET, BODY, secrets, FOREVER)
    for name in HEADERS:  # any header missing: refused, not an exception
        partial = {k: v for k, v in HEADERS.items() if k != name}
        assert not check(partial, "POST", url, BODY, secrets, FOREVER)
    assert not check(HEADERS, "POST", url, BODY, secrets)  # 2023: far outside 5 minutes


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://h.example/a/b?x=1&y=2", "/a/b?x=1&y=2"),
        ("https://h.example", "/"),
        ("https://h.example/a?", "/a"),
        ("/a?x=1?2", "/a?x=1?2"),
        ("//evil/x?y=1", "//evil/x?y=1"),
        ("/a", "/a"),
    ],
)
def test_the_signed_target_is_path_and_query_as_sent(url: str, target: str) -> None:
    """Only the first `?` starts the query; a `//` target stays a path."""
    assert signing.target_of(url) == target


def test_secrets_setting_parses_ids_in_order_and_names_bad_entries() -> None:
    """`id:secret,id:secret` in order (the first signs); a bad entry is named by position,
    never by its secret."""
    keys = parse_keys(" new:s2 , old:s1 ")
    assert [(k.id, k.secret) for k in keys] == [("new", b"s2"), ("old", b"s1")]
    with pytest.raises(ConfigError, match="entry 2 is not id:secret"):
        parse_keys("a:x, ,b")  # blank entries are skipped, not counted
    with pytest.raises(ConfigError, match="'a' is repeated"):
        parse_keys("a:x,a:y")
    for bad in ("nosecret", "a:x,b", "bad id:x", "a:x,a:y", ":x", "a: "):
        with pytest.raises(ConfigError, match="ACTIONBOT_WEBHOOK_SECRETS") as caught:
            parse_keys(bad)
        assert "x" not in str(caught.value).split("ACTIONBOT_WEBHOOK_SECRETS")[0]


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


@pytest.mark.parametrize("host", ["127.0.0.1.", "0x7f.1.", "[::1].", "10.0.0.1. "])
async def test_trailing_dot_literal_is_refused_at_connect_time_too(host: str) -> None:
    """The connect-time check reads `127.0.0.1.` as the literal it is, like the load-time
    check, and never asks DNS about it (the resolver here would answer a public address)."""

    async def public(name: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address("8.8.8.8")]

    backend = PinnedBackend(policy=EgressPolicy(), resolver=public)
    with pytest.raises(Refused):
        await backend.checked_addresses(host, 443)
    assert EgressPolicy().host_problem(host) is not None


def test_a_literal_host_is_named_once_a_name_with_its_address() -> None:
    """`127.0.0.1 is …` for a literal; `api.internal (10.0.0.5) is …` for a resolved name."""
    policy = EgressPolicy()
    assert policy.host_problem("127.0.0.1") == (
        "127.0.0.1 is a loopback address; outbound calls may only reach public addresses"
    )
    assert policy.address_problem("api.internal", ipaddress.ip_address("10.0.0.5")) == (
        "api.internal (10.0.0.5) is a private or special-purpose address; "
        "outbound calls may only reach public addresses"
    )


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
    ("given", "expected"),
    [
        ("5", 5),
        (5.0, 5),
        ("2.5", 2.5),
        (-3, -3),
        ("1e3", 1000),
        (2.0**53 - 1, 2**53 - 1),  # the largest whole number a float holds exactly
        (2.0**53, 2.0**53),  # beyond it a float stays a float: no false precision
        (2.0**53 + 2, 2.0**53 + 2),
    ],
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


# --- arguments: what the model is told, word for word --------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "told"),
    [
        (ParameterType.NUMBER, '{"v": "NaN"}', "'v' must be a finite number, got \"NaN\""),
        (ParameterType.NUMBER, '{"v": "inf"}', "'v' must be a finite number, got \"inf\""),
        (ParameterType.NUMBER, '{"v": "five"}', "'v' must be a number, got \"five\""),
        (ParameterType.NUMBER, '{"v": true}', "'v' must be a number, got true"),
        (ParameterType.NUMBER, '{"v": [1]}', "'v' must be a number, got [1]"),
        (ParameterType.STRING, '{"v": {"a": 1}}', "'v' must be text, got {\"a\": 1}"),
        (ParameterType.STRING, '{"v": false}', "'v' must be text, got false"),
        (ParameterType.BOOLEAN, '{"v": "perhaps"}', "'v' must be true or false, got \"perhaps\""),
        (ParameterType.BOOLEAN, '{"v": 2}', "'v' must be true or false, got 2"),
        (
            ParameterType.BOOLEAN,
            '{"v": "' + "y" * 50 + '"}',
            "'v' must be true or false, got \"" + "y" * 39 + "…",
        ),
        (ParameterType.STRING, "{not json", "the arguments were not valid JSON"),
        (ParameterType.STRING, "[1, 2]", "the arguments must be a JSON object"),
        (
            ParameterType.STRING,
            '{"v": "x", "w": 1}',
            "unknown parameter 'w' (this action takes: v)",
        ),
        (ParameterType.STRING, '{"v": "   "}', "'v' is required (v)"),
    ],
)
def test_the_model_is_told_exactly_what_is_wrong(kind: ParameterType, raw: str, told: str) -> None:
    """Each refusal names the parameter and the value it got, in words the model can act
    on (the customer is then asked; the endpoint is never called)."""
    with pytest.raises(ArgumentError) as caught:
        parse_arguments(_action(kind), raw)
    assert caught.value.problems == [told]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (5, "5"),
        (5.0, "5"),
        (200.0, "200"),
        (-2, "-2"),
        (2.5, "2.5"),
        (1e20, "1e+20"),
        (2.0**53, "9007199254740992.0"),
        (2.0**53 - 1, "9007199254740991"),
    ],
)
def test_numbers_given_for_text_are_written_plainly(given: object, sent: str) -> None:
    """A number where text is expected becomes its plain spelling (5.0 → "5"), and huge
    floats keep their exact repr rather than a rounded integer."""
    assert parse_arguments(_action(ParameterType.STRING), {"v": given})["v"] == sent


def test_empty_or_blank_argument_text_means_no_arguments() -> None:
    """`""` and `"  "` are an empty object: a required parameter is then reported missing."""
    for raw in ("", "  "):
        with pytest.raises(ArgumentError) as caught:
            parse_arguments(_action(ParameterType.STRING), raw)
        assert caught.value.problems == ["'v' is required (v)"]


async def test_post_body_is_compact_utf8_json_and_signed_as_sent(
    webhook_server: WebhookServer, client_ssl_context: ssl.SSLContext
) -> None:
    """The JSON body is compact and UTF-8 (not \\u-escaped), and the signature covers
    exactly those bytes: a receiver verifying the raw body agrees."""
    action = Action(
        name="a",
        display_name="A",
        description="d",
        url=webhook_server.url("/order"),
        method=Method.POST,
        parameters=[
            Parameter(name="name", type=ParameterType.STRING, description="n", required=True),
            Parameter(name="n", type=ParameterType.NUMBER, description="n", required=True),
        ],
    )
    async with WebhookClient(
        policy=EgressPolicy(["127.0.0.1/32"]),
        ssl_context=client_ssl_context,
        secret=SecretStr(KEY.decode()),
    ) as client:
        result = await client.call(action, {"name": "café", "n": 2})
    assert result.outcome is Outcome.SUCCESS
    [request] = webhook_server.requests
    assert request.body == '{"name":"café","n":2}'.encode()
    url = webhook_server.url(request.path)
    assert readme_verify()(request.headers, "POST", url, request.body, {"default": KEY})


# --- judging the response ------------------------------------------------------------------


def test_only_2xx_is_success() -> None:
    """299 with JSON is success, 300 with the same JSON is an http_error; statuses are kept."""
    assert interpret(299, b'{"ok": 1}') == Ending(Outcome.SUCCESS, status=299, data={"ok": 1})
    ending = interpret(300, b'{"ok": 1}')
    assert (ending.outcome, ending.status, ending.data, ending.text) == (
        Outcome.HTTP_ERROR,
        300,
        {"ok": 1},
        None,
    )
    assert ending.error == "HTTP 300 Multiple Choices"


def test_failure_bodies_keep_text_only_when_not_json() -> None:
    """A JSON error body is data, not text; an empty one is neither; a non-JSON 2xx keeps
    its text (bad bytes replaced) with the status; an unknown status has no trailing space."""
    assert interpret(500, b"").text is None
    assert interpret(404, b'{"error": "nope"}').text is None
    bad = interpret(200, b"caf\xe9 <html>")
    assert (bad.outcome, bad.status, bad.text) == (
        Outcome.INVALID_RESPONSE,
        200,
        "caf\ufffd <html>",
    )
    assert interpret(599, b"").error == "HTTP 599"


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("identity", lambda b: b),
        ("Identity ", lambda b: b),
        ("x-gzip", gzip.compress),
        ("GZIP", gzip.compress),
        ("deflate", zlib.compress),
        ("Deflate", zlib.compress),
    ],
)
async def test_every_encoding_we_accept_is_read(encoding: str, pack: Any) -> None:
    """identity, gzip, x-gzip and deflate (any case) are read within the cap."""
    body = b'{"in_stock": true}'
    got = await read_capped(
        _chunks(pack(body)), headers={"Content-Encoding": encoding}, status=200, cap=100
    )
    assert got == body


async def test_an_encoding_we_do_not_read_is_refused_with_its_status() -> None:
    """A body compressed with brotli is refused by name, keeping the response's status."""
    with pytest.raises(CallFailed) as caught:
        await read_capped(_chunks(b"x"), headers={"Content-Encoding": "br"}, status=203, cap=9)
    assert caught.value.ending.status == 203
    assert caught.value.ending.error == (
        "the endpoint sent a body compressed with 'br', which ActionBot does not read"
    )


async def test_cap_sizes_are_named_exactly() -> None:
    """The cap is named in KiB or MiB only when it is a whole number of them."""
    for cap, named in ((1500, "1500 bytes"), (2048, "2 KiB"), (3 * 1024 * 1024, "3 MiB")):
        with pytest.raises(CallFailed) as caught:
            await read_capped(_chunks(b"x" * (cap + 1)), headers={}, status=200, cap=cap)
        assert caught.value.ending.error == f"the response is larger than {named}"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("::", "the unspecified address"),
        ("64:ff9b:1::1", "a local-use NAT64 address (64:ff9b:1::/48)"),
        ("::1", "a loopback address"),
        ("fe80::1", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("fd00::1", "a unique-local (private) address"),
        ("ff02::1", "a multicast address"),
        ("4000::1", "a reserved address"),
        ("2001:db8::1", "not a public address"),
        ("0.0.0.0", "a 'this network' (0.0.0.0/8) address"),  # noqa: S104 - a refused address
        ("127.0.0.1", "a loopback address"),
        ("169.254.169.254", "a link-local address (this includes cloud metadata services)"),
        ("100.64.0.1", "a carrier-grade NAT (100.64.0.0/10) address"),
        ("10.0.0.1", "a private or special-purpose address"),
        ("224.0.0.1", "a multicast address"),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_each_blocked_range_is_named(address: str, reason: str | None) -> None:
    """The refusal says which kind of address it is (the admin reads it in stats and in
    `actions test`); public addresses have no reason."""
    assert blocked_reason(ipaddress.ip_address(address)) == reason


async def test_exactly_these_headers_are_sent(
    webhook_server: WebhookServer, client_ssl_context: ssl.SSLContext
) -> None:
    """A GET carries exactly Host, User-Agent, Accept, `Accept-Encoding: identity` (so the
    cap counts what is held), Idempotency-Key and X-ActionBot-Caller, plus the action's own
    headers."""
    action = Action(
        name="a",
        display_name="A",
        description="d",
        url=webhook_server.url("/x"),
        header_values={"X-Shop": SecretStr("7")},
    )
    async with WebhookClient(
        policy=EgressPolicy(["127.0.0.1/32"]), ssl_context=client_ssl_context
    ) as client:
        result = await client.call(action, {}, call_id="k-1", caller=CALLER)
    assert result.outcome is Outcome.SUCCESS
    [request] = webhook_server.requests
    assert {name.lower(): value for name, value in request.headers.items()} == {
        "host": f"127.0.0.1:{webhook_server.port}",
        "user-agent": USER_AGENT,
        "accept": "application/json",
        "accept-encoding": "identity",
        "idempotency-key": "k-1",
        "x-actionbot-caller": CALLER,
        "x-shop": "7",
    }


async def test_an_unexpected_exception_is_an_error_result_and_a_warning(
    client_ssl_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    """Something no one planned for (here the resolver itself breaking) ends the call as
    `error` naming only the exception's type, and the operator gets a warning with the trace."""

    async def broken(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        raise RuntimeError("resolver bug with a secret-ish detail")

    action = Action(name="lookup", display_name="L", description="d", url="https://shop.example/x")
    async with WebhookClient(
        policy=EgressPolicy(), ssl_context=client_ssl_context, resolver=broken
    ) as client:
        with caplog.at_level(logging.WARNING, logger="bot.outbound.webhooks"):
            result = await client.call(action, {})
    assert result.outcome is Outcome.ERROR
    assert result.error == "the call failed (RuntimeError)"
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == "webhook lookup failed unexpectedly"
    assert record.exc_info is not None


async def test_each_call_is_logged_once_with_its_facts(
    webhook_server: WebhookServer,
    client_ssl_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One INFO line per call: action, outcome, status, latency, call id and error; the
    latency is milliseconds to one decimal, and measures the call."""

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.2)
        return web.json_response({"ok": True})

    webhook_server.route("/slow", slow)
    action = Action(name="a", display_name="A", description="d", url=webhook_server.url("/slow"))
    async with WebhookClient(
        policy=EgressPolicy(["127.0.0.1/32"]), ssl_context=client_ssl_context
    ) as client:
        with caplog.at_level(logging.INFO, logger="bot.outbound.webhooks"):
            results = [await client.call(action, {}, call_id=f"id-{n}") for n in range(3)]
    for result in results:
        assert 150 <= result.latency_ms < 5000
        assert round(result.latency_ms, 1) == result.latency_ms
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0] == (
        f"webhook a: success status=200 latency_ms={results[0].latency_ms:.0f} "
        "attempts=1 call_id=id-0 error=None"
    )
