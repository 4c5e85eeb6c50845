"""The model servers people self-host, through the real `openai` SDK: request shapes they
accept, response shapes they send, errors told apart, and prompt-mode tools for servers
without native tool calling (fixtures: `fakes/model_servers.py`)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from conftest import inventory_action, make_engine

from bot import wording
from bot.engine import Engine
from bot.llm.client import OpenAIChatModel, ToolMode
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.types import IncomingMessage
from fakes.https_server import WebhookServer, json_handler
from fakes.model_servers import (
    LLAMA_CPP,
    LLAMA_CPP_CHATML,
    LOOSE,
    OLLAMA,
    OLLAMA_WITHOUT_TOOLS,
    VLLM,
    Quirks,
)
from fakes.openai_server import ScriptedLLM

ARGS = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
STOCK = {"in_stock": True, "quantity": 4}
Turn = Callable[[str], Any]


@asynccontextmanager
async def served(
    quirks: Quirks,
    *,
    store: Store,
    webhooks: WebhookClient,
    server: WebhookServer,
    tool_mode: ToolMode = "auto",
    max_retries: int = 0,
) -> AsyncIterator[tuple[ScriptedLLM, Engine]]:
    """A scripted server with `quirks` and an engine over it with the inventory action."""
    server.route("/inventory/check", json_handler(STOCK))
    async with ScriptedLLM(quirks=quirks) as llm:
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="k", max_retries=max_retries)
        model = OpenAIChatModel(client, model="local-model", tool_mode=tool_mode)
        engine = make_engine(
            [inventory_action(server)], store=store, webhooks=webhooks, model=model
        )
        try:
            yield llm, engine
        finally:
            await model.aclose()


async def ask(
    engine: Engine, text: str = "Any iPhone 15 Pro screens?", conversation: str = "c1"
) -> str:
    message = IncomingMessage(platform="test", conversation=conversation, user_id="u", text=text)
    return (await engine.handle(message)).text


@pytest.mark.parametrize("quirks", [LLAMA_CPP, OLLAMA, VLLM, LOOSE], ids=lambda q: q.name)
async def test_native_tool_call_round_trip_on_each_server(
    quirks: Quirks, store: Store, webhooks: WebhookClient, webhook_server: WebhookServer
) -> None:
    """Each server's real shapes (odd call ids, no usage, `function_call` beside
    `tool_calls`, arguments as an object, finish "stop") lead to one webhook call with the
    right arguments, and the requests carry `tool_choice: "auto"` and `content: ""`."""
    async with served(quirks, store=store, webhooks=webhooks, server=webhook_server) as (
        llm,
        engine,
    ):
        llm.tool_calls(("check_inventory", ARGS))
        llm.reply("Yes: 4 in stock.")
        answer = await ask(engine)
    assert answer == "Yes: 4 in stock."
    assert webhook_server.requests[0].query == ARGS
    assert llm.requests[0]["tool_choice"] == "auto"
    assistant = llm.requests[1]["messages"][-2]
    assert assistant["content"] == ""
    assert llm.requests[1]["messages"][-1]["tool_call_id"] == assistant["tool_calls"][0]["id"]


async def test_history_written_with_null_content_is_sent_as_empty_text(
    store: Store, webhooks: WebhookClient, webhook_server: WebhookServer
) -> None:
    """A conversation saved by an older version (assistant `content: null`) still works
    against llama.cpp, which refuses null."""
    old = [
        {"role": "user", "content": "stock?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c9", "type": "function", "function": {"name": "x", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c9", "content": "{}"},
        {"role": "assistant", "content": "Done."},
    ]
    await store.append_messages("test:c1", platform="test", messages=old)
    async with served(LLAMA_CPP, store=store, webhooks=webhooks, server=webhook_server) as (
        llm,
        engine,
    ):
        llm.reply("Hello again.")
        assert await ask(engine, "hi") == "Hello again."
    assert llm.requests[0]["messages"][2]["content"] == ""


async def test_refused_request_is_not_retried_and_logged_once(
    store: Store,
    webhooks: WebhookClient,
    webhook_server: WebhookServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 400 is the server refusing the request: no retry, the customer hears it could not
    be processed (not that the service is down), and the operator's log shows the status
    and the server's message once, however often it happens."""
    async with served(
        OLLAMA, store=store, webhooks=webhooks, server=webhook_server, max_retries=2
    ) as (llm, engine):
        llm.error(400, "invalid message format: unknown role 'developer'")
        llm.error(400, "invalid message format: unknown role 'developer'")
        with caplog.at_level(logging.ERROR, logger="bot.llm.client"):
            first = await ask(engine, conversation="a")
            second = await ask(engine, conversation="b")
    assert len(llm.requests) == 2
    assert first == second == wording.LLM_REJECTED
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.llm.client"]
    assert len(lines) == 1, lines
    assert "HTTP 400: invalid message format: unknown role 'developer'" in lines[0]


async def test_overloaded_server_is_retried_then_reported_as_down(
    store: Store, webhooks: WebhookClient, webhook_server: WebhookServer
) -> None:
    """A 503 is retried by the client; if it persists, the customer hears the service is not
    responding right now."""
    async with served(
        VLLM, store=store, webhooks=webhooks, server=webhook_server, max_retries=1
    ) as (llm, engine):
        llm.error(503, "overloaded", headers={"Retry-After": "0"})
        llm.error(503, "overloaded", headers={"Retry-After": "0"})
        assert await ask(engine) == wording.LLM_DOWN
    assert len(llm.requests) == 2


async def test_rate_limit_honours_retry_after_and_succeeds(
    store: Store, webhooks: WebhookClient, webhook_server: WebhookServer
) -> None:
    """A 429 with Retry-After is retried, and the second answer is used."""
    async with served(
        OLLAMA, store=store, webhooks=webhooks, server=webhook_server, max_retries=1
    ) as (llm, engine):
        llm.error(429, "slow down", headers={"Retry-After": "0"})
        llm.reply("Hello!")
        assert await ask(engine, "hi") == "Hello!"
    assert len(llm.requests) == 2


def envelope(payload: dict[str, Any], *, fenced: bool = False) -> str:
    text = json.dumps(payload)
    return f"Sure, here you go:\n```json\n{text}\n```\nLet me check." if fenced else text


async def test_prompt_mode_end_to_end_on_a_server_without_tools(
    store: Store, webhooks: WebhookClient, webhook_server: WebhookServer
) -> None:
    """`ACTIONBOT_TOOL_MODE=prompt` against a server that ignores tools: the actions are in
    the system prompt, the model's envelope (in a code fence, with prose around it) calls
    the webhook with the right arguments, and the answer relays its data."""
    async with served(
        LLAMA_CPP_CHATML,
        store=store,
        webhooks=webhooks,
        server=webhook_server,
        tool_mode="prompt",
    ) as (llm, engine):
        llm.reply(envelope({"action": "check_inventory", "arguments": ARGS}, fenced=True))
        llm.reply(envelope({"answer": "Yes, 4 in stock."}))
        answer = await ask(engine)
    assert answer == "Yes, 4 in stock."
    assert webhook_server.requests[0].query == ARGS
    assert all("tools" not in request for request in llm.requests)
    assert "check_inventory" in llm.requests[0]["messages"][0]["content"]
    result = llm.requests[1]["messages"][-1]
    assert result["role"] == "user"
    assert result["content"].startswith("Result of action check_inventory")
    assert '"quantity": 4' in result["content"]


@pytest.mark.parametrize(
    ("payload", "told"),
    [
        ({"action": "check_inventory", "arguments": {"part_name": "screen"}}, "device_model"),
        ({"action": "check_inventory", "arguments": "screen please"}, "NOT called"),
        ({"action": "delete_everything", "arguments": {}}, "delete_everything"),
    ],
)
async def test_malformed_envelopes_are_told_to_the_model_not_sent(
    payload: dict[str, Any],
    told: str,
    store: Store,
    webhooks: WebhookClient,
    webhook_server: WebhookServer,
) -> None:
    """A missing argument, arguments that are not an object, an unknown action: the model
    is told what is wrong, exactly as with native calls, and the endpoint is not called."""
    async with served(
        LLAMA_CPP_CHATML,
        store=store,
        webhooks=webhooks,
        server=webhook_server,
        tool_mode="prompt",
    ) as (llm, engine):
        llm.reply(envelope(payload))
        llm.reply(envelope({"answer": "Which device is it for?"}))
        assert await ask(engine) == "Which device is it for?"
    assert webhook_server.requests == []
    assert told in llm.requests[1]["messages"][-1]["content"]


async def test_auto_mode_falls_back_when_the_server_refuses_tools(
    store: Store,
    webhooks: WebhookClient,
    webhook_server: WebhookServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ollama refuses tools for a model without tool support: in auto mode the same request
    is made again with the tools in the prompt, the action works, and the switch is logged
    once."""
    async with served(
        OLLAMA_WITHOUT_TOOLS, store=store, webhooks=webhooks, server=webhook_server
    ) as (llm, engine):
        llm.reply(envelope({"action": "check_inventory", "arguments": ARGS}))
        llm.reply(envelope({"answer": "4 in stock."}))
        llm.reply(envelope({"answer": "You're welcome!"}))
        with caplog.at_level(logging.WARNING, logger="bot.llm.client"):
            assert await ask(engine) == "4 in stock."
            assert await ask(engine, "thanks") == "You're welcome!"
    assert webhook_server.requests[0].query == ARGS
    assert "tools" in llm.requests[0]
    assert all("tools" not in request for request in llm.requests[1:])
    switches = [r for r in caplog.records if "ACTIONBOT_TOOL_MODE=prompt" in r.getMessage()]
    assert len(switches) == 1


async def test_auto_mode_takes_a_call_written_as_text(
    store: Store, webhooks: WebhookClient, webhook_server: WebhookServer
) -> None:
    """A server that silently ignores tools: the model writes the call out as JSON text.
    Auto mode takes it as the call and describes tools in the prompt from then on."""
    async with served(LLAMA_CPP_CHATML, store=store, webhooks=webhooks, server=webhook_server) as (
        llm,
        engine,
    ):
        llm.reply(json.dumps({"name": "check_inventory", "arguments": ARGS}))
        llm.reply(envelope({"answer": "4 in stock."}))
        assert await ask(engine) == "4 in stock."
    assert webhook_server.requests[0].query == ARGS
    assert "tools" in llm.requests[0]
    assert "tools" not in llm.requests[1]


async def test_server_that_drops_tools_without_tool_choice_is_given_it(
    store: Store, webhooks: WebhookClient, webhook_server: WebhookServer
) -> None:
    """llama.cpp's function-calling format drops `tools` unless `tool_choice` is sent; the
    model would then invent an answer. ActionBot always sends it, so the action is used."""
    async with served(LLAMA_CPP, store=store, webhooks=webhooks, server=webhook_server) as (
        llm,
        engine,
    ):
        llm.tool_calls(("check_inventory", ARGS))
        llm.reply("4 in stock.")
        answer = await ask(engine)
    assert answer == "4 in stock."
    assert len(webhook_server.requests) == 1


async def test_debug_log_summarises_each_exchange_without_secrets(
    store: Store,
    webhooks: WebhookClient,
    webhook_server: WebhookServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At DEBUG each LLM request and answer is one summary line: model, message count,
    tools, finish reason, calls, tokens, latency; never the key or the customer's words."""
    async with served(OLLAMA, store=store, webhooks=webhooks, server=webhook_server) as (
        llm,
        engine,
    ):
        llm.tool_calls(("check_inventory", ARGS))
        llm.reply("4 in stock.")
        with caplog.at_level(logging.DEBUG, logger="bot.llm.client"):
            await ask(engine)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.llm.client"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("LLM request: model=local-model messages=2 tools=check_inventory")
    assert "finish=tool_calls calls=check_inventory tokens=10+5 latency_ms=" in lines[0]
    assert "finish=stop calls=- " in lines[1]
    assert not any("iPhone" in line or "sk-" in line for line in lines)
