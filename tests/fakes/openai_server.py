"""A scripted OpenAI-compatible Chat Completions server on loopback, for tests.

Each test queues the responses it expects; the server answers `POST /v1/chat/completions`
with them in order, records every request, and fails the test (via `assert_done`, which the
async context manager calls on a clean exit) on an unexpected request or an unconsumed step::

    async with ScriptedLLM() as llm:
        llm.tool_calls(("lookup_order", {"order_id": "42"}))
        llm.reply("Your order has shipped.")
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        ...  # drive the code under test
        assert llm.requests[1]["messages"][-1]["role"] == "tool"

Unexpected requests get a 500 with a clear message and are remembered, so `assert_done`
still fails when the client swallowed the 500.

`ScriptedLLM(quirks=LLAMA_CPP)` (see `fakes/model_servers.py`) behaves like a real
self-hosted server: it refuses what that server refuses, answers in its exact shape, and
when the server would not pass the tools to the model, a scripted tool call becomes the
model's invented answer `IMAGINED` instead (leaving the rest of the script unconsumed).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiohttp import web

from fakes.loopback import LoopbackServer
from fakes.model_servers import OPENAI, Quirks, request_problem, reshape, tools_reach_the_model

IMAGINED = "Yes, we have plenty of those in stock!"
"""What a model answers from memory when the server dropped the tools it should have used."""
DEFAULT_USAGE: Mapping[str, int] = {"prompt_tokens": 10, "completion_tokens": 5}


@dataclass(frozen=True)
class Reply:
    """An assistant text message (`finish_reason` "stop")."""

    text: str
    usage: Mapping[str, int] | None = None


@dataclass(frozen=True)
class ToolCalls:
    """An assistant message that calls tools; `ids` are assigned when served if left empty."""

    calls: tuple[tuple[str, dict[str, Any] | str], ...]
    ids: tuple[str, ...] = ()
    usage: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Error:
    """An OpenAI-shaped error response with the given HTTP status."""

    status: int
    message: str = "scripted error"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    """Hold the response until `until` is set or the server stops, then answer with `then`."""

    until: asyncio.Event | None = None
    then: Step | None = None


Step: TypeAlias = Reply | ToolCalls | Error | Hang
Responder: TypeAlias = Callable[[dict[str, Any]], Step | Awaitable[Step]]


@dataclass(frozen=True)
class Respond:
    """A step computed at request time from the parsed request body."""

    fn: Responder


class ScriptedLLM(LoopbackServer):
    """A Chat Completions server that answers from a queue of scripted steps."""

    def __init__(
        self, *, quirks: Quirks = OPENAI, models: tuple[str, ...] = ("test-model",)
    ) -> None:
        super().__init__()
        self.quirks = quirks
        self.models = models
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_paths: list[str] = []
        self.failures: list[str] = []
        self._steps: deque[Step | Respond] = deque()
        self._otherwise: Responder | None = None
        self._ids = itertools.count(1)
        self._received = asyncio.Condition()
        self._stopping = asyncio.Event()

    @property
    def base_url(self) -> str:
        """The URL to pass to `openai.AsyncOpenAI(base_url=...)`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def build_app(self) -> web.Application:
        """The Chat Completions endpoint; anything else is unexpected."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_route("*", "/{tail:.*}", self._handle_other)
        return app

    async def release(self) -> None:
        """Let hung responses go."""
        self._stopping.set()

    def on_clean_exit(self) -> None:
        self.assert_done()

    def reply(self, text: str, *, usage: Mapping[str, int] | None = None) -> None:
        """Queue an assistant text reply."""
        self._steps.append(Reply(text, usage))

    def tool_calls(
        self, *calls: tuple[str, dict[str, Any] | str], usage: Mapping[str, int] | None = None
    ) -> list[str]:
        """Queue a tool-call message (dict arguments are JSON-encoded) and return its call ids."""
        ids = tuple(self._next_call_id() for _ in calls)
        self._steps.append(ToolCalls(tuple(calls), ids, usage))
        return list(ids)

    def error(
        self,
        status: int,
        message: str = "scripted error",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Queue an OpenAI-shaped error response."""
        self._steps.append(Error(status, message, dict(headers or {})))

    def hang(self, until: asyncio.Event | None = None, *, then: Step | None = None) -> None:
        """Queue a response held until `until` is set or the server stops."""
        self._steps.append(Hang(until, then))

    def respond(self, fn: Responder) -> None:
        """Queue a step computed by `fn(request_body)`, which may be async."""
        self._steps.append(Respond(fn))

    def otherwise(self, fn: Responder) -> None:
        """Answer with `fn(request_body)` whenever nothing is queued (a load of turns whose
        order is not known in advance)."""
        self._otherwise = fn

    # A bounded wait is the point of this helper, so the timeout is part of its signature.
    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until at least `n` requests have been received."""
        try:
            async with asyncio.timeout(timeout), self._received:
                await self._received.wait_for(lambda: len(self.requests) >= n)
        except TimeoutError:
            got = len(self.requests)
            raise AssertionError(f"expected {n} requests within {timeout}s, got {got}") from None

    def assert_done(self) -> None:
        """Raise AssertionError on unexpected requests, failures or unconsumed steps."""
        problems = list(self.failures)
        problems += [f"unconsumed step: {step!r}" for step in self._steps]
        if problems:
            raise AssertionError("ScriptedLLM script mismatch:\n  " + "\n  ".join(problems))

    def _next_call_id(self) -> str:
        return f"call_{next(self._ids)}"

    async def _handle_models(self, request: web.Request) -> web.Response:
        """The model list (`GET /v1/models`), as OpenAI and the self-hosted servers give it."""
        data = [{"id": name, "object": "model", "owned_by": "local"} for name in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _handle_other(self, request: web.Request) -> web.Response:
        self.failures.append(f"unexpected endpoint: {request.method} {request.path}")
        return _error_response(Error(404, f"ScriptedLLM: no route {request.path}"))

    async def _handle_chat(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            self.failures.append("request body is not JSON")
            return _error_response(Error(400, "ScriptedLLM: request body is not JSON"))
        await self._record(body, request)
        number = len(self.requests)
        if (problem := request_problem(self.quirks, body)) is not None:
            return _error_response(Error(*problem))
        if body.get("stream"):
            self.failures.append(f"request #{number} asked for streaming, which is unsupported")
            return _error_response(Error(400, "ScriptedLLM: streaming is not supported"))
        if not self._steps and self._otherwise is None:
            self.failures.append(f"unexpected request #{number}: {_summary(body)}")
            return _error_response(Error(500, f"ScriptedLLM: nothing queued for #{number}"))
        queued = self._steps.popleft() if self._steps else Respond(self._otherwise)  # type: ignore[arg-type]
        try:
            step = await self._resolve(queued, body)
            if isinstance(step, ToolCalls) and not tools_reach_the_model(self.quirks, body):
                step = Reply(IMAGINED)
            return await self._serve(step, body)
        except Exception as exc:
            self.failures.append(f"request #{number}: responder failed: {exc!r}")
            return _error_response(Error(500, f"ScriptedLLM: responder failed: {exc!r}"))

    async def _record(self, body: dict[str, Any], request: web.Request) -> None:
        async with self._received:
            self.requests.append(body)
            self.request_headers.append({k.lower(): v for k, v in request.headers.items()})
            self.request_paths.append(request.path_qs)
            self._received.notify_all()

    async def _resolve(self, step: Step | Respond, body: dict[str, Any]) -> Step:
        if not isinstance(step, Respond):
            return step
        result = step.fn(body)
        return await result if inspect.isawaitable(result) else result

    async def _serve(self, step: Step, body: dict[str, Any]) -> web.Response:
        match step:
            case Reply(text=text, usage=usage):
                message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
                return self._json(_completion(body, message, "stop", usage))
            case ToolCalls():
                message = {"role": "assistant", "content": None, "tool_calls": self._calls(step)}
                return self._json(_completion(body, message, "tool_calls", step.usage))
            case Error():
                return _error_response(step)
            case Hang(until=until, then=then):
                await self._hold(until)
                return await self._serve(then or Error(503, "ScriptedLLM: hang released"), body)

    def _json(self, completion: dict[str, Any]) -> web.Response:
        return web.json_response(reshape(self.quirks, completion))

    def _calls(self, step: ToolCalls) -> list[dict[str, Any]]:
        ids = step.ids or tuple(self._next_call_id() for _ in step.calls)
        return [
            {"id": call_id, "type": "function", "function": _function(name, arguments)}
            for call_id, (name, arguments) in zip(ids, step.calls, strict=True)
        ]

    async def _hold(self, until: asyncio.Event | None) -> None:
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(until.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()


def _function(name: str, arguments: dict[str, Any] | str) -> dict[str, str]:
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"name": name, "arguments": encoded}


def _completion(
    body: dict[str, Any],
    message: dict[str, Any],
    finish_reason: str,
    usage: Mapping[str, int] | None,
) -> dict[str, Any]:
    counts = {**DEFAULT_USAGE, **(usage or {})}
    counts.setdefault("total_tokens", counts["prompt_tokens"] + counts["completion_tokens"])
    return {
        "id": f"chatcmpl-scripted-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": counts,
    }


def _error_response(error: Error) -> web.Response:
    kind = "server_error" if error.status >= 500 else "invalid_request_error"
    payload = {"error": {"message": error.message, "type": kind, "param": None, "code": None}}
    return web.json_response(payload, status=error.status, headers=dict(error.headers))


def _summary(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    return f"model={body.get('model')!r}, last message={last!r}"
