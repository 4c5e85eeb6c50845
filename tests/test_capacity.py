"""Webhook capacity under load: timeouts never leak connections, per-action concurrency and the
bounded queue (`busy`), against real HTTPS servers through the real client."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import inventory_action, loopback_only, make_engine

from bot.actions.models import Action
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.metrics import Metrics
from bot.store import Store
from bot.store.sqlite import SQLiteStore
from bot.types import IncomingMessage, Outcome
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import Reply, ScriptedLLM, Step, ToolCalls

MakeAction = Callable[..., Action]


def slow_handler(seconds: float, payload: Any) -> Callable[[web.Request], Any]:
    """Answers `payload` after `seconds`: a healthy but slow endpoint."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response(payload)

    return handle


@pytest.fixture
async def small_pool(
    client_ssl_context: ssl.SSLContext, store: Store
) -> AsyncIterator[WebhookClient]:
    """A client with a pool of 10 connections, where one leaked slot is easy to see."""
    async with WebhookClient(
        policy=loopback_only(),
        recorder=store,
        ssl_context=client_ssl_context,
        connections=10,
        queue_timeout=30,
    ) as client:
        yield client


async def _healthy_calls(
    client: WebhookClient, server: WebhookServer, make_action: MakeAction, n: int
) -> list[Outcome]:
    server.route("/ok", json_handler({"ok": True}))
    action = make_action(server.url("/ok"), name="healthy", timeout=5, max_concurrency=n)
    results = await asyncio.gather(*(client.call(action, {}) for _ in range(n)))
    return [r.outcome for r in results]


async def test_timeouts_never_leak_pool_capacity(
    small_pool: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """500 calls that time out against a stalled endpoint, then 50 concurrent calls to a
    healthy action on the same client: every one of the 50 reaches it and succeeds."""
    webhook_server.hang("/stall")
    stalled = make_action(
        webhook_server.url("/stall"), name="stalled", timeout=0.05, max_concurrency=500
    )
    results = await asyncio.gather(*(small_pool.call(stalled, {}) for _ in range(500)))
    assert {r.outcome for r in results} == {Outcome.TIMEOUT}

    before = len(webhook_server.requests)
    healthy = await _healthy_calls(small_pool, webhook_server, make_action, 50)
    assert healthy == [Outcome.SUCCESS] * 50
    assert len(webhook_server.requests) - before == 50


async def test_calls_cut_off_near_their_deadline_never_leak_pool_capacity(
    small_pool: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """Three rounds of 60 concurrent calls to an endpoint that answers just before the
    deadline (cut off mid-request, mid-connect and while queued), then 30 calls to another
    action: all 30 reach the endpoint and succeed."""
    webhook_server.route("/slow", slow_handler(0.19, {"ok": True}))
    slow = make_action(webhook_server.url("/slow"), name="slow", timeout=0.2, max_concurrency=60)
    for _ in range(3):
        await asyncio.gather(*(small_pool.call(slow, {}) for _ in range(60)))
    healthy = await _healthy_calls(small_pool, webhook_server, make_action, 30)
    assert healthy == [Outcome.SUCCESS] * 30


async def test_cancelled_tls_handshakes_never_leak_pool_capacity(
    small_pool: WebhookClient, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """Calls cut off while still connecting (a listener that accepts and never completes the
    TLS handshake) give their connection slots back: 50 healthy calls then all succeed."""
    accepted: list[asyncio.StreamWriter] = []

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    listener = await asyncio.start_server(stall, "127.0.0.1", 0)
    try:
        port = listener.sockets[0].getsockname()[1]
        silent = make_action(
            f"https://127.0.0.1:{port}/never", name="silent", timeout=0.05, max_concurrency=200
        )
        results = await asyncio.gather(*(small_pool.call(silent, {}) for _ in range(200)))
        assert {r.outcome for r in results} == {Outcome.TIMEOUT}
        assert accepted, "the calls never reached the listener"
        outcomes = await _healthy_calls(small_pool, webhook_server, make_action, 50)
        assert outcomes == [Outcome.SUCCESS] * 50
    finally:
        for writer in accepted:
            writer.close()
        listener.close()
        await listener.wait_closed()


async def test_queue_wait_is_not_charged_to_the_deadline(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """With one connection, the second call waits for the first (1 s endpoint) and still has
    its own whole 1.5 s deadline afterwards: both succeed."""
    webhook_server.route("/slow", slow_handler(1.0, {"ok": True}))
    action = make_action(webhook_server.url("/slow"), timeout=1.5)
    async with WebhookClient(
        policy=loopback_only(), ssl_context=client_ssl_context, connections=1, queue_timeout=5
    ) as client:
        results = await asyncio.gather(client.call(action, {}), client.call(action, {}))
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]


async def test_a_full_queue_ends_busy_without_reaching_the_endpoint(
    client_ssl_context: ssl.SSLContext, webhook_server: WebhookServer, make_action: MakeAction
) -> None:
    """Beyond `max_concurrency`, a call waits at most the queue timeout, then ends `busy`
    with a message for the model, and the endpoint never sees it."""
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({"ok": True})

    webhook_server.route("/held", held)
    action = make_action(webhook_server.url("/held"), timeout=5, max_concurrency=1)
    async with WebhookClient(
        policy=loopback_only(), ssl_context=client_ssl_context, queue_timeout=0.2
    ) as client:
        first = asyncio.create_task(client.call(action, {}))
        await webhook_server.wait_for_requests(1)
        second = await client.call(action, {})
        release.set()
        assert (await first).outcome is Outcome.SUCCESS
    assert second.outcome is Outcome.BUSY
    assert "busy" in (second.error or "")
    assert '"ok": false' in second.for_model(1000)
    assert len(webhook_server.requests) == 1


def _inventory_turns(action: str) -> Callable[[dict[str, Any]], Step]:
    """The model's side of a turn: call `action` once, then relay what it returned."""

    def respond(body: dict[str, Any]) -> Step:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return Reply(f"The service said: {last['content']}")
        return ToolCalls(((action, {"part_name": "screen", "device_model": "iPhone"}),))

    return respond


async def _concurrent_turns(
    *,
    n: int,
    llm: ScriptedLLM,
    chat_model: OpenAIChatModel,
    store: Store,
    webhooks: WebhookClient,
    action: Action,
) -> list[str]:
    for _ in range(2 * n):
        llm.respond(_inventory_turns(action.name))
    engine = make_engine([action], store=store, webhooks=webhooks, model=chat_model)
    messages = [
        IncomingMessage(platform="test", conversation=f"c{i}", user_id="u", text="screens?")
        for i in range(n)
    ]
    replies = await asyncio.gather(*(engine.handle(m) for m in messages))
    return [r.text for r in replies]


async def test_hundred_concurrent_turns_all_answered(
    llm: ScriptedLLM,
    chat_model: OpenAIChatModel,
    store: Store,
    client_ssl_context: ssl.SSLContext,
    webhook_server: WebhookServer,
) -> None:
    """100 concurrent turns against an endpoint that answers in 2 s (timeout 10 s,
    max_concurrency 100): every turn gets the endpoint's answer."""
    webhook_server.route("/inventory/check", slow_handler(2.0, {"in_stock": 4}))
    action = inventory_action(webhook_server, timeout=10, max_concurrency=100)
    async with WebhookClient(
        policy=loopback_only(), recorder=store, ssl_context=client_ssl_context
    ) as webhooks:
        texts = await _concurrent_turns(
            n=100, llm=llm, chat_model=chat_model, store=store, webhooks=webhooks, action=action
        )
    assert all('"in_stock": 4' in text for text in texts), texts[:3]
    [stats] = await store.stats("check_inventory")
    assert (stats.calls, stats.successes, stats.failures) == (100, 100, {})


async def test_max_concurrency_turns_the_rest_away_as_busy(
    llm: ScriptedLLM,
    chat_model: OpenAIChatModel,
    store: Store,
    client_ssl_context: ssl.SSLContext,
    webhook_server: WebhookServer,
) -> None:
    """max_concurrency 10 and a 1 s queue timeout against a 2 s endpoint: 10 calls succeed,
    the other 90 are `busy` (never sent), the model is told so, and stats add up."""
    webhook_server.route("/inventory/check", slow_handler(2.0, {"in_stock": 4}))
    action = inventory_action(webhook_server, timeout=10, max_concurrency=10)
    async with WebhookClient(
        policy=loopback_only(), recorder=store, ssl_context=client_ssl_context, queue_timeout=1
    ) as webhooks:
        texts = await _concurrent_turns(
            n=100, llm=llm, chat_model=chat_model, store=store, webhooks=webhooks, action=action
        )
    assert sum('"in_stock": 4' in text for text in texts) == 10
    assert sum("busy" in text for text in texts) == 90
    assert len(webhook_server.requests) == 10
    [stats] = await store.stats("check_inventory")
    assert (stats.calls, stats.successes, stats.failures) == (100, 10, {"busy": 90})


async def test_metrics_show_calls_in_flight_and_queue_waits(
    client_ssl_context: ssl.SSLContext,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    tmp_path: Path,
) -> None:
    """`/metrics` shows how many calls of an action are in flight right now and how long
    calls waited for a slot."""
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({"ok": True})

    webhook_server.route("/held", held)
    action = make_action(webhook_server.url("/held"), name="held", max_concurrency=2)
    metrics = Metrics()
    async with (
        await SQLiteStore.open(tmp_path / "m.db") as store,
        WebhookClient(
            policy=loopback_only(), ssl_context=client_ssl_context, observer=metrics
        ) as client,
    ):
        calls = [asyncio.create_task(client.call(action, {})) for _ in range(3)]
        await webhook_server.wait_for_requests(2)
        text = (await metrics.render(store)).decode()
        assert 'actionbot_webhook_inflight{action="held"} 2.0' in text
        release.set()
        await asyncio.gather(*calls)
        text = (await metrics.render(store)).decode()
    assert 'actionbot_webhook_inflight{action="held"} 0.0' in text
    assert 'actionbot_webhook_queue_seconds_count{action="held"} 3.0' in text
