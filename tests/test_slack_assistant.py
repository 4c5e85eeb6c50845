"""Slack AI-app assistant threads under real slack-bolt against the fake Slack: prompts,
title, status, the answer streamed with a task card per action call, and the fallback to a
placeholder edited into the answer when the workspace lacks the feature or a stream fails."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import LIMITS, build_action, inventory_action
from test_slack import ARGS, STOCK, Harness, slack_harness

from adapters.slack.assistant import STREAM_PIECE
from bot import wording
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.types import IncomingMessage
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import (
    app_mention,
    assistant_thread_started,
    block_actions,
    interactive_envelope,
    message,
)

THREAD = "1700000000.000050"
"""The assistant thread's ts, as `assistant_thread_started` gives it."""
LOYALTY = {"customer_id": "C-42"}


@pytest.fixture
async def harness(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    """Two actions: check_inventory answers, loyalty_status fails with HTTP 500."""
    webhook_server.route("/inventory/check", json_handler(STOCK))
    webhook_server.route("/loyalty", json_handler({"error": "down"}, status=500))
    actions = [
        inventory_action(webhook_server),
        build_action(
            webhook_server.url("/loyalty"), name="loyalty_status", parameters=["customer_id"]
        ),
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


async def ask(harness: Harness, text: str, *, event_id: str, thread: str = THREAD) -> None:
    """The customer writes `text` in assistant thread `thread` of their DM with the app."""
    event = message(text, "U1", "D1", harness.slack.next_ts(), thread_ts=thread)
    await harness.push_event(event, event_id=event_id)


def fallback_warnings(caplog: pytest.LogCaptureFixture, method: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and method in r.getMessage()
    ]


async def test_answer_is_streamed_with_a_card_per_call(harness: Harness) -> None:
    """A new thread gets the active actions as prompts; the first question titles it; the
    thread shows a status while the actions run; the answer is one streamed message with a
    card per call ending complete (with its latency) or error, and no placeholder."""
    await harness.push_event(assistant_thread_started("U1", "D1", THREAD), event_id="EvStart")
    inventory, loyalty = harness.llm.tool_calls(
        ("check_inventory", ARGS), ("loyalty_status", LOYALTY)
    )
    harness.llm.reply("Yes, **4** in stock.")

    await ask(harness, "Do you have iPhone 15 Pro screens?", event_id="Ev1")

    [prompts] = harness.slack.calls("assistant.threads.setSuggestedPrompts")
    assert (prompts["channel_id"], prompts["thread_ts"]) == ("D1", THREAD)
    assert [p["message"] for p in prompts["prompts"]] == ["Check Inventory", "Loyalty Status"]
    [title] = harness.slack.calls("assistant.threads.setTitle")
    assert (title["thread_ts"], title["title"]) == (THREAD, "Do you have iPhone 15 Pro screens?")
    statuses = [c["status"] for c in harness.slack.calls("assistant.threads.setStatus")]
    assert statuses[0] == wording.WORKING
    assert "Checking inventory…" in statuses
    [stream] = harness.slack.streams("D1")
    assert stream["thread_ts"] == THREAD
    assert stream["text"] == "Yes, **4** in stock."
    assert stream["streaming"] is False
    assert set(stream["tasks"]) == {inventory, loyalty}
    done, failed = stream["tasks"][inventory], stream["tasks"][loyalty]
    assert (done["title"], done["status"]) == ("Check Inventory", "complete")
    assert done["output"].endswith(" ms")
    assert (failed["title"], failed["status"]) == ("Loyalty Status", "error")
    assert failed["output"].startswith("Failed after ")
    first_states = {c["id"]: c["status"] for c in reversed(stream["chunks"])}
    assert first_states == {inventory: "in_progress", loyalty: "in_progress"}
    assert harness.slack.calls("chat.postMessage") == []
    assert harness.slack.calls("chat.update") == []
    assert await harness.store.has_conversation(f"slack:D1:{THREAD}")
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def test_configured_prompts_win_and_only_active_actions_are_suggested(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """ACTIONBOT_SUGGESTED_PROMPTS is used as given (at most four); without it the prompts
    are the first four actions an admin has not disabled."""
    actions = [build_action(webhook_server.url(f"/a{n}"), name=f"action_{n}") for n in range(6)]
    async with slack_harness(
        actions,
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as harness:
        await harness.store.set_active("action_1", False, actor="slack:UADMIN")
        await harness.push_event(assistant_thread_started("U1", "D1", "1.0"), event_id="Ev1")
    configured = "Where is my order?|Do you have screens?|Talk to a person"
    async with slack_harness(
        actions,
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
        settings={"suggested_prompts": configured},
    ) as configured_harness:
        await configured_harness.push_event(
            assistant_thread_started("U1", "D1", "2.0"), event_id="Ev2"
        )

    [derived] = harness.slack.calls("assistant.threads.setSuggestedPrompts")
    assert [p["title"] for p in derived["prompts"]] == [
        "Action 0",
        "Action 2",
        "Action 3",
        "Action 4",
    ]
    [given] = configured_harness.slack.calls("assistant.threads.setSuggestedPrompts")
    assert [p["message"] for p in given["prompts"]] == configured.split("|")


@pytest.mark.parametrize("method", ["chat.startStream", "assistant.threads.setStatus"])
async def test_a_workspace_without_the_feature_gets_placeholders_logged_once(
    harness: Harness, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    """When `method` answers unknown_method, that answer and every later one in the process
    is a placeholder edited into the answer (in the thread), with one warning in all."""
    harness.slack.fail_next(method, "unknown_method", times=10)
    harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.reply("4 in stock.")
    harness.llm.reply("Anything else?")

    await ask(harness, "Screens?", event_id="Ev1")
    await ask(harness, "And batteries?", event_id="Ev2", thread="1700000000.000060")

    assert len(harness.slack.calls(method)) == 1
    assert harness.slack.streams("D1") == []
    posts = harness.slack.calls("chat.postMessage")
    assert [(p["text"], p["thread_ts"]) for p in posts] == [
        (f"_{wording.WORKING}_", THREAD),
        (f"_{wording.WORKING}_", "1700000000.000060"),
    ]
    updates = [u["text"] for u in harness.slack.calls("chat.update")]
    assert updates[-1] == "Anything else?"
    assert "4 in stock." in updates
    assert len(fallback_warnings(caplog, method)) == 1
    assert "placeholder" in fallback_warnings(caplog, method)[0]


async def test_a_stream_that_stops_taking_text_still_delivers_the_answer_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The stream shows the call's card, then appendStream is rate-limited past the client's
    retries when the answer comes: the answer arrives once, as a normal thread message, and
    the stream is still stopped; the same on a second thread, with one warning in all."""
    harness.slack.rate_limit_next(
        "chat.appendStream", retry_after=0, times=6, when=lambda p: "markdown_text" in p
    )
    [call] = harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.reply("Yes, 4 in stock.")
    harness.llm.tool_calls(("check_inventory", {**ARGS, "part_name": "battery"}))
    harness.llm.reply("Batteries too.")
    other = "1700000000.000060"

    await ask(harness, "Screens?", event_id="Ev1")
    await harness.push_event(assistant_thread_started("U1", "D1", other), event_id="EvNew")
    await ask(harness, "Batteries?", event_id="Ev2", thread=other)

    first, second = harness.slack.streams("D1")
    assert first["tasks"][call]["status"] == "complete"
    assert (first["text"], second["text"]) == ("", "")
    assert not first["streaming"]
    assert not second["streaming"]
    posts = [(p["text"], p["thread_ts"]) for p in harness.slack.calls("chat.postMessage")]
    assert posts == [("Yes, 4 in stock.", THREAD), ("Batteries too.", other)]
    assert len(fallback_warnings(caplog, "chat.appendStream")) == 1
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 2, "failed": 0}


async def test_a_long_answer_that_breaks_midway_is_neither_lost_nor_repeated(
    harness: Harness,
) -> None:
    """The first pieces of a long answer are streamed; when an append fails the rest follows
    as normal messages, so every paragraph reaches the customer exactly once."""
    paragraphs = [f"Paragraph {n}: " + "word " * 60 for n in range(8)]
    harness.llm.reply("\n\n".join(paragraphs))
    appended = 0

    def second_text_append(params: dict[str, Any]) -> bool:
        nonlocal appended
        appended += "markdown_text" in params
        return appended == 2

    harness.slack.fail_next("chat.appendStream", "internal_error", when=second_text_append)

    await ask(harness, "Tell me everything", event_id="Ev1")

    [stream] = harness.slack.streams("D1")
    posted = [p["text"] for p in harness.slack.calls("chat.postMessage")]
    assert stream["text"]
    assert posted
    assert all(len(piece) <= STREAM_PIECE for piece in posted)
    seen = stream["text"] + "".join(posted)
    assert [seen.count(f"Paragraph {n}:") for n in range(8)] == [1] * 8
    assert stream["streaming"] is False


@pytest.mark.parametrize("recorded", [True, False])
async def test_a_replay_finishes_the_stream_an_earlier_attempt_started(
    harness: Harness, recorded: bool
) -> None:
    """A process died after starting the stream (with its ts recorded, or only marked as
    starting): the next start appends the answer to that stream and starts no other."""
    asked = harness.slack.next_ts()
    started = await harness.adapter.client.chat_startStream(
        channel="D1",
        thread_ts=THREAD,
        chunks=[
            {"type": "task_update", "id": "c0", "title": "Check Inventory", "status": "complete"}
        ],
    )
    route: dict[str, Any] = {
        "channel": "D1",
        "thread_ts": THREAD,
        "ts": asked,
        "assistant": True,
        "streaming": True,
    }
    if recorded:
        route["stream"] = started["ts"]
    incoming = IncomingMessage(
        platform="slack",
        conversation=f"D1:{THREAD}",
        user_id="U1",
        text="Screens?",
        event_id="EvCrash",
    )
    await harness.store.receive(incoming, route=route, owner="gone:1", lease_seconds=0)
    harness.llm.reply("Yes, 4 in stock.")

    assert await harness.adapter.inbox.recover(at_start=True) == 1
    await harness.turns.drain()

    assert len(harness.slack.calls("chat.startStream")) == 1  # the one of the dead process
    assert harness.slack.calls("chat.postMessage") == []
    stream = harness.slack.stream("D1", started["ts"])
    assert stream["text"] == "Yes, 4 in stock."
    assert stream["streaming"] is False
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def test_a_top_level_dm_and_a_mention_keep_the_placeholder(harness: Harness) -> None:
    """Outside assistant threads nothing changes: a top-level DM (the DM's one conversation)
    and a channel mention are answered by editing a placeholder, without streams."""
    harness.llm.reply("Hi there.")
    harness.llm.reply("Hello channel.")

    await harness.push_event(message("hello", "U1", "D1", harness.slack.next_ts()), event_id="E1")
    mention = app_mention("<@UBOT> hi", "U1", "C1", harness.slack.next_ts())
    await harness.push_event(mention, event_id="E2")

    assert harness.slack.streams("D1") == []
    assert harness.slack.streams("C1") == []
    assert harness.slack.calls("assistant.threads.setStatus") == []
    assert [u["text"] for u in harness.slack.calls("chat.update")] == [
        "Hi there.",
        "Hello channel.",
    ]
    assert await harness.store.has_conversation("slack:D1")


def test_the_manifest_asks_for_what_assistant_threads_use() -> None:
    """slack-app-manifest.yml turns the assistant view on, asks for `assistant:write` and
    subscribes to the assistant events the adapter listens for, with interactivity on for
    the console's buttons."""
    manifest = yaml.safe_load((Path(__file__).parent.parent / "slack-app-manifest.yml").read_text())

    assert manifest["features"]["assistant_view"]["assistant_description"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"assistant:write", "chat:write", "im:history", "channels:read"} <= scopes
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= events
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


async def test_a_confirmation_in_an_assistant_thread_goes_on_in_the_stream(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """A `confirm = true` call in an assistant thread posts its card in the thread; after the
    requester's click the call runs once and its card and the answer are streamed there."""
    webhook_server.route("/returns", json_handler({"return_id": "R-77"}))
    action = build_action(webhook_server.url("/returns"), name="create_return", method="POST")
    action = action.model_copy(update={"confirm": True, "display_name": "Create Return"})
    async with slack_harness(
        [action],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
        limits=dataclasses.replace(LIMITS, confirm_ttl=60),
    ) as harness:
        [call] = llm.tool_calls(("create_return", {}))
        await ask(harness, "Please return my order", event_id="EvReturn")
        [card] = [m for m in harness.slack.messages("D1") if m.get("blocks")]
        assert card["thread_ts"] == THREAD
        [actions] = [b for b in card["blocks"] if b["type"] == "actions"]
        llm.reply("Return R-77 created.")
        click = block_actions(
            "actionbot_confirm",
            actions["elements"][0]["value"],
            user_id="U1",
            channel_id="D1",
            message_ts=card["ts"],
            response_url=harness.slack.response_url("click"),
        )
        await harness.slack.wait_for_ack(await harness.slack.push(interactive_envelope(click)))
        await harness.turns.drain()

    [stream] = harness.slack.streams("D1")
    assert stream["thread_ts"] == THREAD
    assert stream["text"] == "Return R-77 created."
    assert stream["tasks"][call]["status"] == "complete"
    assert len(webhook_server.requests) == 1
