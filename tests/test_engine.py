"""The engine's tool loop against the real `openai` SDK, a scripted LLM and a real webhook."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from conftest import build_action, inventory_action, make_engine

from bot import wording
from bot.engine import EngineLimits
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.store.sqlite import SQLiteStore
from bot.types import CallUpdate, IncomingMessage
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import Reply as ScriptedReply
from fakes.openai_server import ScriptedLLM

QUESTION = "Do you have iPhone 15 Pro screens in stock?"
STOCK = {"in_stock": True, "quantity": 4, "price": "$129"}


def message(text: str, conversation: str = "C1") -> IncomingMessage:
    return IncomingMessage(platform="test", conversation=conversation, user_id="U1", text=text)


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "tool"]


def tool_names(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools", [])]


@pytest.fixture
def engine_parts(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel
) -> dict[str, Any]:
    return {"store": store, "webhooks": webhooks, "model": chat_model}


async def test_seed_example_end_to_end(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """The customer's question becomes a check_inventory call and the answer comes back."""
    webhook_server.route("/inventory/check", json_handler(STOCK))
    engine = make_engine([inventory_action(webhook_server)], **engine_parts)
    args = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
    [call_id] = llm.tool_calls(("check_inventory", args))
    llm.reply("Yes! We have 4 in stock at $129.")
    progress: list[str] = []

    async def on_progress(text: str) -> None:
        progress.append(text)

    reply = await engine.handle(message(QUESTION), progress=on_progress)

    assert reply.text == "Yes! We have 4 in stock at $129."
    assert reply.actions_called == ["check_inventory"]
    assert not reply.failed
    assert webhook_server.requests[0].query == args
    first, second = llm.requests
    assert tool_names(first) == ["check_inventory"]
    assert first["messages"][0]["role"] == "system"
    assert "Test Shop" in first["messages"][0]["content"]
    [result] = tool_messages(second)
    assert result["tool_call_id"] == call_id
    assert json.loads(result["content"])["data"] == STOCK
    assert progress == ["Checking inventory…"]
    [stats] = await engine_parts["store"].stats("check_inventory")
    assert (stats.calls, stats.successes) == (1, 1)


async def test_tool_calls_of_one_turn_run_concurrently(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """Two endpoints that each wait for the other to be called both succeed (no deadlock)."""
    arrived = {"/a": asyncio.Event(), "/b": asyncio.Event()}

    def waits_for(other: str, mine: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            arrived[mine].set()
            await arrived[other].wait()
            return web.json_response({"path": mine})

        return handle

    webhook_server.route("/a", waits_for("/b", "/a"))
    webhook_server.route("/b", waits_for("/a", "/b"))
    actions = [
        build_action(webhook_server.url("/a"), name="first", timeout=10),
        build_action(webhook_server.url("/b"), name="second", timeout=10),
    ]
    engine = make_engine(actions, **engine_parts)
    llm.tool_calls(("first", {}), ("second", {}))
    llm.reply("Both done.")

    reply = await engine.handle(message("do both"))

    assert reply.text == "Both done."
    results = [json.loads(m["content"]) for m in tool_messages(llm.requests[1])]
    assert [r["ok"] for r in results] == [True, True]
    assert [r["data"]["path"] for r in results] == ["/a", "/b"]


async def test_missing_required_value_goes_back_to_model(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """A call without a required value never reaches the endpoint; the model is told to ask."""
    engine = make_engine([inventory_action(webhook_server)], **engine_parts)
    llm.tool_calls(("check_inventory", {"part_name": "screen"}))
    llm.reply("Which device is the screen for?")

    reply = await engine.handle(message("Do you have screens?"))

    assert reply.text == "Which device is the screen for?"
    assert webhook_server.requests == []
    [result] = tool_messages(llm.requests[1])
    content = json.loads(result["content"])
    assert content["ok"] is False
    assert "'device_model' is required" in content["error"]
    assert "Ask the customer" in content["error"]
    assert await engine_parts["store"].stats() == []


async def test_unknown_tool_and_bad_json_are_tool_errors(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """An invented tool name and malformed arguments become errors the model can read."""
    engine = make_engine([inventory_action(webhook_server)], **engine_parts)
    llm.tool_calls(("delete_everything", {}), ("check_inventory", '{"part_name": "scr'))
    llm.reply("Sorry about that.")

    reply = await engine.handle(message("hi"))

    assert reply.text == "Sorry about that."
    assert webhook_server.requests == []
    unknown, bad = (json.loads(m["content"]) for m in tool_messages(llm.requests[1]))
    assert "no available action named 'delete_everything'" in unknown["error"]
    assert "not valid JSON" in bad["error"]


async def test_disabled_action_not_offered_next_turn(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """After an admin disables an action, the next LLM request no longer lists it."""
    other = build_action(webhook_server.url("/other"), name="warranty_status")
    engine = make_engine([inventory_action(webhook_server), other], **engine_parts)
    llm.reply("first")
    llm.reply("second")

    await engine.handle(message("one"))
    await engine_parts["store"].set_active("check_inventory", False, actor="test:admin")
    await engine.handle(message("two"))

    assert tool_names(llm.requests[0]) == ["check_inventory", "warranty_status"]
    assert tool_names(llm.requests[1]) == ["warranty_status"]


async def test_disabled_action_called_anyway_is_refused(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """A model that calls a disabled action (e.g. from history) does not reach the endpoint."""
    engine = make_engine([inventory_action(webhook_server)], **engine_parts)
    await engine_parts["store"].set_active("check_inventory", False, actor="test:admin")
    llm.tool_calls(("check_inventory", {"part_name": "screen", "device_model": "X"}))
    llm.reply("I can't check that right now.")

    await engine.handle(message("stock?"))

    assert "tools" not in llm.requests[0]
    assert webhook_server.requests == []
    assert "no available action" in tool_messages(llm.requests[1])[0]["content"]


async def test_round_limit_gives_friendly_reply(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """A model that never stops calling tools is cut off with a friendly answer."""
    webhook_server.route("/inventory/check", json_handler(STOCK))
    limits = EngineLimits(
        max_tool_rounds=2, history_messages=40, history_chars=24000, result_chars=4000
    )
    engine = make_engine([inventory_action(webhook_server)], limits=limits, **engine_parts)
    args = {"part_name": "screen", "device_model": "X"}
    for _ in range(3):
        llm.tool_calls(("check_inventory", args))

    reply = await engine.handle(message("loop"))

    assert reply.failed
    assert reply.text == wording.ROUND_LIMIT
    assert len(webhook_server.requests) == 2
    assert len(llm.requests) == 3


async def test_llm_server_error_gives_friendly_reply(
    llm: ScriptedLLM, engine_parts: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """An LLM 500 ends in the apology for the customer and a log line for the operator."""
    engine = make_engine([], **engine_parts)
    llm.error(500, "model exploded")

    reply = await engine.handle(message("hello"))

    assert reply.failed
    assert reply.text == wording.LLM_DOWN
    assert "InternalServerError" in caplog.text
    assert "Traceback" not in reply.text


async def test_llm_timeout_gives_friendly_reply(
    llm: ScriptedLLM, store: Store, webhooks: WebhookClient
) -> None:
    """An LLM that does not answer in time ends in the apology, and the next turn works."""
    client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="k", max_retries=0, timeout=0.5)
    model = OpenAIChatModel(client, model="test-model")
    engine = make_engine([], store=store, webhooks=webhooks, model=model)
    release = asyncio.Event()
    llm.hang(release)
    llm.reply("I'm back.")
    try:
        first = await engine.handle(message("hello"))
        release.set()
        second = await engine.handle(message("hello again"))
    finally:
        await model.aclose()

    assert first.text == wording.LLM_DOWN
    assert second.text == "I'm back."


async def test_history_carries_tool_messages_across_turns_and_restarts(
    tmp_path: Path,
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """Turn two sees turn one, tool call and result included, also after reopening the store."""
    webhook_server.route("/inventory/check", json_handler(STOCK))
    db = tmp_path / "history.db"
    args = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
    llm.tool_calls(("check_inventory", args))
    llm.reply("We have 4.")
    llm.reply("They cost $129.")
    llm.reply("You're welcome.")

    async with await SQLiteStore.open(db) as first_store:
        engine = make_engine(
            [inventory_action(webhook_server)],
            store=first_store,
            webhooks=webhooks,
            model=chat_model,
        )
        await engine.handle(message(QUESTION))
        await engine.handle(message("How much?"))
    async with await SQLiteStore.open(db) as reopened:
        actions = [inventory_action(webhook_server)]
        engine = make_engine(actions, store=reopened, webhooks=webhooks, model=chat_model)
        await engine.handle(message("Thanks"))

    for request in llm.requests[2:]:
        roles = [m["role"] for m in request["messages"]]
        assert roles[:6] == ["system", "user", "assistant", "tool", "assistant", "user"]
        assert request["messages"][1]["content"] == QUESTION
        assert request["messages"][2]["tool_calls"][0]["function"]["name"] == "check_inventory"
    assert [m["content"] for m in llm.requests[3]["messages"][-3:]] == [
        "How much?",
        "They cost $129.",
        "Thanks",
    ]


async def test_conversations_are_separate(llm: ScriptedLLM, engine_parts: dict[str, Any]) -> None:
    """One conversation's history never appears in another's prompt."""
    engine = make_engine([], **engine_parts)
    llm.reply("a")
    llm.reply("b")

    await engine.handle(message("secret order 42", conversation="C1"))
    await engine.handle(message("hello", conversation="C2"))

    assert "secret order 42" not in json.dumps(llm.requests[1])


async def test_prompt_stays_bounded_over_200_turns(
    llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """With a history window, the 200th request is no bigger than the 10th (within 20%)."""
    limits = EngineLimits(
        max_tool_rounds=5, history_messages=10, history_chars=24000, result_chars=4000
    )
    engine = make_engine([], limits=limits, **engine_parts)
    for n in range(200):
        llm.reply(f"answer number {n:03d}")
    for n in range(200):
        await engine.handle(message(f"question number {n:03d}"))

    sizes = [len(json.dumps(r)) for r in llm.requests]
    assert max(len(r["messages"]) for r in llm.requests) <= 11
    assert sizes[199] <= 1.2 * sizes[9]
    assert llm.requests[199]["messages"][-1]["content"] == "question number 199"


async def test_secret_headers_never_reach_the_llm(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """A secret header reaches the endpoint but never any request sent to the model."""
    webhook_server.route("/inventory/check", json_handler(STOCK))
    action = inventory_action(
        webhook_server,
        headers={"Authorization": "Bearer ${INVENTORY_TOKEN}"},
        header_values={"Authorization": "Bearer sekrit-inventory-token"},
    )
    engine = make_engine([action], **engine_parts)
    llm.tool_calls(("check_inventory", {"part_name": "screen", "device_model": "X"}))
    llm.reply("done")

    await engine.handle(message(QUESTION))

    assert webhook_server.requests[0].headers["Authorization"] == "Bearer sekrit-inventory-token"
    assert "sekrit" not in json.dumps(llm.requests)
    assert "INVENTORY_TOKEN" not in json.dumps(llm.requests)


async def test_one_conversation_is_handled_in_order(
    llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """A second message waits for the first: its prompt already contains the first turn."""
    engine = make_engine([], **engine_parts)
    release = asyncio.Event()
    llm.hang(release, then=ScriptedReply("first answer"))
    llm.reply("second answer")

    first = asyncio.create_task(engine.handle(message("first question")))
    second = asyncio.create_task(engine.handle(message("second question")))
    await llm.wait_for_requests(1)
    release.set()
    replies = await asyncio.gather(first, second)

    assert [r.text for r in replies] == ["first answer", "second answer"]
    contents = [m["content"] for m in llm.requests[1]["messages"]]
    assert contents[1:] == ["first question", "first answer", "second question"]


async def test_a_message_cancelled_while_waiting_leaves_no_lock_behind(
    llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """A second message of a busy conversation is cancelled (shutdown) while it waits for
    the first: once the first is answered, the conversation's lock is gone from the table."""
    engine = make_engine([], **engine_parts)
    release = asyncio.Event()
    llm.hang(release, then=ScriptedReply("first answer"))

    first = asyncio.create_task(engine.handle(message("first question")))
    await llm.wait_for_requests(1)
    waiting = asyncio.create_task(engine.handle(message("second question")))
    await asyncio.sleep(0)  # let it reach the lock (it cannot get past: the first holds it)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()

    assert (await first).text == "first answer"
    assert engine.conversations_in_progress() == 0


async def test_different_conversations_run_in_parallel(
    llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """Conversation A's model call can wait for B's to arrive: they are not serialised."""
    engine = make_engine([], **engine_parts)

    async def wait_for_other(_: dict[str, Any]) -> ScriptedReply:
        await llm.wait_for_requests(2, timeout=10)
        return ScriptedReply("A done")

    llm.respond(wait_for_other)
    llm.reply("B done")

    replies = await asyncio.gather(
        engine.handle(message("from A", conversation="A")),
        engine.handle(message("from B", conversation="B")),
    )

    assert [r.text for r in replies] == ["A done", "B done"]


async def test_database_failure_still_answers(
    tmp_path: Path, webhooks: WebhookClient, chat_model: OpenAIChatModel
) -> None:
    """If the database cannot be read, the customer gets the apology, not an exception."""
    broken = await SQLiteStore.open(tmp_path / "broken.db")
    await broken.close()
    engine = make_engine([], store=broken, webhooks=webhooks, model=chat_model)

    reply = await engine.handle(message("hello"))

    assert reply.failed
    assert reply.text == wording.UNEXPECTED


async def test_each_call_is_reported_when_it_starts_and_when_it_ends(
    webhook_server: WebhookServer, llm: ScriptedLLM, engine_parts: dict[str, Any]
) -> None:
    """The adapter hears of every call twice, under the model's call id: running, then done
    or failed with its latency; a replayed turn reports a recorded call only as ended."""
    webhook_server.route("/ok", json_handler({"fine": True}))
    webhook_server.route("/broken", json_handler({"error": "down"}, status=500))
    actions = [
        build_action(webhook_server.url("/ok"), name="good_one"),
        build_action(webhook_server.url("/broken"), name="bad_one"),
    ]
    engine = make_engine(actions, **engine_parts)
    ids = llm.tool_calls(("good_one", {}), ("bad_one", {}))
    llm.reply("One worked.")
    seen: list[CallUpdate] = []

    async def watch(update: CallUpdate) -> None:
        seen.append(update)

    journaled = message("both").model_copy(update={"event_id": "Ev1"})
    await engine.handle(journaled, calls=watch)

    by_id = {i: [u for u in seen if u.id == i] for i in ids}
    good, bad = by_id[ids[0]], by_id[ids[1]]
    assert [u.state for u in good] == ["running", "done"]
    assert [u.state for u in bad] == ["running", "failed"]
    assert good[0].display_name == "Good One"
    assert good[0].latency_ms is None
    assert good[1].latency_ms is not None
    assert good[1].latency_ms > 0
    assert bad[1].latency_ms is not None

    seen.clear()
    llm.tool_calls(("good_one", {}))  # the same call again in a replay of the same event
    llm.reply("Still fine.")
    await engine.handle(journaled, calls=watch)
    assert [u.state for u in seen] == ["done"]
    assert len(webhook_server.requests) == 2
