"""Guardrails in front of webhook calls (`bot/outbound/guard.py`), through the real client
against HTTPS fakes that fail on demand: the circuit breaker (with an injected clock), dry
runs, an action's own rate, and what the audit trail records of each call."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from conftest import build_action, loopback_only, make_engine

from bot.actions.models import Action
from bot.llm.client import OpenAIChatModel
from bot.outbound.breaker import BreakerChange, Breakers
from bot.outbound.guard import Guard
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.types import IncomingMessage, Outcome, caller_header
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM

ARGS = {"part_name": "screen", "device_model": "iPhone 15 Pro"}


def inventory_action(
    server: WebhookServer, path: str = "/inventory/check", **fields: Any
) -> Action:
    """The seed's `check_inventory` on `server` (another name or path when given)."""
    fields.setdefault("name", "check_inventory")
    return build_action(server.url(path), parameters=["part_name", "device_model"], **fields)


class Clock:
    """The breakers' clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Heard:
    """A breaker listener that keeps every change."""

    def __init__(self) -> None:
        self.changes: list[BreakerChange] = []

    async def breaker_changed(self, change: BreakerChange) -> None:
        self.changes.append(change)


class Flaky:
    """An endpoint that answers 503 while `failing`, else 200; `gate` holds answers back."""

    def __init__(self) -> None:
        self.failing = True
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            return web.json_response({"error": "down"}, status=503)
        return web.json_response({"in_stock": True})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
async def guarded(
    store: Store, client_ssl_context: ssl.SSLContext, clock: Clock, heard: Heard
) -> AsyncIterator[WebhookClient]:
    """A client whose breakers open after 3 failures, on the hand-moved clock."""
    breakers = Breakers(failures=3, clock=clock, listener=heard)
    async with WebhookClient(
        policy=loopback_only(),
        recorder=store,
        ssl_context=client_ssl_context,
        guard=Guard(breakers),
        secrets=["hunter2-secret-value"],
    ) as client:
        yield client


@pytest.fixture
def flaky(webhook_server: WebhookServer) -> Flaky:
    handler = Flaky()
    webhook_server.route("/inventory/check", handler)
    return handler


async def outcomes(client: WebhookClient, action: Action, n: int) -> list[Outcome]:
    return [(await client.call(action, dict(ARGS))).outcome for _ in range(n)]


async def test_breaker_opens_after_exactly_n_failures_then_probes_once_and_closes(
    guarded: WebhookClient,
    webhook_server: WebhookServer,
    flaky: Flaky,
    clock: Clock,
    heard: Heard,
    store: Store,
) -> None:
    action = inventory_action(webhook_server)
    breakers = guarded.guard.breakers

    assert await outcomes(guarded, action, 2) == [Outcome.HTTP_ERROR] * 2
    assert breakers.state("check_inventory") == "closed"
    assert heard.changes == []
    assert await outcomes(guarded, action, 1) == [Outcome.HTTP_ERROR]
    assert breakers.state("check_inventory") == "open"
    assert [(c.state, c.first_opening, c.cooldown) for c in heard.changes] == [("open", True, 30.0)]
    assert heard.changes[0].failures == 3

    refused = await guarded.call(action, dict(ARGS))
    assert refused.outcome is Outcome.SHORT_CIRCUITED
    assert refused.attempts == 0
    assert refused.error is not None
    assert "temporarily unavailable" in refused.error
    assert "person" in refused.for_model(1000)
    clock.now += 29.9
    assert await outcomes(guarded, action, 1) == [Outcome.SHORT_CIRCUITED]
    assert len(webhook_server.requests) == 3  # nothing sent while open

    clock.now += 0.2  # the cool-down is over: one probe, which fails
    assert await outcomes(guarded, action, 1) == [Outcome.HTTP_ERROR]
    assert len(webhook_server.requests) == 4
    assert [(c.state, c.first_opening, c.cooldown) for c in heard.changes][-1] == (
        "open",
        False,
        60.0,
    )
    clock.now += 59.0
    assert await outcomes(guarded, action, 1) == [Outcome.SHORT_CIRCUITED]

    clock.now += 1.5
    flaky.failing = False
    assert await outcomes(guarded, action, 2) == [Outcome.SUCCESS] * 2
    assert breakers.state("check_inventory") == "closed"
    assert heard.changes[-1].state == "closed"
    assert len(webhook_server.requests) == 6

    stats = (await store.stats("check_inventory"))[0]
    assert stats.failures["short_circuited"] == 3


async def test_only_one_probe_goes_out_while_half_open(
    guarded: WebhookClient, webhook_server: WebhookServer, flaky: Flaky, clock: Clock
) -> None:
    action = inventory_action(webhook_server)
    await outcomes(guarded, action, 3)
    clock.now += 31
    flaky.failing, flaky.gate = False, asyncio.Event()

    probe = asyncio.create_task(guarded.call(action, dict(ARGS)))
    await webhook_server.wait_for_requests(4)
    assert guarded.guard.breakers.state("check_inventory") == "half_open"
    assert await outcomes(guarded, action, 2) == [Outcome.SHORT_CIRCUITED] * 2
    flaky.gate.set()
    assert (await probe).outcome is Outcome.SUCCESS
    assert guarded.guard.breakers.state("check_inventory") == "closed"
    assert len(webhook_server.requests) == 4


async def test_answers_that_are_not_failures_reset_the_count(
    guarded: WebhookClient, webhook_server: WebhookServer, flaky: Flaky
) -> None:
    """A 4xx is the endpoint answering: the breaker counts only timeouts, connection
    errors and 5xx, in a row."""
    action = inventory_action(webhook_server)
    webhook_server.route("/missing", json_handler({"error": "no such part"}, status=404))
    missing = inventory_action(webhook_server, "/missing", name="lookup")
    assert await outcomes(guarded, action, 2) == [Outcome.HTTP_ERROR] * 2
    flaky.failing = False
    assert await outcomes(guarded, action, 1) == [Outcome.SUCCESS]
    flaky.failing = True
    assert await outcomes(guarded, action, 2) == [Outcome.HTTP_ERROR] * 2
    assert guarded.guard.breakers.state("check_inventory") == "closed"
    assert await outcomes(guarded, missing, 5) == [Outcome.HTTP_ERROR] * 5
    assert guarded.guard.breakers.state("lookup") == "closed"


async def test_timeouts_open_the_breaker_too(
    guarded: WebhookClient, webhook_server: WebhookServer
) -> None:
    webhook_server.hang("/stall")
    action = inventory_action(webhook_server, "/stall", timeout=0.05)
    assert await outcomes(guarded, action, 4) == [Outcome.TIMEOUT] * 3 + [Outcome.SHORT_CIRCUITED]


async def test_an_admin_test_goes_out_while_open_and_its_success_closes_the_breaker(
    guarded: WebhookClient, webhook_server: WebhookServer, flaky: Flaky
) -> None:
    action = inventory_action(webhook_server)
    await outcomes(guarded, action, 3)
    flaky.failing = False
    forced = await guarded.call(action, dict(ARGS), forced=True)
    assert forced.outcome is Outcome.SUCCESS
    assert guarded.guard.breakers.state("check_inventory") == "closed"


async def test_dry_run_sends_nothing_and_shows_what_would_have_been_sent(
    guarded: WebhookClient, webhook_server: WebhookServer, flaky: Flaky, store: Store
) -> None:
    action = inventory_action(webhook_server, mode="dry_run", method="POST")
    result = await guarded.call(action, dict(ARGS))
    assert result.outcome is Outcome.DRY_RUN
    assert result.attempts == 0
    shown = json.loads(result.for_model(4000))
    assert shown["dry_run"] is True
    assert shown["would_call"] == f"POST {webhook_server.url('/inventory/check')}"
    assert shown["arguments"] == ARGS
    assert "test" in shown["note"]
    assert webhook_server.requests == []
    assert (await store.stats("check_inventory"))[0].failures == {"dry_run": 1}

    # The admin's override wins over the file's mode, both ways.
    assert (await guarded.call(action, dict(ARGS), dry_run=False)).outcome is Outcome.HTTP_ERROR
    live = inventory_action(webhook_server)
    assert (await guarded.call(live, dict(ARGS), dry_run=True)).outcome is Outcome.DRY_RUN
    assert len(webhook_server.requests) == 1


async def test_an_actions_rate_refuses_calls_without_sending_them(
    guarded: WebhookClient, webhook_server: WebhookServer, flaky: Flaky
) -> None:
    flaky.failing = False
    action = inventory_action(webhook_server, rate="2/minute")
    assert await outcomes(guarded, action, 3) == [Outcome.SUCCESS] * 2 + [Outcome.RATE_LIMITED]
    refused = await guarded.call(action, dict(ARGS))
    assert refused.error is not None
    assert "2/minute" in refused.error
    assert len(webhook_server.requests) == 2
    # Another action is not limited by this one's rate.
    other = inventory_action(webhook_server, name="other")
    assert await outcomes(guarded, other, 3) == [Outcome.SUCCESS] * 3


async def test_the_call_log_records_who_asked_and_the_arguments_masked(
    guarded: WebhookClient, webhook_server: WebhookServer, flaky: Flaky, store: Store
) -> None:
    flaky.failing = False
    action = inventory_action(webhook_server)
    caller = caller_header("slack", "T1", "U42", "C7")
    arguments = {"part_name": "hunter2-secret-value", "device_model": "iPhone"}
    result = await guarded.call(
        action, arguments, conversation="slack:C7:1.2", call_id="key-1", caller=caller
    )
    assert result.ok
    [row] = await store.recent_calls("check_inventory")
    assert (row.platform, row.team, row.user_id, row.channel) == ("slack", "T1", "U42", "C7")
    assert row.conversation == "slack:C7:1.2"
    assert row.idempotency_key == "key-1"
    assert row.outcome == "success"
    assert row.status == 200
    assert row.attempts == 1
    assert row.arguments is not None
    assert json.loads(row.arguments)["device_model"] == "iPhone"
    assert "hunter2-secret-value" not in row.arguments


# --- through the engine -----------------------------------------------------------------


def incoming(text: str = "Screens for the iPhone 15 Pro?", **changes: Any) -> IncomingMessage:
    fields: dict[str, Any] = {
        "platform": "slack",
        "conversation": "D1",
        "user_id": "U1",
        "text": text,
        "event_id": "Ev1",
        "channel_id": "D1",
    }
    return IncomingMessage(**(fields | changes))


MakeEngine = Callable[[Action], Any]


async def test_a_dry_run_turn_tells_the_model_and_the_admin_override_goes_live(
    guarded: WebhookClient,
    webhook_server: WebhookServer,
    flaky: Flaky,
    store: Store,
    llm: ScriptedLLM,
    chat_model: OpenAIChatModel,
) -> None:
    """An action in dry-run mode is offered and "called": the model gets what would have
    been sent and answers; nothing reaches the endpoint. `/actions dryrun NAME off`
    (the store's override) makes the next turn call it for real."""
    flaky.failing = False
    action = inventory_action(webhook_server, mode="dry_run")
    engine = make_engine([action], store=store, webhooks=guarded, model=chat_model)
    llm.tool_calls(("check_inventory", ARGS))
    llm.reply("This was only a test: nothing was checked.")

    reply = await engine.handle(incoming())
    assert reply.text == "This was only a test: nothing was checked."
    tool_message = llm.requests[-1]["messages"][-1]
    assert tool_message["role"] == "tool"
    seen = json.loads(tool_message["content"])
    assert seen["dry_run"] is True
    assert seen["arguments"] == ARGS
    assert seen["would_call"].startswith("GET https://127.0.0.1:")
    assert webhook_server.requests == []

    await store.set_dry_run("check_inventory", False, actor="slack:UADMIN")
    llm.tool_calls(("check_inventory", ARGS))
    llm.reply("Yes, in stock.")
    reply = await engine.handle(incoming("And now?", event_id="Ev2"))
    assert reply.text == "Yes, in stock."
    assert len(webhook_server.requests) == 1
    outcomes = [r.outcome for r in await store.recent_calls("check_inventory")]
    assert outcomes == ["success", "dry_run"]


async def test_a_dry_run_of_a_confirm_action_asks_nothing(
    guarded: WebhookClient,
    webhook_server: WebhookServer,
    flaky: Flaky,
    store: Store,
    llm: ScriptedLLM,
    chat_model: OpenAIChatModel,
) -> None:
    action = inventory_action(webhook_server, mode="dry_run", confirm=True)
    engine = make_engine([action], store=store, webhooks=guarded, model=chat_model)
    llm.tool_calls(("check_inventory", ARGS))
    llm.reply("Test only.")
    reply = await engine.handle(incoming())
    assert reply.confirmations == []
    assert reply.text == "Test only."
    assert webhook_server.requests == []
