"""`/actions console` and `/actions stats NAME` on Discord (`adapters.discord.console`,
`commands`, `format`) under real discord.py: slash commands and button clicks arrive as
INTERACTION_CREATE from the fake gateway, and the fake keeps the ephemeral console as
Discord shows it (an UPDATE_MESSAGE callback edits it)."""

from __future__ import annotations

import copy
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import build_action, inventory_action
from test_discord import ADMIN_ID, CHANNEL, GUILD, Harness, discord_harness

from adapters.discord import wording as discord_wording
from adapters.discord.commands import conversation_named
from bot.admin.console import SPARK_LEVELS, sparkline
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.store.sqlite import SQLiteStore
from bot.types import ActionResult, Outcome
from fakes.discord_server import (
    MANAGE_GUILD,
    USER_ID,
    component_interaction,
    interaction_create,
    user,
)
from fakes.https_server import WebhookServer
from fakes.openai_server import ScriptedLLM

DISABLE = "actionbot:console:disable:check_inventory"
ENABLE = "actionbot:console:enable:check_inventory"


@pytest.fixture
async def harness(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    """A connected adapter over `check_inventory`."""
    async with discord_harness(
        [inventory_action(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as opened:
        yield opened


async def open_console(harness: Harness) -> tuple[dict[str, Any], str]:
    """Run `/actions console` as a Manage Server member: a copy of the ephemeral message it
    shows, and the interaction's token (to look at the message again in the fake)."""
    payload = interaction_create(
        "actions console",
        channel_id=CHANNEL,
        guild_id=GUILD,
        command_guild_id=GUILD,
        permissions=MANAGE_GUILD,
    )
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    await harness.fake.wait_for(
        "POST", f"/interactions/{payload['id']}/{payload['token']}/callback"
    )
    shown = harness.fake.interaction_message(payload["token"])
    assert shown is not None
    return copy.deepcopy(shown), payload["token"]


async def press(
    harness: Harness, custom_id: str, message: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """Click `custom_id` on `message` (in the support channel); the callback the bot sent."""
    payload = component_interaction(custom_id, message, guild_id=GUILD, **kwargs)
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    [callback] = await harness.fake.wait_for(
        "POST", f"/interactions/{payload['id']}/{payload['token']}/callback"
    )
    return callback.json or {}


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


def field_values(message: dict[str, Any]) -> str:
    return "\n".join(f["value"] for e in message["embeds"] for f in e.get("fields", []))


async def test_console_button_by_an_admin_toggles_and_redraws(harness: Harness) -> None:
    """An admin's Disable click disables the action in the store (by that admin) and edits
    the console in place to show it inactive with an Enable button; the model is no longer
    offered the tool."""
    console, token = await open_console(harness)
    assert console["flags"] & 64  # ephemeral
    assert custom_ids(console) == [DISABLE]
    assert "🟢 active" in field_values(console)

    callback = await press(harness, DISABLE, console, permissions=MANAGE_GUILD)
    await harness.barrier()

    assert callback["type"] == 7  # UPDATE_MESSAGE: the console itself is edited
    state = (await harness.store.action_states())["check_inventory"]
    assert (state.active, state.changed_by) == (False, f"discord:{USER_ID}")
    redrawn = harness.fake.interaction_message(token)
    assert redrawn is not None
    assert custom_ids(redrawn) == [ENABLE]
    assert "⚪ inactive" in field_values(redrawn)
    assert "check_inventory is now disabled." in redrawn["embeds"][0]["description"]
    assert harness.tools_offered(0) == []


async def test_console_button_by_a_non_admin_is_refused(harness: Harness) -> None:
    """A member without Manage Server (and not listed) who clicks a console button gets an
    ephemeral refusal; the action stays as it was and the console is not edited."""
    console, token = await open_console(harness)

    callback = await press(harness, DISABLE, console, invoker=user("5555", "mallory"))
    await harness.barrier()

    assert callback["type"] == 4
    assert callback["data"]["flags"] & 64
    assert callback["data"]["content"] == discord_wording.NOT_ADMIN_DISCORD
    assert await harness.store.action_states() == {}
    assert harness.fake.interaction_message(token) == console
    assert harness.tools_offered(0) == ["check_inventory"]


async def test_a_click_delivered_twice_toggles_once(harness: Harness) -> None:
    """The same click delivered again (a gateway replay) is answered once."""
    console, _ = await open_console(harness)
    payload = component_interaction(
        DISABLE, console, guild_id=GUILD, invoker=user(ADMIN_ID, "boss")
    )
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"

    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    await harness.fake.wait_for("POST", path)
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    await harness.barrier()

    assert len(harness.fake.requests_to("POST", path)) == 1
    assert (await harness.store.action_states())["check_inventory"].changed_by == (
        f"discord:{ADMIN_ID}"
    )


async def test_console_with_more_actions_than_buttons_uses_selects(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """With 26 actions (more than Discord's 25 buttons) the console offers an Enable and a
    Disable select; choosing an action in Disable disables exactly that one."""
    actions = [build_action(webhook_server.url(f"/a{i}"), name=f"action_{i:02}") for i in range(26)]
    async with discord_harness(
        actions,
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as harness:
        console, _ = await open_console(harness)
        assert custom_ids(console) == [
            "actionbot:console-pick:disable",
            "actionbot:console-pick:enable",
        ]
        disable = console["components"][0]["components"][0]
        assert len(disable["options"]) == 25
        callback = await press(
            harness,
            "actionbot:console-pick:disable",
            console,
            permissions=MANAGE_GUILD,
            values=["action_07"],
        )

    assert callback["type"] == 7
    states = await store.action_states()
    assert {name: s.active for name, s in states.items()} == {"action_07": False}


async def test_stats_sparkline_equals_the_call_log(
    tmp_path: Path,
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """`/actions stats NAME` shows one block per hour of the last 24 whose heights follow the
    calls logged in each hour (none: the lowest block; the busiest: the highest), the peak,
    and the outcomes of those calls; a call older than 24 hours is left out."""
    now = time.time()
    clock = [now]
    log = [(0, "success"), (0, "success"), (0, "timeout"), (2, "success"), (5, "http_error")]
    log += [(5, "success")] * 5 + [(23, "success"), (30, "success")]
    async with await SQLiteStore.open(tmp_path / "clocked.db", clock=lambda: clock[0]) as store:
        for hours_ago, outcome in log:
            clock[0] = now - hours_ago * 3600 - 60
            await store.record_call(
                ActionResult(
                    action="check_inventory",
                    call_id=uuid.uuid4().hex,
                    outcome=Outcome(outcome),
                    latency_ms=120,
                )
            )
        clock[0] = now
        async with discord_harness(
            [inventory_action(webhook_server)],
            server=webhook_server,
            llm=llm,
            store=store,
            webhooks=webhooks,
            chat_model=chat_model,
        ) as harness:
            data = await harness.command("stats", permissions=MANAGE_GUILD, name="check_inventory")

    hourly = [0] * 24
    for hours_ago, _ in log:
        if hours_ago < 24:
            hourly[23 - hours_ago] += 1
    [field] = [f for f in data["embeds"][0]["fields"] if f["name"].startswith("Last 24 h")]
    spark_line, outcome_line = field["value"].split("\n")
    shown = spark_line.split("`")[1]
    assert shown == sparkline(hourly)
    assert [b == SPARK_LEVELS[0] for b in shown] == [v == 0 for v in hourly]
    assert [b == SPARK_LEVELS[-1] for b in shown] == [v == max(hourly) for v in hourly]
    assert spark_line.endswith(f"peak {max(hourly)}/h")
    outcomes = Counter(outcome for hours_ago, outcome in log if hours_ago < 24)
    assert outcome_line == "outcomes: " + " · ".join(
        f"`{k}` {v}" for k, v in sorted(outcomes.items())
    )


@pytest.mark.parametrize(
    ("typed", "conversation"),
    [
        ("https://discord.com/channels/500/123", "discord:thread:123"),
        ("<#123>", "discord:thread:123"),
        ("123", "discord:thread:123"),
        ("thread:123", "discord:thread:123"),
        ("dm:77", "discord:dm:77"),
        ("https://discord.com/channels/@me/77/88", "discord:dm:77"),
        ("discord:message:5", "discord:message:5"),
        ("nonsense", "nonsense"),
    ],
)
def test_resume_reads_a_thread_link_mention_or_id(typed: str, conversation: str) -> None:
    """`/actions resume conversation:` accepts what an admin can copy from Discord."""
    assert conversation_named(typed) == conversation
