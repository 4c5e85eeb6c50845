"""Exactly-once under crashes and redelivery, measured on a real `actionbot run` process in
Slack HTTP mode: the fake Slack Web API, the scripted LLM and an HTTPS webhook that records
every `Idempotency-Key` it is sent.

Every customer message is its own DM ("Q<n>" in channel D<n>); the model asks for one
inventory call per message (its part is the question) and answers "answer to Q<n>".
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web
from deployment import SECRETS, Deployment

from fakes.openai_server import Reply, Step, ToolCalls
from fakes.slack_server import event_callback, message, signed_headers

WAIT = 60.0


def model(body: dict[str, Any]) -> Step:
    """One inventory call for the question, then the answer that names it."""
    question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if body["messages"][-1]["role"] == "user":
        return ToolCalls((("check_inventory", {"part_name": question, "device_model": "X"}),))
    return Reply(f"answer to {question}")


class Keys:
    """The webhook: records each request's Idempotency-Key and answers after `delay`."""

    def __init__(self, delay: float = 0.0) -> None:
        self.seen: Counter[str] = Counter()
        self.delay = delay

    async def handle(self, request: web.Request) -> web.Response:
        self.seen[request.headers["Idempotency-Key"]] += 1
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow endpoint, so a kill lands mid-call
        return web.json_response({"in_stock": True})


def body_of(n: int, ts: str) -> str:
    return json.dumps(event_callback(message(f"Q{n}", "U1", f"D{n}", ts), event_id=f"Ev{n}"))


async def deliver(
    session: aiohttp.ClientSession, port: int, body: str, *, retry: int | None = None
) -> bool:
    """POST one signed event as Slack does; True when acknowledged with 200."""
    headers = signed_headers(SECRETS["SLACK_SIGNING_SECRET"], body, retry_num=retry)
    try:
        async with session.post(
            f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
        ) as response:
            return response.status == 200
    except (aiohttp.ClientError, OSError):
        return False  # the process died under it: Slack would retry


def answers(deployment: Deployment, n: int) -> list[str]:
    """What the bot's messages in D<n> say now (edits applied)."""
    return [m["text"] for m in deployment.slack.messages(f"D{n}")]


def answered(deployment: Deployment, count: int) -> bool:
    return all(f"answer to Q{n}" in answers(deployment, n) for n in range(count))


async def stats_calls(deployment: Deployment) -> int:
    """CALLS of check_inventory as `actionbot actions stats` prints it."""
    code, out = await deployment.cli("actions", "stats", "check_inventory")
    assert code == 0, out
    row = next(line for line in out.splitlines() if line.startswith("check_inventory"))
    return int(row.split()[1])


async def test_kill_9_mid_load_loses_and_duplicates_nothing(deployment: Deployment) -> None:
    """SIGKILL while 60 messages are being handled, restart on the same database, Slack
    redelivers every event (retry 1): every event is answered exactly once, the webhook saw
    60 keys (a key twice only for a call that was in flight at the kill), the stats count 60
    calls, and the database is intact."""
    count = 60
    keys = Keys(delay=0.05)
    deployment.server.route("/inventory/check", keys.handle)
    deployment.llm.otherwise(model)
    bodies = [body_of(n, deployment.slack.next_ts()) for n in range(count)]

    async with aiohttp.ClientSession() as session:
        async with deployment.running() as bot:
            port = await bot.port()
            sending = [asyncio.create_task(deliver(session, port, b)) for b in bodies]
            await deployment.server.wait_for_requests(count // 3, timeout=WAIT)
            bot.process.send_signal(signal.SIGKILL)
            acked = await asyncio.gather(*sending)
            await bot.finish()
        before_restart = Counter(keys.seen)

        async with deployment.running() as bot:
            port = await bot.port()
            await asyncio.gather(*(deliver(session, port, b, retry=1) for b in bodies))
            await deployment.slack.wait_until(
                lambda: answered(deployment, count), WAIT, "answer in every DM"
            )
            await bot.wait_for_log("ActionBot is running")
            bot.process.send_signal(signal.SIGTERM)
            assert await bot.finish() == 0

    finals = [[t for t in answers(deployment, n) if t.startswith("answer")] for n in range(count)]
    assert all(final == [f"answer to Q{n}"] for n, final in enumerate(finals))
    leftovers = [t for n in range(count) for t in answers(deployment, n) if t != f"answer to Q{n}"]
    assert leftovers == []  # no stranded "Working on it…", not even one posted at the kill
    assert len(keys.seen) == count
    repeated = {key for key, times in keys.seen.items() if times > 1}
    assert all(keys.seen[key] == 2 for key in repeated)
    assert repeated <= set(before_restart)  # only calls already out when it died
    assert await stats_calls(deployment) == count
    with sqlite3.connect(deployment.cwd / "actionbot.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        pending = db.execute("SELECT COUNT(*) FROM inbox WHERE state != 'done'").fetchone()
    assert pending == (0,)
    print(  # the figures for the closing note (pytest -s)
        f"\nkill -9: {count} events, {sum(acked)} acknowledged before the kill, "
        f"{len(before_restart)} webhook calls made before it, "
        f"{len(repeated)} resent with the same key, 0 lost, 0 answered twice, "
        "0 stranded placeholders"
    )


async def test_events_acknowledged_before_a_kill_are_answered_after_restart(
    deployment: Deployment,
) -> None:
    """Without any redelivery: events acknowledged just before the kill (their turns held
    at the model) are answered by the restarted bot."""
    held = asyncio.Event()
    calls = Keys()
    deployment.server.route("/inventory/check", calls.handle)

    async def hold_then_answer(body: dict[str, Any]) -> Step:
        if not held.is_set():
            await held.wait()
        return model(body)

    deployment.llm.otherwise(hold_then_answer)
    bodies = [body_of(n, deployment.slack.next_ts()) for n in range(5)]
    async with aiohttp.ClientSession() as session:
        async with deployment.running() as bot:
            port = await bot.port()
            assert all(await asyncio.gather(*(deliver(session, port, b) for b in bodies)))
            await deployment.llm.wait_for_requests(5, timeout=WAIT)
            bot.process.send_signal(signal.SIGKILL)
            await bot.finish()
        held.set()
        async with deployment.running() as bot:
            await bot.port()
            await deployment.slack.wait_until(lambda: answered(deployment, 5), WAIT, "answers")
            bot.process.send_signal(signal.SIGTERM)
            assert await bot.finish() == 0
    assert len(calls.seen) == 5
    assert all(len(deployment.slack.messages(f"D{n}")) == 1 for n in range(5))


async def test_a_thousand_events_each_delivered_twice(deployment: Deployment) -> None:
    """1,000 events, each delivered again as Slack's retry 0-2 s later: 1,000 webhook calls
    with 1,000 distinct keys, and one answer per event."""
    count = 1000
    keys = Keys()
    deployment.server.route("/inventory/check", keys.handle)
    deployment.llm.otherwise(model)
    bodies = [body_of(n, deployment.slack.next_ts()) for n in range(count)]
    rng = random.Random(13)

    async def twice(session: aiohttp.ClientSession, port: int, body: str) -> None:
        assert await deliver(session, port, body)
        await asyncio.sleep(rng.uniform(0, 2))  # when Slack's retry arrives, not a wait
        assert await deliver(session, port, body, retry=1)

    connector = aiohttp.TCPConnector(limit=100)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        deployment.running() as bot,
    ):
        port = await bot.port()
        await asyncio.gather(*(twice(session, port, b) for b in bodies))
        await deployment.slack.wait_until(
            lambda: answered(deployment, count), 4 * WAIT, "answer in every DM"
        )
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0

    assert sum(keys.seen.values()) == count
    assert len(keys.seen) == count
    assert all(len(deployment.slack.messages(f"D{n}")) == 1 for n in range(count))
