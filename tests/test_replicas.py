"""Three real `actionbot run` replicas on one PostgreSQL database, in Slack HTTP mode behind
"a load balancer" (the test spreads events round-robin), against the fake Slack Web API, the
scripted LLM and an HTTPS webhook that records every `Idempotency-Key`.

Thirty DM conversations of ten questions each: each event goes to one replica and Slack's
retry of it to another; one replica is killed (SIGKILL) mid-run and started again. Every
question must be answered once, in its conversation's order, each intended webhook call
completed once, and `actions stats` must agree with the webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
from collections import Counter, defaultdict
from typing import Any

import aiohttp
import asyncpg
import yaml
from aiohttp import web
from deployment import REPO, Bot, Deployment
from test_crash import deliver

from bot.store.open import database_at
from fakes.openai_server import Reply, Step, ToolCalls
from fakes.slack_server import event_callback, message

WAIT = 120.0
REPLICAS = 3
CONVERSATIONS = 30
QUESTIONS = 10
EVENTS = CONVERSATIONS * QUESTIONS


def number(text: str) -> int:
    return int(text.removeprefix("Q"))


class Model:
    """One inventory call per question, then "answer to Q<n>". Records, per conversation,
    the order in which turns reached the model and whether the previous question's answer
    was already in the history it was sent."""

    def __init__(self) -> None:
        self.first_seen: dict[int, list[int]] = defaultdict(list)
        self.history_gaps: list[int] = []

    def __call__(self, body: dict[str, Any]) -> Step:
        messages = body["messages"]
        question = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        n = number(question)
        if messages[-1]["role"] == "user":
            seen = self.first_seen[n % CONVERSATIONS]
            if n not in seen:
                seen.append(n)
                previous = n - CONVERSATIONS
                said = [m.get("content") for m in messages if m["role"] == "assistant"]
                if previous >= 0 and f"answer to Q{previous}" not in said:
                    self.history_gaps.append(n)
            return ToolCalls((("check_inventory", {"part_name": question, "device_model": "X"}),))
        return Reply(f"answer to {question}")


class Keys:
    """The webhook: counts each Idempotency-Key; slow enough that a kill lands mid-call."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        self.seen[request.headers["Idempotency-Key"]] += 1
        await asyncio.sleep(0.02)
        return web.json_response({"in_stock": True})


class Fleet:
    """The replicas, by index; a killed one is replaced by a new process."""

    def __init__(self, deployment: Deployment, stack: contextlib.AsyncExitStack) -> None:
        self.deployment = deployment
        self.stack = stack
        self.bots: list[Bot | None] = [None] * REPLICAS
        self.ports: list[int | None] = [None] * REPLICAS

    async def start(self, index: int) -> None:
        bot = await self.stack.enter_async_context(self.deployment.running())
        self.bots[index] = bot
        self.ports[index] = await bot.port()

    async def kill(self, index: int) -> None:
        bot = self.bots[index]
        assert bot is not None
        self.ports[index] = None
        bot.process.send_signal(signal.SIGKILL)
        await bot.finish()

    async def deliver(
        self, session: aiohttp.ClientSession, body: str, first: int, **kw: Any
    ) -> None:
        """POST a signed event to replica `first`, or, as Slack retries a failed delivery,
        to the next replica that takes it."""
        for attempt in range(50):
            port = self.ports[(first + attempt) % REPLICAS]
            if port is not None and await deliver(session, port, body, **kw):
                return
            await asyncio.sleep(0.1)  # every replica down at once: Slack backs off too
        raise AssertionError("no replica acknowledged an event")


async def scrape(session: aiohttp.ClientSession, port: int) -> tuple[float, float]:
    """(database-wide recorded calls, this process's calls) of check_inventory."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()

    def value(metric: str) -> float:
        pattern = rf'^{metric}\{{action="check_inventory",outcome="success"\}} (\S+)$'
        found = re.search(pattern, text, re.M)
        return float(found.group(1)) if found else 0.0

    return value("actionbot_action_calls_recorded"), value("actionbot_action_calls_total")


def bot_texts(deployment: Deployment, conversation: int) -> list[str]:
    return [m["text"] for m in deployment.slack.messages(f"D{conversation}")]


def all_answered(deployment: Deployment) -> bool:
    return all(
        sum(t.startswith("answer to") for t in bot_texts(deployment, c)) >= QUESTIONS
        for c in range(CONVERSATIONS)
    )


async def test_three_replicas_answer_each_event_once_in_order_through_a_kill(
    deployment: Deployment, postgres_url: str
) -> None:
    deployment.env["ACTIONBOT_DATABASE_URL"] = postgres_url
    model, keys = Model(), Keys()
    deployment.llm.otherwise(model)
    deployment.server.route("/inventory/check", keys.handle)
    bodies = {
        n: json.dumps(
            event_callback(
                message(f"Q{n}", "U1", f"D{n % CONVERSATIONS}", deployment.slack.next_ts()),
                event_id=f"Ev{n}",
            )
        )
        for n in range(EVENTS)
    }

    async with contextlib.AsyncExitStack() as stack:
        fleet = Fleet(deployment, stack)
        await asyncio.gather(*(fleet.start(i) for i in range(REPLICAS)))
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=60))
        )

        async def customer(conversation: int) -> None:
            """Sends its questions one after another, as a person types them; each event
            goes to one replica (the next question to the next one) and Slack's retry of
            it to yet another."""
            for k in range(QUESTIONS):
                n = conversation + k * CONVERSATIONS
                await fleet.deliver(session, bodies[n], (conversation + k) % REPLICAS)
                await fleet.deliver(session, bodies[n], (conversation + k + 1) % REPLICAS, retry=1)

        customers = [asyncio.create_task(customer(c)) for c in range(CONVERSATIONS)]
        await deployment.server.wait_for_requests(EVENTS // 3, timeout=WAIT)
        await fleet.kill(1)
        killed_at = sum(keys.seen.values())
        await fleet.start(1)
        await asyncio.gather(*customers)
        await deployment.slack.wait_until(
            lambda: all_answered(deployment), WAIT, "ten answers in every conversation"
        )
        code, out = await deployment.cli("actions", "stats", "check_inventory")
        scrapes = [await scrape(session, port) for port in fleet.ports if port is not None]
        for bot in fleet.bots:
            assert bot is not None
            if not bot.exited():
                bot.process.send_signal(signal.SIGTERM)
                assert await bot.finish() == 0

    # Every question answered once, in order, with no stranded placeholder.
    for c in range(CONVERSATIONS):
        expected = [f"answer to Q{c + k * CONVERSATIONS}" for k in range(QUESTIONS)]
        assert bot_texts(deployment, c) == expected
    # Turns of one conversation reached the model one after another, in arrival order,
    # each with the previous answer in its history.
    assert all(
        order == sorted(order) and len(order) == QUESTIONS for order in model.first_seen.values()
    )
    assert model.history_gaps == []
    # Each intended call completed once: 300 keys; a key twice only for a call in flight
    # at the kill, resent with the same key.
    assert len(keys.seen) == EVENTS
    repeated = [key for key, times in keys.seen.items() if times > 1]
    assert all(keys.seen[key] == 2 for key in repeated)
    assert code == 0, out
    row = next(line for line in out.splitlines() if line.startswith("check_inventory"))
    assert int(row.split()[1]) == EVENTS
    # Counters count each process's own calls, so summing the replicas is right; the
    # database's totals are a gauge, the same on every replica.
    assert len(scrapes) == REPLICAS
    assert all(recorded == EVENTS for recorded, _ in scrapes)
    assert 0 < sum(own for _, own in scrapes) <= EVENTS
    db = await asyncpg.connect(postgres_url)
    try:
        states = dict(await db.fetch("SELECT state, COUNT(*) FROM inbox GROUP BY state"))
    finally:
        await db.close()
    assert states == {"done": EVENTS}
    print(  # the figures for the closing note (pytest -s)
        f"\nreplicas: {REPLICAS} processes, {EVENTS} events each delivered twice to different "
        f"replicas, replica 1 killed after {killed_at} webhook calls; {len(keys.seen)} keys, "
        f"{len(repeated)} resent with the same key, 0 lost, 0 answered twice, order kept"
    )


def test_the_compose_postgres_profile_runs_two_replicas_on_one_database() -> None:
    """`docker compose --profile postgres up -d postgres actionbot-replicas`: two replicas
    whose URL names the postgres service's user and database, started once it is healthy."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    replicas, postgres = services["actionbot-replicas"], services["postgres"]
    assert replicas["profiles"] == postgres["profiles"] == ["postgres"]
    assert "profiles" not in services["actionbot"]  # `docker compose up` stays SQLite
    assert replicas["deploy"]["replicas"] == 2
    assert replicas["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["volumes"][0].split(":")[0] in compose["volumes"]
    url = replicas["environment"]["ACTIONBOT_DATABASE_URL"].replace(
        "${POSTGRES_PASSWORD:-actionbot}", "secret"
    )
    database = database_at(url)
    assert database.describe() == "postgres:5432/actionbot"
    env = postgres["environment"]
    assert url.startswith(f"postgresql://{env['POSTGRES_USER']}:secret@")
    assert url.endswith(f"/{env['POSTGRES_DB']}")


async def test_an_unreachable_database_stops_the_bot_with_one_line_and_no_password(
    deployment: Deployment,
) -> None:
    """`actionbot run` against a PostgreSQL URL where nothing listens: exit 1, one line
    naming host, port and database, and the password nowhere in the output."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    password = "pg-p%40ss-never-shown"
    url = f"postgresql://actionbot:{password}@127.0.0.1:{port}/actionbot"
    async with deployment.running(ACTIONBOT_DATABASE_URL=url) as bot:
        assert await bot.finish() == 1
    errors = [line for line in bot.logs if "Cannot connect to the database" in line]
    assert len(errors) == 1
    assert f"127.0.0.1:{port}/actionbot" in errors[0]
    output = "\n".join(bot.logs)
    assert password not in output
    assert "pg-p@ss-never-shown" not in output
