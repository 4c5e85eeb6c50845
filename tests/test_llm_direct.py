"""Chat Completions posts straight to the SDK client's pool (`bot.llm.direct`): the same
headers, retries and errors as the `openai` SDK's own path, against the scripted server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import openai
import pytest
from conftest import inventory_action, make_engine

from bot.llm.client import OpenAIChatModel
from bot.llm.direct import DirectPost
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.types import IncomingMessage
from fakes.https_server import WebhookServer
from fakes.openai_server import ScriptedLLM

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
FAST = {"retry-after-ms": "1"}


@pytest.fixture
async def client(llm: ScriptedLLM) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test-key", max_retries=2)
    yield sdk
    await sdk.close()


def direct(client: openai.AsyncOpenAI) -> DirectPost:
    post = DirectPost.over(client)
    assert post is not None, "a plain client with a static key takes the direct path"
    return post


async def test_a_plain_client_sends_its_key_and_headers_without_the_sdks_telemetry(
    llm: ScriptedLLM,
) -> None:
    async with openai.AsyncOpenAI(
        base_url=llm.base_url,
        api_key="test-key",
        default_headers={"X-Gateway-Route": "support"},
        default_query={"api-version": "2026-01"},
    ) as sdk:
        llm.reply("hello")
        raw = await direct(sdk).post(BODY)

    assert json.loads(raw)["choices"][0]["message"]["content"] == "hello"
    [headers] = llm.request_headers
    assert headers["authorization"] == "Bearer test-key"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("AsyncOpenAI/Python")
    assert headers["x-gateway-route"] == "support"
    assert not [name for name in headers if name.startswith("x-stainless")]
    assert llm.request_paths == ["/v1/chat/completions?api-version=2026-01"]
    assert llm.requests[0]["messages"][0]["content"] == "hi"


async def test_retries_follow_the_servers_delay(
    client: openai.AsyncOpenAI, llm: ScriptedLLM
) -> None:
    llm.error(503, "overloaded", headers=FAST)
    llm.error(429, "slow down", headers=FAST)
    llm.reply("third time")

    raw = await direct(client).post(BODY)

    assert json.loads(raw)["choices"][0]["message"]["content"] == "third time"
    assert len(llm.requests) == 3


async def test_the_last_failure_is_the_sdks_error(
    client: openai.AsyncOpenAI, llm: ScriptedLLM
) -> None:
    for _ in range(3):
        llm.error(500, "still down", headers=FAST)

    with pytest.raises(openai.InternalServerError) as failed:
        await direct(client).post(BODY)

    assert len(llm.requests) == 3
    assert failed.value.status_code == 500


@pytest.mark.parametrize(
    ("status", "headers", "requests"),
    [
        (400, {}, 1),  # refused: never retried
        (503, {"x-should-retry": "false"}, 1),  # the server says no
        (400, {"x-should-retry": "true", **FAST}, 2),  # the server says yes
        (429, {"Retry-After": "300"}, 1),  # longer than two minutes: not waited for
    ],
)
async def test_what_is_retried_is_what_the_sdk_retries(
    llm: ScriptedLLM, status: int, headers: dict[str, str], requests: int
) -> None:
    async with openai.AsyncOpenAI(base_url=llm.base_url, api_key="k", max_retries=1) as sdk:
        for _ in range(requests):
            llm.error(status, "scripted", headers=headers)
        with pytest.raises(openai.APIStatusError):
            await direct(sdk).post(BODY)
    assert len(llm.requests) == requests


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 418, 422, 429, 500, 502])
async def test_each_status_raises_what_the_sdk_raises(llm: ScriptedLLM, status: int) -> None:
    """Class, message, status and body of the error, side by side with the SDK's own path."""
    async with openai.AsyncOpenAI(base_url=llm.base_url, api_key="k", max_retries=0) as sdk:
        llm.error(status, f"scripted {status}")
        llm.error(status, f"scripted {status}")
        with pytest.raises(openai.APIStatusError) as ours:
            await direct(sdk).post(BODY)
        with pytest.raises(openai.APIStatusError) as theirs:
            await sdk.post("/chat/completions", cast_to=bytes, content=BODY)

    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value) == f"Error code: {status} - scripted {status}"
    assert ours.value.status_code == theirs.value.status_code == status
    assert ours.value.body == theirs.value.body


async def test_a_timeout_is_the_sdks_timeout_error(llm: ScriptedLLM) -> None:
    released = asyncio.Event()
    llm.hang(released)
    async with openai.AsyncOpenAI(
        base_url=llm.base_url, api_key="k", max_retries=0, timeout=0.2
    ) as sdk:
        with pytest.raises(openai.APITimeoutError):
            await direct(sdk).post(BODY)
    released.set()


async def test_an_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    async with openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0) as sdk:
        with pytest.raises(openai.APIConnectionError) as failed:
            await direct(sdk).post(BODY)
    assert not isinstance(failed.value, openai.APITimeoutError)


async def test_a_key_provider_keeps_the_sdks_whole_path(
    llm: ScriptedLLM, store: Store, webhooks: WebhookClient, webhook_server: WebhookServer
) -> None:
    """A client whose key comes from a provider (rotated keys) is not taken over: the SDK
    asks the provider, and the server sees its key."""

    async def rotating_key() -> str:
        return "key-from-provider"

    sdk = openai.AsyncOpenAI(base_url=llm.base_url, api_key=rotating_key, max_retries=0)
    assert DirectPost.over(sdk) is None
    model = OpenAIChatModel(sdk, model="m")
    actions = [inventory_action(webhook_server)]
    engine = make_engine(actions, store=store, webhooks=webhooks, model=model)
    llm.reply("Hi there.")
    message = IncomingMessage(platform="test", conversation="c", user_id="u", text="hi")
    try:
        assert (await engine.handle(message)).text == "Hi there."
    finally:
        await model.aclose()
    assert llm.request_headers[0]["authorization"] == "Bearer key-from-provider"
