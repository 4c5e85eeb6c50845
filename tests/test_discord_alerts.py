"""Guardrails on Discord under real discord.py against the fake Discord, with the platform
wired as `actionbot run` wires it (`configured_platforms`: the shards, and their alert
poster): one alert per breaker opening in the alert channel, an alert channel the bot
cannot post in, and `/actions dryrun` and `/actions audit` as interactions."""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from conftest import inventory_action, loopback_only, make_engine
from test_discord import (
    ARGS,
    CHANNEL,
    DM_CHANNEL,
    GUILD,
    Harness,
    messages_in,
    settings,
)
from test_discord_format import assert_within_limits

from actionbot.platforms import configured_platforms
from adapters.discord import wording as discord_wording
from adapters.discord.format import admin_reply
from adapters.discord.shards import DiscordShards
from bot.admin.breakers import BreakerReport
from bot.admin.operations import Admin
from bot.admin.results import AuditReport
from bot.delivery import Inbox
from bot.llm.client import OpenAIChatModel
from bot.outbound.breaker import FIRST_COOLDOWN, Breakers
from bot.outbound.guard import Guard
from bot.outbound.webhooks import WebhookClient
from bot.runtime.alerts import Alerts
from bot.runtime.http import HttpServer
from bot.runtime.tasks import Turns
from bot.store import AuditRow, Store
from fakes.discord_server import MANAGE_GUILD, FakeDiscord, guild_create, text_channel
from fakes.https_server import WebhookServer
from fakes.openai_server import ScriptedLLM

ALERTS = "650"
MISSING = "651"


class Clock:
    """The breakers' clock, moved by the test instead of waiting out a cool-down."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    """The inventory endpoint, healthy or answering 500 on demand."""

    def __init__(self) -> None:
        self.status = 200

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"in_stock": self.status == 200}, status=self.status)


@contextlib.asynccontextmanager
async def running(
    *,
    alert_channel: str,
    server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    chat_model: OpenAIChatModel,
    client_ssl_context: ssl.SSLContext,
    clock: Clock | None = None,
) -> AsyncIterator[Harness]:
    """Discord as `actionbot run` starts it, over `check_inventory`, with breakers that open
    after two failures and report to the admins' alert channel."""
    actions = [inventory_action(server)]
    configured = settings(
        discord_guild=int(GUILD), alert_channel=f"discord:{alert_channel}", breaker_failures=2
    )
    alerts = Alerts(configured.alert_channels)
    async with WebhookClient(
        policy=loopback_only(), recorder=store, ssl_context=client_ssl_context
    ) as webhooks:
        engine = make_engine(actions, store=store, webhooks=webhooks, model=chat_model)
        report = BreakerReport(
            actions=engine.actions, store=store, metrics=engine.metrics, alerts=alerts
        )
        breakers = Breakers(
            failures=configured.breaker_failures, listener=report, clock=clock or Clock()
        )
        webhooks.guard = Guard(breakers)
        admin = Admin(actions=engine.actions, store=store, webhooks=webhooks, result_chars=4000)
        guild = guild_create(
            GUILD, channels=[text_channel(CHANNEL, "support"), text_channel(ALERTS, "alerts")]
        )
        async with FakeDiscord(guilds=[guild]) as fake:
            with fake.patched():
                turns = Turns()
                platforms = configured_platforms(
                    configured,
                    engine=engine,
                    admin=admin,
                    store=store,
                    turns=turns,
                    inbox=Inbox(store, turns, metrics=engine.metrics),
                    http=HttpServer(port=0),
                    alerts=alerts,
                )
                shards = platforms["discord"]
                assert isinstance(shards, DiscordShards)
                await shards.start()
                try:
                    [adapter] = shards.held.values()
                    yield Harness(fake, llm, server, store, turns, adapter)
                finally:
                    await alerts.drain()
                    await shards.close()


@pytest.fixture
def endpoint(webhook_server: WebhookServer) -> Endpoint:
    handler = Endpoint()
    webhook_server.route("/inventory/check", handler)
    return handler


@pytest.fixture
async def harness(
    endpoint: Endpoint,
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    chat_model: OpenAIChatModel,
    client_ssl_context: ssl.SSLContext,
) -> AsyncIterator[Harness]:
    async with running(
        alert_channel=ALERTS,
        server=webhook_server,
        llm=llm,
        store=store,
        chat_model=chat_model,
        client_ssl_context=client_ssl_context,
    ) as opened:
        yield opened


async def ask(harness: Harness, question: str, answer: str) -> None:
    """A DM whose turn calls `check_inventory`; waits until `answer` is posted."""
    harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.reply(answer)
    await harness.say(question, channel_id=DM_CHANNEL, guild_id=None)
    await harness.fake.wait_until(
        lambda: any(
            r.json and r.json.get("content") == answer
            for r in harness.fake.requests_to("POST", messages_in(DM_CHANNEL))
        ),
        what=answer,
    )
    await harness.turns.drain()


def posted_in(harness: Harness, channel: str) -> list[dict[str, Any]]:
    return [r.json for r in harness.fake.requests_to("POST", messages_in(channel)) if r.json]


async def test_a_breaker_opening_posts_one_alert_in_the_alert_channel(
    harness: Harness, endpoint: Endpoint
) -> None:
    """Two 500s open the breaker: one alert (naming the action, pinging nobody) in the
    alert channel; the next call is short-circuited without a request and alerts nobody."""
    endpoint.status = 500
    await ask(harness, "Screens?", "The stock service is down.")
    await ask(harness, "Screens now?", "Still down.")
    await harness.fake.wait_for("POST", messages_in(ALERTS))
    await ask(harness, "And now?", "Try again later.")

    [alert] = posted_in(harness, ALERTS)
    assert "check_inventory" in alert["content"]
    assert "Check Inventory" in alert["content"]
    assert alert["allowed_mentions"] == {"parse": []}
    assert len(harness.server.requests) == 2
    assert "temporarily unavailable" in str(harness.llm.requests[5]["messages"][-1]["content"])


async def test_an_alert_channel_discord_refuses_is_one_warning(
    endpoint: Endpoint,
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    chat_model: OpenAIChatModel,
    client_ssl_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An alert channel Discord does not know (404): the opening and the recovery are both
    alerts, both tried and logged, and the refusal is one warning; the breaker works."""
    endpoint.status = 500
    clock = Clock()
    async with running(
        alert_channel=MISSING,
        clock=clock,
        server=webhook_server,
        llm=llm,
        store=store,
        chat_model=chat_model,
        client_ssl_context=client_ssl_context,
    ) as harness:
        caplog.set_level(logging.WARNING, logger="bot.runtime.alerts")
        await ask(harness, "Screens?", "Down.")
        await ask(harness, "Screens now?", "Still down.")
        await ask(harness, "And now?", "Try later.")
        clock.now += FIRST_COOLDOWN  # the cool-down is over: the next call is a probe
        endpoint.status = 200
        await ask(harness, "Now?", "Yes, in stock.")
        await harness.fake.wait_for("POST", messages_in(MISSING), count=2)
        await harness.turns.drain()

    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert: ")]
    assert len(alerts) == 2
    refusals = [r.getMessage() for r in caplog.records if "cannot post alerts" in r.getMessage()]
    assert len(refusals) == 1
    assert f"discord:{MISSING}" in refusals[0]
    assert len(webhook_server.requests) == 3


async def test_dryrun_by_an_admin_is_stored_and_a_member_is_refused(harness: Harness) -> None:
    """`/actions dryrun check_inventory on` by a member is refused and changes nothing; by
    a Manage Server member it answers and the override is stored."""
    refused = await harness.command("dryrun", name="check_inventory", mode="on")
    assert refused["content"] == discord_wording.NOT_ADMIN_DISCORD
    assert await harness.store.action_modes() == {}

    data = await harness.command(
        "dryrun", permissions=MANAGE_GUILD, name="check_inventory", mode="on"
    )

    assert data["flags"] == 64
    assert data["content"].startswith("🧪 `check_inventory` is now in dry-run mode")
    assert await harness.store.action_modes() == {"check_inventory": True}
    listed = await harness.command("list", permissions=MANAGE_GUILD)
    assert "🧪 dry run: nothing is sent" in listed["embeds"][0]["fields"][0]["value"]


async def test_audit_shows_the_calls_newest_first(harness: Harness) -> None:
    """`/actions audit check_inventory` shows each call: who asked, where, how it went and
    the arguments as sent."""
    await ask(harness, "Screens?", "Yes, 4 left.")
    await harness.command("dryrun", permissions=MANAGE_GUILD, name="check_inventory", mode="on")
    await ask(harness, "Screens again?", "That was a test.")

    data = await harness.command("audit", permissions=MANAGE_GUILD, name="check_inventory")

    [embed] = data["embeds"]
    assert embed["title"] == "Audit: check_inventory"
    newest, oldest = embed["fields"]
    assert "dry_run" in newest["name"]
    assert "success" in oldest["name"]
    assert "HTTP 200" in oldest["name"]
    for field in (newest, oldest):
        assert "iPhone 15 Pro" in field["value"]
        assert "discord:" in field["value"]
        assert f"`{DM_CHANNEL}`" in field["value"]


def test_an_audit_of_ten_oversized_calls_fits_one_message() -> None:
    """Ten calls with huge arguments and errors (mentions, fences) stay within every
    Discord limit, ping nobody and keep every code block closed."""
    noisy = "@everyone ``` " + "x" * 5000
    row = AuditRow(
        id=1,
        recorded_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        action="check_inventory",
        platform="discord",
        user_id="4000",
        channel=DM_CHANNEL,
        arguments=json.dumps({"note": noisy}),
        idempotency_key="k" * 40,
        outcome="http_error",
        status=500,
        latency_ms=12.0,
        attempts=3,
        error=noisy,
    )
    content, embeds = admin_reply(AuditReport("check_inventory", [row] * 10))

    assert_within_limits(content, embeds)
    assert len(embeds[0].fields) == 10
    assert "@everyone" not in json.dumps([e.to_dict() for e in embeds])
