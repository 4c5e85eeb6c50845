"""The scripted Chat Completions fake speaks the wire format the real `openai` SDK expects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from fakes.openai_server import Reply, ScriptedLLM, ToolCalls

MODEL = "gpt-test"
HELLO: list[Any] = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def llm() -> AsyncIterator[ScriptedLLM]:
    """A started fake that must end with its script fully consumed."""
    async with ScriptedLLM() as server:
        yield server


@pytest.fixture
async def client(llm: ScriptedLLM) -> AsyncIterator[openai.AsyncOpenAI]:
    """A real SDK client pointed at the fake, without retries."""
    async with openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0) as sdk:
        yield sdk


async def test_text_reply_is_parsed(llm: ScriptedLLM, client: openai.AsyncOpenAI) -> None:
    """A queued reply arrives as assistant content with the request's model and usage."""
    llm.reply("Hi there", usage={"prompt_tokens": 7, "completion_tokens": 3})
    completion = await client.chat.completions.create(model=MODEL, messages=HELLO)
    choice = completion.choices[0]
    assert choice.message.content == "Hi there"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None
    assert completion.usage.total_tokens == 10


async def test_tool_calls_come_through(llm: ScriptedLLM, client: openai.AsyncOpenAI) -> None:
    """Tool calls carry their names, JSON-encoded arguments, raw strings and returned ids."""
    ids = llm.tool_calls(("lookup_order", {"order_id": "42"}), ("broken", "{not json"))
    completion = await client.chat.completions.create(model=MODEL, messages=HELLO)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [call.id for call in calls] == ids == ["call_1", "call_2"]
    first, second = (call.function for call in calls)  # type: ignore[union-attr]
    assert (first.name, json.loads(first.arguments)) == ("lookup_order", {"order_id": "42"})
    assert (second.name, second.arguments) == ("broken", "{not json")


async def test_tool_call_ids_are_unique(llm: ScriptedLLM, client: openai.AsyncOpenAI) -> None:
    """Call ids keep counting across steps, including steps built by a responder."""
    llm.tool_calls(("a", {}))
    llm.respond(lambda body: ToolCalls((("b", {}),)))
    first = await client.chat.completions.create(model=MODEL, messages=HELLO)
    second = await client.chat.completions.create(model=MODEL, messages=HELLO)
    ids = [call.id for c in (first, second) for call in c.choices[0].message.tool_calls or []]
    assert ids == ["call_1", "call_2"]


async def test_error_surfaces_as_sdk_exception(
    llm: ScriptedLLM, client: openai.AsyncOpenAI
) -> None:
    """A scripted 500 becomes `openai.InternalServerError` with the scripted message."""
    llm.error(500, "model overloaded")
    with pytest.raises(openai.InternalServerError, match="model overloaded") as caught:
        await client.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 500


async def test_hang_times_out_the_client(llm: ScriptedLLM, client: openai.AsyncOpenAI) -> None:
    """A hung response makes a client with a short timeout raise `APITimeoutError`."""
    llm.hang()
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.2).chat.completions.create(model=MODEL, messages=HELLO)


async def test_hang_released_by_event(llm: ScriptedLLM, client: openai.AsyncOpenAI) -> None:
    """A hang answers with its `then` step once the test sets the event."""
    release = asyncio.Event()
    llm.hang(release, then=Reply("finally"))
    pending = asyncio.create_task(client.chat.completions.create(model=MODEL, messages=HELLO))
    await llm.wait_for_requests(1)
    assert not pending.done()
    release.set()
    completion = await pending
    assert completion.choices[0].message.content == "finally"


async def test_requests_are_recorded(llm: ScriptedLLM, client: openai.AsyncOpenAI) -> None:
    """The fake keeps each request's messages, tools and headers in order."""
    tool: Any = {
        "type": "function",
        "function": {"name": "lookup_order", "parameters": {"type": "object"}},
    }
    llm.reply("one")
    llm.reply("two")
    await client.chat.completions.create(model=MODEL, messages=HELLO, tools=[tool])
    await client.chat.completions.create(model="other", messages=HELLO)
    assert [body["model"] for body in llm.requests] == [MODEL, "other"]
    assert llm.requests[0]["messages"] == HELLO
    assert llm.requests[0]["tools"] == [tool]
    assert "tools" not in llm.requests[1]
    assert llm.request_headers[0]["authorization"] == "Bearer test"


async def test_respond_sees_the_request(llm: ScriptedLLM, client: openai.AsyncOpenAI) -> None:
    """An async responder builds its step from the parsed request body."""

    async def echo(body: dict[str, Any]) -> Reply:
        return Reply(f"you said {body['messages'][-1]['content']}")

    llm.respond(echo)
    completion = await client.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].message.content == "you said hello"


async def test_unexpected_request_fails_assert_done() -> None:
    """A request with nothing queued gets a 500 and still fails `assert_done` if swallowed."""
    llm = ScriptedLLM()
    await llm.start()
    try:
        async with openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0) as sdk:
            with pytest.raises(openai.InternalServerError, match="nothing queued"):
                await sdk.chat.completions.create(model=MODEL, messages=HELLO)
    finally:
        await llm.stop()
    with pytest.raises(AssertionError, match="unexpected request #1"):
        llm.assert_done()


async def test_unconsumed_step_fails_on_exit() -> None:
    """Leaving the context manager with a queued step raises `AssertionError`."""
    with pytest.raises(AssertionError, match="unconsumed step: Reply"):
        async with ScriptedLLM() as llm:
            llm.reply("never requested")


async def test_failing_responder_fails_assert_done() -> None:
    """A responder that raises gets the client a 500 and fails `assert_done`."""

    def broken(body: dict[str, Any]) -> Reply:
        raise KeyError("no such field")

    llm = ScriptedLLM()
    await llm.start()
    try:
        llm.respond(broken)
        async with openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0) as sdk:
            with pytest.raises(openai.InternalServerError, match="responder failed"):
                await sdk.chat.completions.create(model=MODEL, messages=HELLO)
    finally:
        await llm.stop()
    with pytest.raises(AssertionError, match="no such field"):
        llm.assert_done()


async def test_wait_for_requests_times_out_as_failure(llm: ScriptedLLM) -> None:
    """Waiting for a request that never comes fails with the count seen so far."""
    with pytest.raises(AssertionError, match=r"expected 1 requests within 0\.05s, got 0"):
        await llm.wait_for_requests(1, timeout=0.05)
