"""Journaled turns: stable Idempotency-Key, recorded results reused on replay, unfinished
calls resent with the same key, cancelled turns resumed, bounded calls per round, webhook
retries with the same key. Real SQLite store, real webhook client over HTTPS, the real
`openai` SDK against the scripted LLM."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import inventory_action, make_engine, make_settings

from actionbot.app import prune
from bot.actions.models import Arguments
from bot.delivery import this_place
from bot.engine import Engine, EngineLimits
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient, canonical_json, idempotency_key
from bot.store import Store
from bot.store.sqlite import SQLiteStore
from bot.types import ActionResult, IncomingMessage, Outcome
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM

ARGS: Arguments = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
STOCK = {"in_stock": True, "quantity": 4}


def question(event_id: str = "Ev1", text: str = "Screens?") -> IncomingMessage:
    return IncomingMessage(
        platform="slack", conversation="C1:1.0", user_id="U1", text=text, event_id=event_id
    )


def keys(server: WebhookServer) -> list[str]:
    return [r.headers["Idempotency-Key"] for r in server.requests]


def tool_contents(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


@pytest.fixture
def engine(
    webhook_server: WebhookServer,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> Engine:
    """The engine over the real store, webhook client and model, offering check_inventory
    (which answers STOCK)."""
    webhook_server.route("/inventory/check", json_handler(STOCK))
    return make_engine(
        [inventory_action(webhook_server)], store=store, webhooks=webhooks, model=chat_model
    )


async def receive(store: Store, message: IncomingMessage) -> None:
    """Write the message to the inbox, as an adapter does before the turn runs."""
    entry = await store.receive(message, route={}, owner="test:1", lease_seconds=60)
    assert entry is not None


async def test_key_is_stable_for_a_message_and_distinct_per_call(
    engine: Engine, webhook_server: WebhookServer, llm: ScriptedLLM, store: Store
) -> None:
    """The key is the documented HMAC of event key, action, canonical arguments and n: two
    identical calls in one turn get different keys (n = 0, 1), another message other keys."""
    for event_id in ("Ev1", "Ev2"):
        await receive(store, question(event_id))
        llm.tool_calls(("check_inventory", ARGS), ("check_inventory", dict(reversed(ARGS.items()))))
        llm.reply("Four.")
        await engine.handle(question(event_id))

    canonical = canonical_json(ARGS)
    expected = [
        idempotency_key(engine.instance_key, f"slack:{event}", "check_inventory", canonical, n)
        for event in ("Ev1", "Ev2")
        for n in (0, 1)
    ]
    assert sorted(keys(webhook_server)[:2]) == sorted(expected[:2])
    assert sorted(keys(webhook_server)[2:]) == sorted(expected[2:])
    assert len(set(keys(webhook_server))) == 4


async def test_replay_after_a_recorded_call_reuses_its_result(
    engine: Engine, webhook_server: WebhookServer, llm: ScriptedLLM, store: Store
) -> None:
    """A turn that recorded a call's result and then died (here: the LLM failed after the
    call) is replayed: the webhook is not called again, the model gets the recorded result."""
    await receive(store, question())
    llm.tool_calls(("check_inventory", ARGS))
    llm.error(500, "the model server fell over")
    first = await engine.handle(question())
    assert first.failed
    assert len(webhook_server.requests) == 1

    llm.tool_calls(("check_inventory", ARGS))
    llm.reply("We have 4.")
    second = await engine.handle(question())

    assert second.text == "We have 4."
    assert len(webhook_server.requests) == 1
    assert '"quantity": 4' in tool_contents(llm.requests[-1])[0]
    [stats] = await store.stats("check_inventory")
    assert stats.calls == 1


async def test_a_call_started_without_a_result_is_resent_with_the_same_key(
    engine: Engine, webhook_server: WebhookServer, llm: ScriptedLLM, store: Store
) -> None:
    """A journal row without a result (the process died while the request was out) means
    the call is sent again, with the key the first attempt used."""
    await receive(store, question())
    key = idempotency_key(
        engine.instance_key, "slack:Ev1", "check_inventory", canonical_json(ARGS), 0
    )
    arguments = canonical_json(ARGS)
    await store.start_call(
        "slack:Ev1", key, ordinal=0, action="check_inventory", arguments=arguments
    )
    llm.tool_calls(("check_inventory", ARGS))
    llm.reply("We have 4.")

    await engine.handle(question())

    assert keys(webhook_server) == [key]
    recorded = await store.start_call(
        "slack:Ev1", key, ordinal=0, action="check_inventory", arguments=arguments
    )
    assert recorded is not None
    assert recorded.outcome is Outcome.SUCCESS


async def test_no_call_is_sent_when_the_journal_cannot_be_written(
    tmp_path: Path, engine: Engine, webhook_server: WebhookServer, llm: ScriptedLLM, store: Store
) -> None:
    """No side effect without a record: when the journal write fails, the endpoint is not
    called and the model is told the call was not sent."""
    await receive(store, question())
    other = sqlite3.connect(tmp_path / "actionbot.db")
    other.execute("DROP TABLE journal")  # a real database fault under the running store
    other.close()
    llm.tool_calls(("check_inventory", ARGS))
    llm.reply("Sorry, I cannot check right now.")

    await engine.handle(question())

    assert webhook_server.requests == []
    assert "could not record this call" in tool_contents(llm.requests[-1])[0]


async def test_only_max_tool_calls_of_one_round_are_sent(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """A model round with 20 calls sends 8; the other 12 get a tool error saying to ask
    for fewer at once."""
    webhook_server.route("/inventory/check", json_handler(STOCK))
    limits = EngineLimits(
        max_tool_rounds=5,
        history_messages=60,
        history_chars=60000,
        result_chars=4000,
        max_tool_calls=8,
    )
    engine = make_engine(
        [inventory_action(webhook_server)],
        store=store,
        webhooks=webhooks,
        model=chat_model,
        limits=limits,
    )
    calls = [
        ("check_inventory", {"part_name": f"part {n}", "device_model": "X"}) for n in range(20)
    ]
    llm.tool_calls(*calls)
    llm.reply("Here is what I found.")

    await engine.handle(question())

    assert len(webhook_server.requests) == 8
    contents = tool_contents(llm.requests[-1])
    assert len(contents) == 20
    assert all("at most 8 actions" in c for c in contents[8:])
    assert not any("at most 8 actions" in c for c in contents[:8])


async def test_cancelled_turn_keeps_its_progress_and_resumes_from_it(
    engine: Engine, webhook_server: WebhookServer, llm: ScriptedLLM, store: Store
) -> None:
    """A turn cancelled after its call finished (shutdown grace over) keeps its messages in
    the inbox entry; the replay resumes from them without calling again, and the history
    holds the whole turn once."""
    await receive(store, question())
    llm.tool_calls(("check_inventory", ARGS))
    held = asyncio.Event()
    llm.hang(held)
    turn = asyncio.create_task(engine.handle(question()))
    await llm.wait_for_requests(2)
    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)
    held.set()
    await store.release("slack:Ev1")

    [entry] = await store.claim(owner="test:2", lease_seconds=60, platforms=["slack"], limit=5)
    assert entry.progress is not None
    assert [m["role"] for m in entry.progress] == ["user", "assistant", "tool"]
    llm.reply("We have 4.")
    reply = await engine.handle(entry.message, resume=entry.progress)

    assert reply.text == "We have 4."
    assert len(webhook_server.requests) == 1
    assert [m["role"] for m in llm.requests[-1]["messages"][1:]] == ["user", "assistant", "tool"]
    history = await store.load_messages("slack:C1:1.0", limit=20)
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]


async def test_retries_resend_the_same_key_and_count_as_one_call(
    webhook_server: WebhookServer,
    store: Store,
    webhooks: WebhookClient,
) -> None:
    """503 (with Retry-After) and 502 are retried within the action's deadline with the same
    Idempotency-Key; the call is recorded once, with its attempts."""
    answers = iter([(503, {"Retry-After": "0"}), (502, {}), (200, {})])

    async def flaky(_: web.Request) -> web.Response:
        status, headers = next(answers)
        return web.json_response({"ok": status == 200}, status=status, headers=headers)

    webhook_server.route("/inventory/check", flaky)
    action = inventory_action(webhook_server).model_copy(update={"retries": 2})
    result = await webhooks.call(action, ARGS, call_id="key-1")

    assert (result.outcome, result.attempts) == (Outcome.SUCCESS, 3)
    assert keys(webhook_server) == ["key-1"] * 3
    [stats] = await store.stats("check_inventory")
    assert (stats.calls, stats.attempts, stats.successes) == (1, 3, 1)


async def test_no_retry_for_answers_that_are_final_or_without_retries(
    webhook_server: WebhookServer, webhooks: WebhookClient
) -> None:
    """404 is final; 503 without `retries` is not retried; a Retry-After beyond the deadline
    ends the call with the last answer instead of waiting past it."""
    webhook_server.route("/inventory/check", json_handler({"error": "no"}, status=404))
    action = inventory_action(webhook_server).model_copy(update={"retries": 3})
    assert (await webhooks.call(action, ARGS)).attempts == 1

    webhook_server.route(
        "/inventory/check", json_handler({}, status=503, headers={"Retry-After": "60"})
    )
    result = await webhooks.call(action.model_copy(update={"timeout": 2.0}), ARGS)
    assert (result.outcome, result.status, result.attempts) == (Outcome.HTTP_ERROR, 503, 1)
    plain = await webhooks.call(action.model_copy(update={"retries": 0}), ARGS)
    assert plain.attempts == 1
    assert len(webhook_server.requests) == 3


async def test_connect_errors_are_retried(
    webhook_server: WebhookServer, webhooks: WebhookClient, make_action: Any
) -> None:
    """A refused connection never reached the endpoint, so it is retried (with backoff)."""
    closed = socket_port()
    action = make_action(f"https://127.0.0.1:{closed}/x", name="down").model_copy(
        update={"retries": 2, "timeout": 5.0}
    )
    result = await webhooks.call(action, {})
    assert (result.outcome, result.attempts) == (Outcome.ERROR, 3)
    assert "connection refused" in (result.error or "")


def socket_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_retention_deletes_what_is_past_its_days(tmp_path: Path) -> None:
    """`prune` (at start and hourly) deletes conversations, inbox messages and journal rows
    past ACTIONBOT_HISTORY_DAYS and call rows past ACTIONBOT_CALL_LOG_DAYS; 0 keeps them."""
    now = [1_700_000_000.0]
    async with await SQLiteStore.open(tmp_path / "r.db", clock=lambda: now[0]) as store:
        await receive(store, question("Old"))
        await store.start_call("slack:Old", "k", ordinal=0, action="a", arguments="{}")
        history = [{"role": "user", "content": "x"}]
        await store.append_messages("slack:C1:1.0", platform="slack", messages=history)
        result = ActionResult(action="a", call_id="k", outcome=Outcome.SUCCESS, latency_ms=1)
        await store.record_call(result, event_key="slack:Old")
        now[0] += 2 * 86400

        await prune(store, make_settings(history_days=0, call_log_days=0))
        assert await store.inbox_counts() == {"pending": 1, "done": 0, "failed": 0}
        await prune(store, make_settings(history_days=3, call_log_days=1))
        assert await store.inbox_counts() == {"pending": 1, "done": 0, "failed": 0}
        assert await store.prune_calls(86400) == 0  # the call rows went at 1 day
        await prune(store, make_settings(history_days=1, call_log_days=1))

        assert await store.inbox_counts() == {"pending": 0, "done": 0, "failed": 0}
        assert await store.load_messages("slack:C1:1.0", limit=5) == []
        assert await store.prune_journal(0) == 0
        assert (await store.stats("a"))[0].calls == 1  # totals still count the call


async def test_of_several_replicas_one_sweeps_per_hour(tmp_path: Path) -> None:
    """While another replica holds the retention lease, `prune` leaves the rows to it; once
    that lease has expired (its holder died or its hour is up) this replica sweeps."""
    now = [1_700_000_000.0]
    async with await SQLiteStore.open(tmp_path / "r.db", clock=lambda: now[0]) as store:
        await receive(store, question("Old"))
        now[0] += 2 * 86400
        assert await store.hold_lease("retention", owner="replica-b:7:x", seconds=3240)
        await prune(store, make_settings(history_days=1, call_log_days=1))
        assert await store.inbox_counts() == {"pending": 1, "done": 0, "failed": 0}
        now[0] += 3241
        await prune(store, make_settings(history_days=1, call_log_days=1))
        assert await store.inbox_counts() == {"pending": 0, "done": 0, "failed": 0}
        assert not await store.hold_lease("retention", owner="replica-b:7:x", seconds=60)


async def test_a_restarted_bot_sweeps_at_start_despite_its_predecessors_lease(
    tmp_path: Path,
) -> None:
    """The bot's own earlier process (this host, a pid that has ended) took the retention
    lease for the hour and died: the restarted bot sweeps at start all the same."""
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    now = [1_700_000_000.0]
    async with await SQLiteStore.open(tmp_path / "r.db", clock=lambda: now[0]) as store:
        await receive(store, question("Old"))
        now[0] += 2 * 86400
        earlier = f"{socket.gethostname()}:{gone.pid}:{this_place()}-old"
        assert await store.hold_lease("retention", owner=earlier, seconds=3240)
        await prune(store, make_settings(history_days=1, call_log_days=1))
        assert await store.inbox_counts() == {"pending": 0, "done": 0, "failed": 0}


async def test_a_resumed_turn_keys_a_call_refused_earlier_as_its_first(
    engine: Engine, webhook_server: WebhookServer, llm: ScriptedLLM, store: Store
) -> None:
    """The earlier attempt's round asked for 10 calls: 8 were sent, 2 refused (not sent,
    not counted). Resumed from that progress, the model asks for the 9th again: it gets the
    key of a first call (n = 0), the same key the earlier attempt would have used."""
    await receive(store, question())
    wanted = [{"part_name": f"part {n}", "device_model": "X"} for n in range(10)]
    calls = [
        {
            "id": f"c{n}",
            "type": "function",
            "function": {"name": "check_inventory", "arguments": canonical_json(a)},
        }
        for n, a in enumerate(wanted)
    ]
    progress: list[dict[str, Any]] = [
        {"role": "user", "content": "Screens?"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        *({"role": "tool", "tool_call_id": f"c{n}", "content": "{}"} for n in range(10)),
    ]
    llm.tool_calls(("check_inventory", wanted[8]))
    llm.reply("Done.")

    await engine.handle(question(), resume=progress)

    first = idempotency_key(
        engine.instance_key, "slack:Ev1", "check_inventory", canonical_json(wanted[8]), 0
    )
    assert keys(webhook_server) == [first]
