"""Handing a conversation to a person, end to end in the core: the `handoff_to_human` tool
offered where a handoff channel is set (real `openai` SDK, scripted LLM), the inbox's
silence afterwards and `/actions resume`, and what admins see (console, stats, metrics)."""

from __future__ import annotations

import json

from conftest import LIMITS, build_action, inventory_action
from prometheus_client import generate_latest
from test_engine import tool_names

from bot import wording
from bot.actions.models import ActionSet
from bot.admin.console import sparkline
from bot.admin.operations import Admin, Console, Notice, Resumed, StatsReport, render_text
from bot.delivery import Inbox
from bot.engine import HANDOFF_TOOL, Engine
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.metrics import Metrics
from bot.runtime.tasks import Turns
from bot.store import InboxEntry, Store
from bot.types import ActionResult, IncomingMessage, Outcome, Reply
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM

STOCK = {"in_stock": False}


def customer(text: str, event_id: str, conversation: str = "C1:1.0") -> IncomingMessage:
    return IncomingMessage(
        platform="slack",
        conversation=conversation,
        user_id="U1",
        text=text,
        event_id=event_id,
        channel_id="C1",
    )


def make(
    webhook_server: WebhookServer,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
    *,
    handoff: frozenset[str],
) -> Engine:
    webhook_server.route("/inventory/check", json_handler(STOCK))
    return Engine(
        actions=ActionSet([inventory_action(webhook_server)], source="test"),
        store=store,
        webhooks=webhooks,
        model=chat_model,
        limits=LIMITS,
        handoff_platforms=handoff,
    )


async def test_the_model_hands_over_and_the_turn_ends_with_the_fixed_line(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """Where a handoff channel is set, the model sees `handoff_to_human`; calling it ends
    the turn (no further model request) with the handed-over line and what the team is to
    be told: the question, the reason, the actions tried."""
    engine = make(webhook_server, store, webhooks, chat_model, handoff=frozenset({"slack"}))
    args = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
    llm.tool_calls(("check_inventory", args))
    llm.tool_calls((HANDOFF_TOOL, {"reason": "Wants a person", "summary": "Screen out of stock"}))

    reply = await engine.handle(customer("Screens? Or let me talk to someone", "Ev1"))

    assert reply.text == wording.HANDED_OFF
    assert not reply.failed
    assert reply.handoff is not None
    assert reply.handoff.conversation == "slack:C1:1.0"
    assert reply.handoff.reason == "Wants a person"
    assert reply.handoff.summary == "Screen out of stock"
    assert reply.handoff.question == "Screens? Or let me talk to someone"
    assert reply.handoff.actions_tried == ["Check Inventory"]
    assert len(llm.requests) == 2
    assert tool_names(llm.requests[0]) == ["check_inventory", HANDOFF_TOOL]
    history = await store.load_messages("slack:C1:1.0", limit=20)
    assert history[-1] == {"role": "assistant", "content": wording.HANDED_OFF}
    assert json.loads(history[-2]["content"]) == {"ok": True, "handed_off": True}


async def test_without_a_handoff_channel_the_tool_is_neither_offered_nor_honoured(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """On a platform without a handoff channel the tool is not offered, and a model that
    calls it anyway gets an unknown-tool error and answers itself."""
    engine = make(webhook_server, store, webhooks, chat_model, handoff=frozenset({"discord"}))
    llm.tool_calls((HANDOFF_TOOL, {"reason": "x"}))
    llm.reply("I can help you myself.")

    reply = await engine.handle(customer("a person please", "Ev1"))

    assert reply.text == "I can help you myself."
    assert reply.handoff is None
    assert tool_names(llm.requests[0]) == ["check_inventory"]
    [result] = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert json.loads(result["content"])["ok"] is False


class Answering:
    """An adapter's answer function over the real engine, recording what it was asked."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.answered: list[str] = []

    async def __call__(self, entry: InboxEntry) -> Reply | None:
        reply = entry.reply or await self.engine.handle(entry.message)
        self.answered.append(entry.message.text)
        return reply


async def test_after_a_handoff_the_bot_is_silent_until_resumed(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """Once the handover was delivered, later messages of the conversation are settled
    without a turn (no model request), other conversations are answered, and after
    `/actions resume` in the channel the bot answers there again; handoffs show in the
    metrics and in `/actions stats`."""
    engine = make(webhook_server, store, webhooks, chat_model, handoff=frozenset({"slack"}))
    metrics = Metrics()
    inbox = Inbox(store, Turns(), metrics=metrics, handoff_seconds=3600)
    answers = Answering(engine)
    inbox.register("slack", answers)
    admin = Admin(actions=engine.actions, store=store, webhooks=webhooks, result_chars=4000)

    llm.tool_calls((HANDOFF_TOOL, {"reason": "asked for a person"}))
    await inbox.receive(customer("a person please", "Ev1"), {})
    await inbox.turns.drain()
    await inbox.receive(customer("hello? anyone?", "Ev2"), {})
    await inbox.turns.drain()
    llm.reply("Other thread answered.")
    await inbox.receive(customer("other question", "Ev3", conversation="C1:2.0"), {})
    await inbox.turns.drain()

    assert answers.answered == ["a person please", "other question"]
    assert len(llm.requests) == 2
    assert await store.inbox_counts() == {"pending": 0, "done": 3, "failed": 0}
    scrape = generate_latest(metrics.registry).decode()
    assert 'actionbot_handoffs_total{platform="slack"} 1.0' in scrape
    assert 'actionbot_turns_total{outcome="silent"} 1.0' in scrape
    report = await admin.execute("stats", actor="slack:UADMIN")
    assert isinstance(report, StatsReport)
    assert report.handoffs == (1, 1)
    assert "Handed to a person: 1 conversations, 1 still with a person." in render_text(report)

    resumed = await admin.execute("resume", actor="slack:UADMIN", where="slack:C1")
    assert resumed == Resumed("slack:C1", ["slack:C1:1.0"])
    llm.reply("Back to help.")
    await inbox.receive(customer("still there?", "Ev4"), {})
    await inbox.turns.drain()
    assert answers.answered[-1] == "still there?"
    assert (await admin.stats(None)).handoffs == (1, 0)


async def test_resume_outside_a_conversation_says_how(
    webhook_server: WebhookServer,
    store: Store,
    webhooks: WebhookClient,
) -> None:
    """From the shell (no conversation to resume in) `resume` needs a name; naming one that
    is not with a person says nothing was resumed."""
    admin = Admin(
        actions=ActionSet([inventory_action(webhook_server)], source="test"),
        store=store,
        webhooks=webhooks,
        result_chars=4000,
    )
    refused = await admin.execute("resume", actor="cli:ops")
    assert isinstance(refused, Notice)
    assert refused.error
    assert "name the conversation" in refused.text
    nothing = await admin.execute("resume slack:C9", actor="cli:ops")
    assert render_text(nothing) == (
        "No conversation in slack:C9 is with a person; nothing to resume."
    )


def recorded(action: str, outcome: Outcome, latency_ms: float) -> ActionResult:
    return ActionResult(action=action, call_id="c", outcome=outcome, latency_ms=latency_ms)


async def test_console_rows_and_toggle_show_the_last_24_hours(
    webhook_server: WebhookServer, store: Store, webhooks: WebhookClient
) -> None:
    """The console has one row per action in file order with its state and 24-hour calls,
    success rate and p95; a console toggle persists and the redrawn console says so; a
    toggle of an unknown name changes nothing and says why."""
    actions = [
        inventory_action(webhook_server),
        build_action(webhook_server.url("/loyalty"), name="loyalty_status"),
    ]
    admin = Admin(
        actions=ActionSet(actions, source="test"), store=store, webhooks=webhooks, result_chars=1
    )
    for latency in (10.0, 20.0, 30.0):
        await store.record_call(recorded("check_inventory", Outcome.SUCCESS, latency))
    await store.record_call(recorded("check_inventory", Outcome.TIMEOUT, 5000.0))

    console = await admin.execute("", actor="slack:UADMIN")
    assert isinstance(console, Console)
    inventory, loyalty = console.rows
    assert (inventory.name, inventory.active, inventory.calls) == ("check_inventory", True, 4)
    assert inventory.success_rate == 0.75
    assert inventory.p95_latency_ms == 5000.0
    assert (loyalty.name, loyalty.calls, loyalty.success_rate) == ("loyalty_status", 0, None)

    redrawn = await admin.toggle_from_console("check_inventory", False, actor="slack:UADMIN")
    assert redrawn.notice == "check_inventory is now disabled."
    assert [r.active for r in redrawn.rows] == [False, True]
    assert (await store.action_states())["check_inventory"].changed_by == "slack:UADMIN"
    unknown = await admin.toggle_from_console("nope", False, actor="slack:UADMIN")
    assert "nope" in unknown.notice
    assert [r.active for r in unknown.rows] == [False, True]
    assert "CALLS 24H" in render_text(redrawn)


async def test_stats_of_one_action_carry_its_hourly_calls_and_outcomes(
    webhook_server: WebhookServer, store: Store, webhooks: WebhookClient
) -> None:
    """`/actions stats NAME` carries the last 24 hours by hour (the current hour last) with
    the outcome breakdown, drawn as a sparkline in the text."""
    admin = Admin(
        actions=ActionSet([inventory_action(webhook_server)], source="test"),
        store=store,
        webhooks=webhooks,
        result_chars=1,
    )
    await store.record_call(recorded("check_inventory", Outcome.SUCCESS, 10.0))
    await store.record_call(recorded("check_inventory", Outcome.HTTP_ERROR, 10.0))

    report = await admin.execute("stats check_inventory", actor="cli:ops")
    assert isinstance(report, StatsReport)
    assert report.recent is not None
    assert report.recent.hourly == [0] * 23 + [2]
    assert report.recent.outcomes == {"http_error": 1, "success": 1}
    text = render_text(report)
    assert "▁" * 23 + "▇" in text
    assert "Outcomes in the last 24 h: http_error 1, success 1." in text


def test_sparkline_scales_to_the_peak_and_keeps_any_call_visible() -> None:
    """Zero is the lowest block, the peak the highest, and a single call among hundreds
    still shows above zero."""
    assert sparkline([0, 1, 50, 75, 100]) == "▁▂▃▅▇"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([]) == ""
    assert sparkline([3]) == "▇"
