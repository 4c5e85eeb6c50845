"""The `/actions` console and 24-hour stats on Slack, under real slack-bolt against the fake
Slack: Block Kit with a button per action, clicks re-checked and redrawn in place, and the
stats' sparkline drawn from the call log."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import build_action, inventory_action
from test_slack import STOCK, Harness, slack_harness

from adapters.slack.blocks import MAX_BLOCKS
from adapters.slack.console import TOGGLE_ACTION, console_blocks
from bot import wording
from bot.admin.console import Console, ConsoleRow, sparkline
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.store.sqlite import SQLiteStore
from bot.types import ActionResult, Outcome
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import (
    block_actions,
    interactive_envelope,
    message,
    slash_command_envelope,
)

HOUR = 3600.0


@pytest.fixture
async def harness(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    webhook_server.route("/inventory/check", json_handler(STOCK))
    actions = [
        inventory_action(webhook_server),
        build_action(webhook_server.url("/loyalty"), name="loyalty_status"),
    ]
    async with slack_harness(
        actions,
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as opened:
        yield opened


async def slash(harness: Harness, text: str, *, user: str, key: str) -> dict[str, Any]:
    """`/actions TEXT` by `user` in C1; what it posted to its response URL."""
    url = harness.slack.response_url(key)
    envelope = slash_command_envelope(text=text, user_id=user, response_url=url)
    await harness.slack.wait_for_ack(await harness.slack.push(envelope))
    await harness.turns.drain()
    [response] = harness.slack.responses(key)
    return dict(response)


async def press(harness: Harness, value: str, *, user: str, key: str) -> list[Any]:
    """A press of the console button carrying `value`, on the ephemeral console."""
    payload = block_actions(
        TOGGLE_ACTION,
        value,
        user_id=user,
        block_id=f"actionbot_console:{value.partition(':')[2]}",
        response_url=harness.slack.response_url(key),
        ephemeral=True,
    )
    await harness.slack.wait_for_ack(await harness.slack.push(interactive_envelope(payload)))
    await harness.turns.drain()
    return harness.slack.responses(key)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    """Each row's button: block id → the value it sends."""
    return {b["block_id"]: b["accessory"]["value"] for b in blocks if "accessory" in b}


async def test_an_admin_press_toggles_persists_and_redraws(harness: Harness) -> None:
    """`/actions` alone shows each action with its 24-hour numbers and a Disable button; an
    admin's press disables the action for good (who did it is kept), the console is
    redrawn in place with an Enable button, and the next turn no longer offers the tool."""
    await harness.store.record_call(
        ActionResult(action="check_inventory", call_id="c1", outcome=Outcome.SUCCESS, latency_ms=42)
    )
    console = await slash(harness, "", user="UADMIN", key="console")

    assert console["response_type"] == "ephemeral"
    assert buttons(console["blocks"]) == {
        "actionbot_console:check_inventory": "disable:check_inventory",
        "actionbot_console:loyalty_status": "disable:loyalty_status",
    }
    row = json.dumps(console["blocks"][1])
    assert "1 call" in row
    assert "success 100%" in row
    assert "p95 42 ms" in row

    [redrawn] = await press(harness, "disable:check_inventory", user="UADMIN", key="press")

    assert redrawn["replace_original"] is True
    assert buttons(redrawn["blocks"])["actionbot_console:check_inventory"] == (
        "enable:check_inventory"
    )
    assert "check_inventory is now disabled." in json.dumps(redrawn["blocks"])
    state = (await harness.store.action_states())["check_inventory"]
    assert (state.active, state.changed_by) == (False, "slack:UADMIN")
    harness.llm.reply("I can't check stock right now.")
    await harness.push_event(message("stock?", "U1", "D1", harness.slack.next_ts()), event_id="E1")
    assert harness.tools_offered(0) == ["loyalty_status"]


async def test_a_non_admin_press_is_refused_and_changes_nothing(harness: Harness) -> None:
    """A member who presses a console button (a forwarded or replayed payload) is told
    privately that only admins may, the action keeps its state, and the console stays."""
    [refusal] = await press(harness, "disable:check_inventory", user="U1", key="member")

    assert refusal["text"] == wording.NOT_ADMIN
    assert refusal["response_type"] == "ephemeral"
    assert refusal["replace_original"] is False
    assert await harness.store.action_states() == {}
    assert [c["user"] for c in harness.slack.calls("users.info")] == ["U1"]


async def test_text_subcommands_and_resume_still_answer(harness: Harness) -> None:
    """`/actions list` answers as before, and `/actions resume` with nothing handed over
    says so in Block Kit."""
    listed = await slash(harness, "list", user="UADMIN", key="list")
    resumed = await slash(harness, "resume", user="UADMIN", key="resume")

    assert "check_inventory" in listed["text"]
    assert "No conversation in slack:C1 is with a person" in json.dumps(resumed["blocks"])


async def test_stats_sparkline_equals_the_call_log(
    tmp_path: Path,
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """`/actions stats NAME` draws one block per hour of the last 24 from the calls recorded
    (a call older than that does not count) and breaks them down by outcome."""
    now = time.time()
    clock = [now]
    ago = {26.0: Outcome.SUCCESS, 23.5: Outcome.SUCCESS, 5.5: Outcome.TIMEOUT}
    ago |= {
        5.2: Outcome.SUCCESS,
        0.5: Outcome.SUCCESS,
        0.4: Outcome.HTTP_ERROR,
        0.1: Outcome.SUCCESS,
    }
    async with await SQLiteStore.open(tmp_path / "clocked.db", clock=lambda: clock[0]) as store:
        for hours, outcome in ago.items():
            clock[0] = now - hours * HOUR
            result = ActionResult(
                action="check_inventory", call_id="c", outcome=outcome, latency_ms=10
            )
            await store.record_call(result)
        clock[0] = now
        async with slack_harness(
            [inventory_action(webhook_server)],
            server=webhook_server,
            llm=llm,
            store=store,
            webhooks=webhooks,
            chat_model=chat_model,
        ) as harness:
            stats = await slash(harness, "stats check_inventory", user="UADMIN", key="stats")

    hourly = [0] * 24
    for hours in ago:
        if hours < 24:
            hourly[23 - int(hours)] += 1
    text = json.dumps(stats["blocks"], ensure_ascii=False)
    assert f"`{sparkline(hourly)}`" in text
    assert sparkline(hourly) == "▃" + "▁" * 17 + "▅" + "▁" * 4 + "▇"
    assert "http_error 1, success 4, timeout 1" in text


def test_the_console_stays_within_block_kit_limits() -> None:
    """However many actions there are, the console is at most 50 blocks and says how to
    reach the ones it could not show."""
    rows = [ConsoleRow(f"a{n}", f"A {n}", n % 2 == 0, n, None, None) for n in range(80)]

    blocks = console_blocks(Console(rows, notice="a0 is now enabled."))

    assert len(blocks) <= MAX_BLOCKS
    assert "…and 35 more" in json.dumps(blocks, ensure_ascii=False)
    values = [b["accessory"]["value"] for b in blocks if "accessory" in b]
    assert values[:2] == ["disable:a0", "enable:a1"]
