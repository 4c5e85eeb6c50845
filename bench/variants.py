"""The three ways to answer one turn, measured side by side.

Each variant does the same work against the same fakes: a Chat Completions request that
asks for `check_inventory`, the HTTPS webhook call, a second request for the final answer.

- `actionbot`: ActionBot's engine with its real SQLite store, egress policy and recorder,
  each message through the durable inbox and each call through the turn journal, as
  `actionbot run` does;
- `actionbot-off`: the same engine with the inbox and the journal left out (the cost of
  exactly-once is the difference);
- `actionbot-receive`: the same engine on the path `actionbot run` takes (`Inbox.receive`
  writes the message and starts its turn in the background, which settles it), on the
  database `database_url` names (`postgresql://…` or `sqlite:///…`; default a new SQLite
  file) — the `actionbot` variant answers in the caller's task instead (`run_inline`);
- `langchain`: LangChain's tool-calling agent (`create_agent` + `ChatOpenAI` on Chat
  Completions) with an equivalent tool calling the webhook through httpx;
- `floor`: the `openai` SDK and one httpx call by hand, no persistence, no framework;
- `raw-floor`: the same turn with `httpx` and `json` only: two Chat Completions requests
  posted as JSON and read as dicts, one HTTPS call — no SDK objects, no persistence. The
  least a Python implementation of the turn can cost; the reference of the CPU targets.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import tempfile
from pathlib import Path
from typing import Any, Protocol

import httpx
import openai

QUESTION = "Do you have iPhone 15 Pro screens in stock?"
TURN_TIMEOUT = 60.0
"""Seconds `actionbot-receive` waits for a turn it handed to the inbox to be settled."""
SYSTEM = "You are the support assistant of Your Shop."
TOOL = {
    "type": "function",
    "function": {
        "name": "check_inventory",
        "description": "Check if a specific part is in stock.",
        "parameters": {
            "type": "object",
            "properties": {
                "part_name": {"type": "string", "description": "The part"},
                "device_model": {"type": "string", "description": "The device"},
            },
            "required": ["part_name", "device_model"],
            "additionalProperties": False,
        },
    },
}


class Variant(Protocol):
    """One implementation of a turn."""

    async def turn(self, conversation: str, text: str = QUESTION) -> str: ...

    async def close(self) -> None: ...


def trust(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(ca_file)
    return context


async def open_store(database_url: str | None) -> Any:
    """The store `database_url` names (pool sizes as `actionbot run` opens it); without one,
    a new SQLite file."""
    from bot.runtime.config import DEFAULT_DB_POOL_MAX, DEFAULT_DB_POOL_MIN
    from bot.store.open import database_at
    from bot.store.postgres import PostgresStore
    from bot.store.sqlite import SQLiteStore

    if database_url is None:
        folder = tempfile.mkdtemp(prefix="actionbot-bench-db-")
        return await SQLiteStore.open(Path(folder) / "bench.db")
    database = database_at(database_url)
    if database.path is not None:
        return await SQLiteStore.open(database.path)
    return await PostgresStore.open(
        database_url, min_size=DEFAULT_DB_POOL_MIN, max_size=DEFAULT_DB_POOL_MAX
    )


class _SettleSignal:
    """The inbox's view of the store: the same store, and `settle` also tells the waiting
    `turn` that its message is settled (the last step of a turn `Inbox.receive` started)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.waiting: dict[str, asyncio.Future[bool]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def settle(self, key: str, *, failed: bool) -> None:
        await self._store.settle(key, failed=failed)
        done = self.waiting.pop(key, None)
        if done is not None and not done.done():
            done.set_result(failed)


class ActionBotVariant:
    """The real engine: store, egress policy, recorder, pinned webhook client."""

    @classmethod
    async def create(
        cls,
        *,
        llm: str,
        webhook: str,
        ca: str,
        path: str = "/inventory",
        durable: bool = True,
        background: bool = False,
        database_url: str | None = None,
    ) -> Any:
        """`durable`: through the inbox and the journal; `background`: by `Inbox.receive`
        (the turn runs in the background, as in `actionbot run`) rather than `run_inline`;
        `database_url`: the database (default a new SQLite file)."""
        from bot.actions.models import Action, ActionSet, Method, Parameter, ParameterType
        from bot.delivery import Inbox
        from bot.engine import Engine, EngineLimits
        from bot.llm.client import OpenAIChatModel
        from bot.outbound.egress import EgressPolicy
        from bot.outbound.webhooks import WebhookClient
        from bot.runtime.config import DEFAULT_MAX_TURNS
        from bot.runtime.metrics import MeteredRecorder, Metrics
        from bot.runtime.tasks import Turns

        store = await open_store(database_url)
        metrics = Metrics()
        webhooks = WebhookClient(
            policy=EgressPolicy(["127.0.0.1/32"]),
            recorder=MeteredRecorder(store, metrics),
            ssl_context=trust(ca),
        )
        names = ["part_name", "device_model"] if path == "/inventory" else ["id"]
        action = Action(
            name="check_inventory" if path == "/inventory" else "lookup",
            display_name="Check Inventory",
            description="Check if a specific part is in stock.",
            url=f"{webhook}{path}",
            method=Method.GET,
            parameters=[
                Parameter(name=n, type=ParameterType.STRING, description=n, required=True)
                for n in names
            ],
        )
        client = openai.AsyncOpenAI(base_url=llm, api_key="bench", max_retries=0)
        engine = Engine(
            actions=ActionSet([action], source="bench"),
            store=store,
            webhooks=webhooks,
            model=OpenAIChatModel(client, model="bench"),
            limits=EngineLimits(
                max_tool_rounds=5, history_messages=40, history_chars=24000, result_chars=4000
            ),
            system_prompt=SYSTEM,
            metrics=metrics,
        )
        if background:
            signal = _SettleSignal(store)
            inbox = Inbox(  # as `actionbot run` without a handoff channel
                signal,
                Turns(limit=DEFAULT_MAX_TURNS),
                metrics=metrics,
                handoff_platforms=frozenset(),
            )
            variant = cls(engine, store, webhooks, client, inbox, signal)
            inbox.register("bench", variant._answer_in_background)
            return variant
        inbox = Inbox(store, Turns(), metrics=metrics) if durable else None
        return cls(engine, store, webhooks, client, inbox)

    def __init__(
        self,
        engine: Any,
        store: Any,
        webhooks: Any,
        client: Any,
        inbox: Any = None,
        settled: _SettleSignal | None = None,
    ) -> None:
        self.engine, self.store, self.webhooks, self.client = engine, store, webhooks, client
        self.inbox = inbox
        self.settled = settled
        self.replies: dict[str, str] = {}
        self.events = itertools.count()

    async def turn(self, conversation: str, text: str = QUESTION) -> str:
        from bot.types import IncomingMessage

        if self.settled is not None:
            return await self._turn_in_background(conversation, text)
        if self.inbox is None:
            message = IncomingMessage(
                platform="bench", conversation=conversation, user_id="customer", text=text
            )
            return str((await self.engine.handle(message)).text)
        message = IncomingMessage(
            platform="bench",
            conversation=conversation,
            user_id="customer",
            text=text,
            event_id=f"Ev{next(self.events)}",
        )
        reply = await self.inbox.run_inline(message, self._answer)
        return str(reply.text)

    async def _answer(self, entry: Any) -> Any:
        return await self.engine.handle(entry.message)

    async def _turn_in_background(self, conversation: str, text: str) -> str:
        """Hand the message to `Inbox.receive`, as an adapter does, and wait until its turn,
        run in the background, has settled it."""
        from bot.types import IncomingMessage

        assert self.settled is not None
        message = IncomingMessage(
            platform="bench",
            conversation=conversation,
            user_id="customer",
            text=text,
            event_id=f"Ev{next(self.events)}",
        )
        key = f"bench:{message.event_id}"
        done = self.settled.waiting[key] = asyncio.get_running_loop().create_future()
        if not await self.inbox.receive(message, {}):
            raise RuntimeError(f"the inbox did not start a turn for {key}")
        if await asyncio.wait_for(done, TURN_TIMEOUT):
            raise RuntimeError(f"the turn of {key} failed")
        return self.replies.pop(key)

    async def _answer_in_background(self, entry: Any) -> Any:
        """What an adapter's answer function does, without a platform to post to: run the
        engine (unless the entry already has its reply)."""
        reply = entry.reply or await self.engine.handle(entry.message, resume=entry.progress)
        self.replies[entry.key] = str(reply.text)
        return reply

    async def close(self) -> None:
        await self.client.close()
        await self.webhooks.aclose()
        await self.store.close()


class LangChainVariant:
    """`create_agent` with `ChatOpenAI` (Chat Completions) and an httpx tool."""

    def __init__(self, *, llm: str, webhook: str, ca: str) -> None:
        from langchain.agents import create_agent
        from langchain_core.tools import tool
        from langchain_openai import ChatOpenAI

        self.http = httpx.AsyncClient(verify=trust(ca))
        http, url = self.http, f"{webhook}/inventory"

        @tool
        async def check_inventory(part_name: str, device_model: str) -> dict[str, Any]:
            """Check if a specific part is in stock."""
            response = await http.get(
                url, params={"part_name": part_name, "device_model": device_model}
            )
            result: dict[str, Any] = response.json()
            return result

        model = ChatOpenAI(
            model="bench", base_url=llm, api_key="bench", use_responses_api=False, max_retries=0
        )
        self.agent = create_agent(model, tools=[check_inventory], system_prompt=SYSTEM)
        self.histories: dict[str, list[Any]] = {}

    async def turn(self, conversation: str, text: str = QUESTION) -> str:
        history = self.histories.get(conversation, [])
        result = await self.agent.ainvoke(
            {"messages": [*history, {"role": "user", "content": text}]}
        )
        self.histories[conversation] = result["messages"]
        return str(result["messages"][-1].content)

    def forget(self, conversation: str) -> None:
        self.histories.pop(conversation, None)

    async def close(self) -> None:
        await self.http.aclose()


class FloorVariant:
    """The least any implementation must do: two completions and one HTTPS call."""

    def __init__(self, *, llm: str, webhook: str, ca: str) -> None:
        self.client = openai.AsyncOpenAI(base_url=llm, api_key="bench", max_retries=0)
        self.http = httpx.AsyncClient(verify=trust(ca))
        self.url = f"{webhook}/inventory"

    async def turn(self, conversation: str, text: str = QUESTION) -> str:
        messages: list[Any] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": text},
        ]
        first = await self.client.chat.completions.create(
            model="bench",
            messages=messages,
            tools=[TOOL],  # type: ignore[list-item]
        )
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        response = await self.http.get(self.url, params=json.loads(call.function.arguments))  # type: ignore[union-attr]
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": response.text})
        final = await self.client.chat.completions.create(
            model="bench",
            messages=messages,
            tools=[TOOL],  # type: ignore[list-item]
        )
        return final.choices[0].message.content or ""

    async def close(self) -> None:
        await self.client.close()
        await self.http.aclose()


class RawFloorVariant:
    """Two completions and one HTTPS call with `httpx` and `json` alone."""

    def __init__(self, *, llm: str, webhook: str, ca: str) -> None:
        self.llm = httpx.AsyncClient(
            base_url=llm.rstrip("/"), headers={"Authorization": "Bearer bench"}
        )
        self.http = httpx.AsyncClient(verify=trust(ca))
        self.url = f"{webhook}/inventory"

    async def _complete(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body = json.dumps({"model": "bench", "messages": messages, "tools": [TOOL]})
        response = await self.llm.post(
            "/chat/completions", content=body, headers={"Content-Type": "application/json"}
        )
        message: dict[str, Any] = json.loads(response.content)["choices"][0]["message"]
        return message

    async def turn(self, conversation: str, text: str = QUESTION) -> str:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": text},
        ]
        first = await self._complete(messages)
        call = first["tool_calls"][0]
        arguments = json.loads(call["function"]["arguments"])
        response = await self.http.get(self.url, params=arguments)
        messages.append(first)
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": response.text})
        final = await self._complete(messages)
        return str(final.get("content") or "")

    async def close(self) -> None:
        await self.llm.aclose()
        await self.http.aclose()


async def create(
    name: str, *, llm: str, webhook: str, ca: str, database_url: str | None = None
) -> Any:
    """A ready variant by name (`database_url`: only for `actionbot-receive`)."""
    if name == "actionbot-receive":
        return await ActionBotVariant.create(
            llm=llm, webhook=webhook, ca=ca, background=True, database_url=database_url
        )
    if database_url is not None:
        raise ValueError(f"variant {name!r} runs on a new SQLite file only")
    if name == "actionbot":
        return await ActionBotVariant.create(llm=llm, webhook=webhook, ca=ca)
    if name == "actionbot-off":
        return await ActionBotVariant.create(llm=llm, webhook=webhook, ca=ca, durable=False)
    if name == "langchain":
        return LangChainVariant(llm=llm, webhook=webhook, ca=ca)
    if name == "floor":
        return FloorVariant(llm=llm, webhook=webhook, ca=ca)
    if name == "raw-floor":
        return RawFloorVariant(llm=llm, webhook=webhook, ca=ca)
    raise ValueError(f"unknown variant {name!r}")
