"""Outbound webhook calls against a real HTTPS server, through the real connection pool."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import logging
import socket
import ssl
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from conftest import make_settings
from pydantic import SecretStr
from readme import readme_verify

from bot.actions.models import Action, Arguments, Parameter, ParameterType, tool_schema
from bot.outbound.egress import EgressPolicy, IPAddress
from bot.outbound.webhooks import (
    USER_AGENT,
    WebhookClient,
    configured_keys,
    default_ssl_context,
)
from bot.types import ActionResult, Outcome
from fakes.https_server import (
    WebhookServer,
    body_handler,
    json_handler,
    redirect_handler,
)

MakeAction = Callable[..., Action]


def loopback() -> EgressPolicy:
    return EgressPolicy(["127.0.0.1/32"])


TOKEN = "Bearer sk-live-0123456789abcdef"
WEBHOOK_SECRET = "whsec-test-secret"
CALLER = "platform=slack; team=T1; user=U1; channel=C1"


class ListRecorder:
    """A real `CallRecorder`: keeps every result with the conversation it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[ActionResult, str | None]] = []

    async def record_call(
        self,
        result: ActionResult,
        *,
        conversation: str | None = None,
        event_key: str | None = None,
        caller: str = "",
        arguments: str | None = None,
    ) -> None:
        self.calls.append((result, conversation))


class BrokenRecorder:
    """A `CallRecorder` whose storage is down."""

    async def record_call(self, result: ActionResult, **where: object) -> None:
        raise RuntimeError("database is locked")


class ScriptedResolver:
    """Answers the n-th lookup with the n-th address list (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        answer = self.answers[min(len(self.lookups), len(self.answers) - 1)]
        self.lookups.append(host)
        return [ipaddress.ip_address(a) for a in answer]


class FailingResolver:
    """A resolver for which no name exists."""

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
def recorder() -> ListRecorder:
    return ListRecorder()


@pytest.fixture
async def client(
    client_ssl_context: ssl.SSLContext, recorder: ListRecorder
) -> AsyncIterator[WebhookClient]:
    """A client that may reach 127.0.0.1 and trusts the test CA."""
    async with WebhookClient(
        policy=loopback(), recorder=recorder, ssl_context=client_ssl_context
    ) as webhook_client:
        yield webhook_client


@pytest.fixture
async def other_server(ca: trustme.CA) -> AsyncIterator[WebhookServer]:
    """A second HTTPS fake: another origin (same address, another port)."""
    async with WebhookServer(ca) as server:
        yield server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- what arrives at the endpoint -------------------------------------------------------


async def test_query_string_arrives_exactly(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """GET arguments with spaces, unicode, & and = reach the server as sent, typed plainly."""
    flag = Parameter(name="flag", type=ParameterType.BOOLEAN, description="f")
    count = Parameter(name="n", type=ParameterType.NUMBER, description="n")
    action = make_action(webhook_server.url("/search"), parameters=["q", flag, count])
    arguments: Arguments = {"q": "a b&c=d/é ü?#", "flag": True, "n": 5}
    result = await client.call(action, arguments)
    assert result.outcome is Outcome.SUCCESS
    (request,) = webhook_server.requests
    assert (request.method, request.path, request.body) == ("GET", "/search", b"")
    assert request.query == {"q": "a b&c=d/é ü?#", "flag": "true", "n": "5"}
    assert result.data["query"] == request.query


async def test_post_sends_json_body(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """POST arguments arrive as one JSON object with Content-Type application/json."""
    action = make_action(webhook_server.url("/orders"), method="POST", parameters=["part"])
    result = await client.call(action, {"part": 'écran 15"'})
    (request,) = webhook_server.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {"part": 'écran 15"'}
    assert request.raw_query == ""
    assert result.data["json"] == {"part": 'écran 15"'}


async def test_standard_headers_are_sent(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """Every call carries User-Agent, Accept JSON and an Idempotency-Key equal to its call id."""
    result = await client.call(make_action(webhook_server.url("/h")), {})
    headers = webhook_server.requests[0].headers
    assert headers["User-Agent"] == USER_AGENT
    assert headers["Accept"] == "application/json"
    assert headers["Idempotency-Key"] == result.call_id
    assert "X-ActionBot-Signature" not in headers


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("../admin", "..%2Fadmin"),
        ("..", "%2E%2E"),
        ("a/b", "a%2Fb"),
        ("x?y=1#z", "x%3Fy%3D1%23z"),
        ("sp ace", "sp%20ace"),
    ],
)
async def test_path_placeholder_stays_one_segment(
    client: WebhookClient,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    value: str,
    segment: str,
) -> None:
    """A path value cannot climb, split the path or start a query: it is one encoded segment."""
    action = make_action(webhook_server.url("/items/{item}/stock"), parameters=["item"])
    result = await client.call(action, {"item": value})
    assert result.outcome is Outcome.SUCCESS
    (request,) = webhook_server.requests
    assert request.path == f"/items/{segment}/stock"
    assert request.raw_query == ""


async def test_secret_header_reaches_server_but_nothing_else(
    client: WebhookClient,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The secret header arrives, yet is absent from logs, tool schema, masked view and result."""
    caplog.set_level(logging.DEBUG)
    action = make_action(
        webhook_server.url("/secure"),
        headers={"Authorization": "${INVENTORY_TOKEN}"},
        header_values={"Authorization": TOKEN},
    )
    result = await client.call(action, {})
    assert webhook_server.requests[0].headers["Authorization"] == TOKEN
    assert "webhook test_action: success" in caplog.text
    secret = TOKEN.split()[1]
    assert secret not in caplog.text
    assert secret not in json.dumps(tool_schema(action))
    assert secret not in json.dumps(action.masked_headers())
    assert secret not in repr(action)
    assert secret not in result.model_dump_json()


async def test_invalid_header_value_is_refused_without_leaking_it(
    client: WebhookClient,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A header value with a line break is never sent, and the error does not quote it."""
    caplog.set_level(logging.DEBUG)
    action = make_action(webhook_server.url("/x"), headers={"X-Token": "abc\r\nX-Evil: 1"})
    result = await client.call(action, {})
    assert result.outcome is Outcome.ERROR
    assert "X-Token" in (result.error or "")
    assert "X-Evil" not in (result.error or "")
    assert "X-Evil" not in caplog.text
    assert webhook_server.requests == []


# --- signing and idempotency --------------------------------------------------------------


async def test_receiver_verifies_post_signature(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """README's verifier accepts a signed POST as it arrived (method, path, query, caller,
    key, body) and refuses it with the body changed or under another secret."""
    action = make_action(
        webhook_server.url("/signed?src=bot"), method="POST", parameters=["serial"]
    )
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, secret=SecretStr(WEBHOOK_SECRET)
    ) as client:
        await client.call(action, {"serial": "SN-42"}, caller=CALLER)
    request = webhook_server.requests[0]
    url = webhook_server.url(f"{request.path}?{request.raw_query}")
    verify = readme_verify()
    key = WEBHOOK_SECRET.encode()
    assert request.headers["X-ActionBot-Signature"].startswith("v2=")
    assert request.headers["X-ActionBot-Key-Id"] == "default"
    assert request.headers["X-ActionBot-Caller"] == CALLER
    assert abs(int(request.headers["X-ActionBot-Timestamp"]) - time.time()) < 300
    assert verify(request.headers, "POST", url, request.body, {"default": key})
    assert not verify(request.headers, "POST", url, request.body + b" ", {"default": key})
    assert not verify(request.headers, "POST", url, request.body, {"default": b"other"})


async def test_get_signature_covers_the_query_and_an_empty_body(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A GET is signed over its query string (its parameters) and an empty body."""
    action = make_action(webhook_server.url("/g"), parameters=["part"])
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, secret=SecretStr(WEBHOOK_SECRET)
    ) as client:
        await client.call(action, {"part": "screen"})
    request = webhook_server.requests[0]
    secrets = {"default": WEBHOOK_SECRET.encode()}
    verify = readme_verify()
    assert verify(request.headers, "GET", webhook_server.url("/g?part=screen"), b"", secrets)
    assert not verify(request.headers, "GET", webhook_server.url("/g?part=glass"), b"", secrets)


async def test_rotation_signs_with_the_first_key_and_receivers_accept_either(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """With `new:…,old:…` the new key signs; a receiver that knows both accepts calls from a
    bot still on the old key and from one already on the new; one that knows only the old
    key refuses the new signature."""
    action = make_action(webhook_server.url("/r"))
    for secrets in ("old:s1", "new:s2,old:s1"):
        settings = make_settings(egress_allow="127.0.0.1/32", webhook_secrets=secrets)
        async with WebhookClient(
            policy=loopback(),
            ssl_context=client_ssl_context,
            signing_keys=configured_keys(settings),
        ) as client:
            await client.call(action, {})
    old_call, new_call = webhook_server.requests
    verify = readme_verify()
    both = {"new": b"s2", "old": b"s1"}
    url = webhook_server.url("/r")
    assert [r.headers["X-ActionBot-Key-Id"] for r in (old_call, new_call)] == ["old", "new"]
    assert verify(old_call.headers, "GET", url, b"", both)
    assert verify(new_call.headers, "GET", url, b"", both)
    assert not verify(new_call.headers, "GET", url, b"", {"old": b"s1"})


async def test_idempotency_keys_are_unique_per_call(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """Concurrent calls each get their own key; a given call id is used as the key."""
    action = make_action(webhook_server.url("/i"))
    results = await asyncio.gather(*(client.call(action, {}) for _ in range(5)))
    keys = {r.headers["Idempotency-Key"] for r in webhook_server.requests}
    assert keys == {r.call_id for r in results}
    assert len(keys) == 5
    await client.call(action, {}, call_id="call_7")
    assert webhook_server.requests[-1].headers["Idempotency-Key"] == "call_7"


# --- deadlines and size -------------------------------------------------------------------


async def test_server_that_never_answers_hits_the_deadline(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A server that never sends headers ends as a timeout naming the seconds allowed."""
    webhook_server.hang("/slow")
    result = await client.call(make_action(webhook_server.url("/slow"), timeout=0.5), {})
    assert result.outcome is Outcome.TIMEOUT
    assert "0.5 s" in (result.error or "")
    assert result.status is None


async def test_server_that_drips_the_body_hits_the_deadline(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """Headers at once and then a byte now and then still ends at the one deadline."""
    webhook_server.drip("/drip", interval=0.1)
    result = await client.call(make_action(webhook_server.url("/drip"), timeout=0.8), {})
    assert result.outcome is Outcome.TIMEOUT


async def test_action_timeout_is_capped(client_ssl_context: ssl.SSLContext) -> None:
    """An action's own timeout is bounded by the maximum; no timeout means the default."""
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, default_timeout=7, max_timeout=20
    ) as client:
        assert client.timeout_for(_bare_action(timeout=300)) == 20
        assert client.timeout_for(_bare_action(timeout=3)) == 3
        assert client.timeout_for(_bare_action(timeout=None)) == 7


def _bare_action(*, timeout: float | None) -> Action:
    return Action(
        name="a", display_name="A", description="d", url="https://a.example/", timeout=timeout
    )


async def test_declared_oversized_body_is_refused(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A Content-Length above the cap is refused as an invalid response."""
    webhook_server.route("/big", body_handler(b'"' + b"x" * 2048 + b'"'))
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, max_body_bytes=1024
    ) as client:
        result = await client.call(make_action(webhook_server.url("/big")), {})
    assert result.outcome is Outcome.INVALID_RESPONSE
    assert result.error == "the response is larger than 1 KiB"
    assert result.status == 200


async def test_endless_chunked_body_is_cut_at_the_cap(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A chunked body with no end stops being read at the cap, well before the deadline."""
    webhook_server.drip("/flood", chunk=b"x" * 4096, interval=0)
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, max_body_bytes=64 * 1024
    ) as client:
        result = await client.call(make_action(webhook_server.url("/flood"), timeout=30), {})
    assert result.outcome is Outcome.INVALID_RESPONSE
    assert result.error == "the response is larger than 64 KiB"


# --- responses ----------------------------------------------------------------------------


async def test_non_json_success_is_invalid(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A 200 with HTML is an invalid response that keeps the text for the model."""
    webhook_server.route("/html", body_handler(b"<html>oops</html>", content_type="text/html"))
    result = await client.call(make_action(webhook_server.url("/html")), {})
    assert result.outcome is Outcome.INVALID_RESPONSE
    assert result.error == "the endpoint did not return JSON"
    assert result.text == "<html>oops</html>"


async def test_empty_success_has_no_data(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A 204 is a success with no data."""
    webhook_server.route("/none", body_handler(b"", status=204))
    result = await client.call(make_action(webhook_server.url("/none")), {})
    assert (result.outcome, result.status, result.data) == (Outcome.SUCCESS, 204, None)


async def test_not_found_is_http_error_with_body(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A 404 keeps its status, a short error and the JSON body the model can explain."""
    webhook_server.route("/parts", json_handler({"error": "unknown serial"}, status=404))
    result = await client.call(make_action(webhook_server.url("/parts")), {})
    assert result.outcome is Outcome.HTTP_ERROR
    assert result.status == 404
    assert result.error == "HTTP 404 Not Found"
    assert result.data == {"error": "unknown serial"}


async def test_server_error_keeps_text_body(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A 500 with a non-JSON body keeps the text, decoded with replacement."""
    webhook_server.route("/boom", body_handler(b"bad \xff gateway", status=500))
    result = await client.call(make_action(webhook_server.url("/boom")), {})
    assert (result.outcome, result.status) == (Outcome.HTTP_ERROR, 500)
    assert result.text == "bad \ufffd gateway"


# --- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [(307, "POST", {"part": "screen"}), (308, "POST", {"part": "screen"}), (303, "GET", None)],
)
async def test_same_origin_redirect_is_followed(
    client: WebhookClient,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    status: int,
    method: str,
    body: dict[str, str] | None,
) -> None:
    """307/308 repeat the POST with its body, 303 becomes a GET; headers stay on one origin."""
    webhook_server.route("/old", redirect_handler("/new?moved=1", status=status))
    action = make_action(
        webhook_server.url("/old"), method="POST", parameters=["part"], headers={"X-Key": "k1"}
    )
    result = await client.call(action, {"part": "screen"})
    assert result.outcome is Outcome.SUCCESS
    first, second = webhook_server.requests
    assert (second.method, second.path, second.query) == (method, "/new", {"moved": "1"})
    assert (second.json() if second.body else None) == body
    assert second.headers["X-Key"] == "k1"
    assert second.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]


async def test_cross_origin_redirect_drops_configured_headers(
    webhook_server: WebhookServer,
    other_server: WebhookServer,
    make_action: MakeAction,
    client_ssl_context: ssl.SSLContext,
) -> None:
    """Following a redirect to another origin carries neither the action's Authorization,
    nor the signature, nor who is asking.

    (Loopback stands in for a public address here, so the outside policy allows it.)
    """
    webhook_server.route("/go", redirect_handler(other_server.url("/landing")))
    action = make_action(webhook_server.url("/go"), headers={"Authorization": TOKEN})
    async with WebhookClient(
        policy=loopback(),
        outside_policy=loopback(),
        ssl_context=client_ssl_context,
        secret=SecretStr(WEBHOOK_SECRET),
    ) as client:
        result = await client.call(action, {}, caller=CALLER)
    assert result.outcome is Outcome.SUCCESS
    first = webhook_server.requests[0].headers
    assert (first["Authorization"], first["X-ActionBot-Caller"]) == (TOKEN, CALLER)
    assert "X-ActionBot-Signature" in first
    (landed,) = other_server.requests
    for name in (
        "Authorization",
        "X-ActionBot-Caller",
        "X-ActionBot-Signature",
        "X-ActionBot-Key-Id",
    ):
        assert name not in landed.headers
    assert landed.headers["Idempotency-Key"] == result.call_id


async def test_redirect_cannot_steer_into_the_allow_list(
    client: WebhookClient,
    webhook_server: WebhookServer,
    other_server: WebhookServer,
    make_action: MakeAction,
) -> None:
    """The allow list covers the action's own origin; a redirect elsewhere into it is refused."""
    webhook_server.route("/go", redirect_handler(other_server.url("/internal")))
    result = await client.call(make_action(webhook_server.url("/go")), {})
    assert result.outcome is Outcome.BLOCKED
    assert (result.error or "").startswith("refused a redirect: ")
    assert other_server.requests == []


async def test_redirect_to_http_is_blocked(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A redirect to plain http:// is refused before any connection is made."""
    target = webhook_server.url("/plain").replace("https://", "http://")
    webhook_server.route("/r", redirect_handler(target, status=301))
    result = await client.call(make_action(webhook_server.url("/r")), {})
    assert result.outcome is Outcome.BLOCKED
    assert result.error == "refused a redirect to http://127.0.0.1: only https:// is allowed"
    assert len(webhook_server.requests) == 1


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://internal.webhook.test:{port}/admin", "private"),
        ("https://localhost:{port}/admin", "this machine"),
    ],
)
async def test_redirect_to_blocked_address_is_refused(
    client_ssl_context: ssl.SSLContext,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    target: str,
    reason: str,
) -> None:
    """A redirect to a blocked literal, or to a name resolving to one, is refused."""
    resolver = ScriptedResolver(["10.0.0.7"])
    location = target.format(port=webhook_server.port)
    webhook_server.route("/r", redirect_handler(location))
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, resolver=resolver
    ) as client:
        result = await client.call(make_action(webhook_server.url("/r")), {})
    assert result.outcome is Outcome.BLOCKED
    assert (result.error or "").startswith("refused a redirect: ")
    assert reason in (result.error or "")
    assert len(webhook_server.requests) == 1


async def test_redirect_loop_stops(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A redirect loop ends with an error after the allowed number of hops."""
    webhook_server.route("/loop", redirect_handler("/loop"))
    result = await client.call(make_action(webhook_server.url("/loop")), {})
    assert result.outcome is Outcome.ERROR
    assert result.error == "more than 3 redirects"
    assert len(webhook_server.requests) == 4


async def test_http_url_is_blocked(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """An action URL that is not https (built around the loader) is still refused."""
    url = webhook_server.url("/x").replace("https://", "http://")
    result = await client.call(make_action(url), {})
    assert result.outcome is Outcome.BLOCKED
    assert webhook_server.requests == []


# --- egress pinning -----------------------------------------------------------------------


async def test_name_resolving_to_loopback_is_blocked(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """With the default policy, a public-looking name that resolves to 127.0.0.1 is refused."""
    resolver = ScriptedResolver(["127.0.0.1"])
    url = webhook_server.url("/x", host="internal.example")
    async with WebhookClient(
        policy=EgressPolicy(), ssl_context=client_ssl_context, resolver=resolver
    ) as client:
        result = await client.call(make_action(url), {})
    assert result.outcome is Outcome.BLOCKED
    assert (result.error or "").startswith("internal.example (127.0.0.1) is a loopback address")
    assert resolver.lookups == ["internal.example"]
    assert webhook_server.requests == []


async def test_dns_rebinding_cannot_switch_the_address(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """The checked answer is the address used; later answers matter only for new connections."""
    resolver = ScriptedResolver(["127.0.0.1"], ["10.0.0.1"])
    action = make_action(webhook_server.url("/x", host="api.webhook.test"))
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, resolver=resolver
    ) as client:
        first = await client.call(action, {})
        second = await client.call(action, {})
    assert (first.outcome, second.outcome) == (Outcome.SUCCESS, Outcome.SUCCESS)
    assert resolver.lookups == ["api.webhook.test"]
    assert webhook_server.requests[0].headers["Host"] == f"api.webhook.test:{webhook_server.port}"
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, resolver=resolver
    ) as fresh:
        third = await fresh.call(action, {})
    assert third.outcome is Outcome.BLOCKED
    assert resolver.lookups == ["api.webhook.test"] * 2
    assert len(webhook_server.requests) == 2


@pytest.mark.parametrize(
    "answer", [["10.0.0.1"], ["10.0.0.1", "127.0.0.1"], ["127.0.0.1", "169.254.169.254"]]
)
async def test_any_blocked_answer_refuses_the_host(
    client_ssl_context: ssl.SSLContext,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    answer: list[str],
) -> None:
    """One blocked address among the answers refuses the host; the server sees nothing."""
    resolver = ScriptedResolver(answer, ["127.0.0.1"])
    action = make_action(webhook_server.url("/x", host="api.webhook.test"))
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, resolver=resolver
    ) as client:
        result = await client.call(action, {})
    assert result.outcome is Outcome.BLOCKED
    assert "outbound calls may only reach public addresses" in (result.error or "")
    assert webhook_server.requests == []


async def test_certificate_is_checked_against_the_name(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """Connecting to a pinned IP still verifies the certificate for the URL's host name."""
    resolver = ScriptedResolver(["127.0.0.1"])
    action = make_action(webhook_server.url("/x", host="shop.example"))
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, resolver=resolver
    ) as client:
        result = await client.call(action, {})
    assert result.outcome is Outcome.ERROR
    assert (result.error or "").startswith("TLS certificate verification failed for shop.example")
    assert webhook_server.requests == []


async def test_system_resolver_finds_an_allowed_name(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """The default resolver is the system's; each answer is tried until one connects."""
    policy = EgressPolicy(["localhost"])
    async with WebhookClient(policy=policy, ssl_context=client_ssl_context) as client:
        result = await client.call(make_action(webhook_server.url("/x", host="localhost")), {})
    assert result.outcome is Outcome.SUCCESS
    assert webhook_server.requests[0].headers["Host"] == f"localhost:{webhook_server.port}"


# --- transport failures -------------------------------------------------------------------


async def test_untrusted_certificate_is_a_readable_error(
    webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A server whose CA is not trusted fails with a short TLS message, not a trace."""
    async with WebhookClient(policy=loopback(), ssl_context=default_ssl_context()) as client:
        result = await client.call(make_action(webhook_server.url("/x")), {})
    assert result.outcome is Outcome.ERROR
    assert (result.error or "").startswith("TLS certificate verification failed for 127.0.0.1: ")
    assert webhook_server.requests == []


async def test_connection_refused_is_an_error(
    client: WebhookClient, make_action: MakeAction
) -> None:
    """A closed port gives an error outcome that says the connection was refused."""
    port = closed_port()
    result = await client.call(make_action(f"https://127.0.0.1:{port}/x"), {})
    assert result.outcome is Outcome.ERROR
    assert result.error == f"connection refused by 127.0.0.1:{port}"


async def test_unresolvable_name_is_an_error(
    client_ssl_context: ssl.SSLContext, make_action: MakeAction
) -> None:
    """A name the resolver cannot find gives a short DNS error."""
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, resolver=FailingResolver()
    ) as client:
        result = await client.call(make_action("https://nowhere.webhook.test/x"), {})
    assert result.outcome is Outcome.ERROR
    assert result.error == "could not resolve nowhere.webhook.test"


# --- recording and configuration ----------------------------------------------------------


async def test_every_outcome_is_recorded_with_its_conversation(
    client: WebhookClient,
    client_ssl_context: ssl.SSLContext,
    recorder: ListRecorder,
    webhook_server: WebhookServer,
    make_action: MakeAction,
) -> None:
    """Each of the seven outcomes reaches the recorder, with the conversation passed through
    (`busy`: a second call of an action limited to one while the first hangs)."""
    webhook_server.hang("/hang")
    webhook_server.route("/404", json_handler({"error": "nope"}, status=404))
    webhook_server.route("/html", body_handler(b"<p>", content_type="text/html"))
    urls = [
        webhook_server.url("/ok"),
        webhook_server.url("/404"),
        webhook_server.url("/hang"),
        webhook_server.url("/x", host="10.0.0.1"),
        webhook_server.url("/html"),
        f"https://127.0.0.1:{closed_port()}/x",
    ]
    for url in urls:
        await client.call(make_action(url, timeout=0.3), {}, conversation="slack:C1:171.5")
    async with WebhookClient(
        policy=loopback(), recorder=recorder, ssl_context=client_ssl_context, queue_timeout=0
    ) as strict:
        single = make_action(webhook_server.url("/hang"), timeout=0.3, max_concurrency=1)
        before = len(webhook_server.requests)
        first = asyncio.create_task(strict.call(single, {}, conversation="slack:C1:171.5"))
        await webhook_server.wait_for_requests(before + 1)
        await strict.call(single, {}, conversation="slack:C1:171.5")
        await first
    outcomes = [result.outcome for result, _ in recorder.calls]
    assert outcomes == [*list(Outcome)[:6], Outcome.BUSY, Outcome.TIMEOUT]
    assert {conversation for _, conversation in recorder.calls} == {"slack:C1:171.5"}


async def test_recorder_failure_does_not_fail_the_call(
    client_ssl_context: ssl.SSLContext,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A recorder that raises is logged; the caller still gets the result."""
    async with WebhookClient(
        policy=loopback(), ssl_context=client_ssl_context, recorder=BrokenRecorder()
    ) as client:
        result = await client.call(make_action(webhook_server.url("/x")), {})
    assert result.outcome is Outcome.SUCCESS
    assert "could not record call" in caplog.text


async def test_cancellation_is_not_swallowed(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """Cancelling a call in flight cancels it; it does not turn into a result."""
    webhook_server.hang("/hang")
    task = asyncio.create_task(client.call(make_action(webhook_server.url("/hang")), {}))
    await webhook_server.wait_for_requests(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_from_settings_trusts_ssl_cert_file(
    ca: trustme.CA,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Operator settings apply, and SSL_CERT_FILE adds trust on top of the public CAs."""
    bundle = tmp_path / "extra-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    settings = make_settings(egress_allow="127.0.0.1/32", webhook_secret="s3")
    async with WebhookClient.from_settings(settings) as client:
        result = await client.call(make_action(webhook_server.url("/x")), {})
    assert result.outcome is Outcome.SUCCESS
    assert "X-ActionBot-Signature" in webhook_server.requests[0].headers


async def test_verification_failure_names_the_ssl_cert_file_in_use(
    webhook_server: WebhookServer,
    make_action: MakeAction,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With SSL_CERT_FILE pointing at a bundle that does not hold the endpoint's CA (say a
    system-wide one that shadowed .env's), the error names the file actually in use."""
    other = trustme.CA()
    bundle = tmp_path / "system-ca.pem"
    other.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with WebhookClient.from_settings(make_settings(egress_allow="127.0.0.1/32")) as client:
        result = await client.call(make_action(webhook_server.url("/x")), {})
    assert result.outcome is Outcome.ERROR
    assert (result.error or "").startswith("TLS certificate verification failed for 127.0.0.1")
    assert (result.error or "").endswith(f"(trusted: the public CAs and SSL_CERT_FILE={bundle})")


def compressed(payload: bytes, encoding: str) -> Any:
    """A handler answering `payload` gzip-compressed, whatever the request asked for."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = gzip.compress(payload)
        headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
        return web.Response(body=body, headers=headers)

    return handle


async def test_compressed_body_is_read_within_the_cap(
    client: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """A server that gzips anyway is understood; a gzip bomb stops at the cap, not in RAM."""
    webhook_server.route("/small", compressed(b'{"in_stock": true}', "gzip"))
    webhook_server.route("/bomb", compressed(b"[" + b"0," * 20_000_000 + b"0]", "gzip"))
    webhook_server.route("/brotli", compressed(b"{}", "br"))

    small = await client.call(make_action(webhook_server.url("/small")), {})
    bomb_action = make_action(webhook_server.url("/bomb"))
    tracemalloc.start()
    try:
        bomb = await client.call(bomb_action, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    brotli = await client.call(make_action(webhook_server.url("/brotli")), {})

    assert small.outcome is Outcome.SUCCESS
    assert small.data == {"in_stock": True}
    assert bomb.outcome is Outcome.INVALID_RESPONSE
    assert bomb.error == "the response is larger than 1 MiB"
    assert peak < 16 * 1024 * 1024  # the 40 MB payload was never inflated in memory
    assert brotli.outcome is Outcome.INVALID_RESPONSE
    assert "'br'" in (brotli.error or "")
