"""`actionbot doctor`: can this configuration run, and how should tools reach the model?

Each check returns `Finding`s: what was checked, whether it passed, the detail, and whether a
failure stops the bot (`blocking`) or is advice. The model server is asked, in order: is it
reachable and is the model listed; does a plain completion work (and how fast); does native
tool calling work (a trivial tool the model is told to call, `tool_choice` forced); is a
tool result accepted back. From that it recommends an `ACTIONBOT_TOOL_MODE`. Each action's
host is resolved and checked against the egress policy, without calling it. Platform
tokens are checked by the caller (the adapters know how), as `run` would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import openai

from bot.actions.models import ActionSet
from bot.errors import ActionBotError, LLMResponseError
from bot.llm.client import OpenAIChatModel, ToolMode, parse_completion
from bot.outbound.egress import EgressPolicy
from bot.outbound.pinning import PinnedBackend, Refused, Unresolvable
from bot.store import Store

PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "get_magic_number",
        "description": "Returns today's magic number.",
        "parameters": {"type": "object", "properties": {}, "required": []},
    },
}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Finding:
    """One check's outcome; a failed `blocking` one means the bot cannot run."""

    check: str
    ok: bool
    detail: str
    blocking: bool = True


@dataclass(frozen=True)
class ModelReport:
    findings: list[Finding]
    native_tools: bool | None
    """None when the server could not be asked at all."""

    @property
    def recommended(self) -> ToolMode:
        return "native" if self.native_tools else "prompt"


async def check_model(model: OpenAIChatModel) -> ModelReport:
    """Ask the model server the questions in the module docstring."""
    findings = [await _listed(model)]
    plain = await _timed(_complete(model, [{"role": "user", "content": "Say OK."}]))
    if isinstance(plain, Exception):
        findings.append(Finding("completion", False, _failure(plain)))
        return ModelReport(findings, native_tools=None)
    findings.append(Finding("completion", True, f"a plain completion works ({plain[1]:.0f} ms)"))
    native = await _native_tools(model)
    findings += native
    return ModelReport(findings, native_tools=all(f.ok for f in native))


async def _listed(model: OpenAIChatModel) -> Finding:
    try:
        raw = await model.client.get("/models", cast_to=bytes)
        served = [str(m.get("id")) for m in json.loads(raw).get("data") or []]
    except (openai.OpenAIError, ValueError, AttributeError) as exc:
        # Some servers (Azure deployments, small proxies) have no model list: only advice.
        return Finding("model", False, f"could not list models ({_failure(exc)})", False)
    wanted = model.model
    if not served or wanted in served or f"{wanted}:latest" in served:
        return Finding("model", True, f"{model.endpoint} serves {wanted}")
    shown = ", ".join(served[:8]) + (" …" if len(served) > 8 else "")
    return Finding(
        "model", False, f"{wanted} is not listed at {model.endpoint} (it has: {shown})", False
    )


async def _native_tools(model: OpenAIChatModel) -> list[Finding]:
    """A forced call of the probe tool, then its result sent back."""
    ask: list[dict[str, Any]] = [
        {"role": "user", "content": "What is the magic number? Use the tool."}
    ]
    forced = {"type": "function", "function": {"name": "get_magic_number"}}
    try:
        turn = await _complete(model, ask, tools=[PROBE_TOOL], tool_choice=forced)
    except Exception as exc:
        return [Finding("tool calling", False, f"refused: {_failure(exc)}", False)]
    if not turn.tool_calls:
        detail = "the server ignored the tools (the model answered in text)"
        return [Finding("tool calling", False, detail, False)]
    call = turn.tool_calls[0]
    findings = [Finding("tool calling", True, f"native tool calls work ({call.name})")]
    call_message = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": "{}"}}
        ],
    }
    result = {"role": "tool", "tool_call_id": call.id, "content": '{"magic_number": 42}'}
    try:
        await _complete(model, [*ask, call_message, result], tools=[PROBE_TOOL])
    except Exception as exc:
        return [*findings, Finding("tool result", False, f"refused: {_failure(exc)}", False)]
    return [*findings, Finding("tool result", True, "a tool result is accepted back")]


async def _complete(model: OpenAIChatModel, messages: list[dict[str, Any]], **extra: Any) -> Any:
    body = {"model": model.model, "messages": messages, **extra}
    raw = await model.client.post("/chat/completions", cast_to=bytes, body=body)
    return parse_completion(raw)


async def _timed(work: Awaitable[_T]) -> tuple[_T, float] | Exception:
    started = time.perf_counter()
    try:
        value = await work
    except (openai.OpenAIError, LLMResponseError) as exc:
        return exc
    return value, (time.perf_counter() - started) * 1000


def _failure(exc: BaseException) -> str:
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return f"cannot reach the model server ({type(cause).__name__}: {cause})"
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        return f"HTTP {exc.status_code}: {message or exc.message}"
    return str(exc) or type(exc).__name__


async def check_actions(actions: ActionSet, policy: EgressPolicy) -> list[Finding]:
    """Each action's host resolves and every address passes the egress policy (not called)."""
    backend = PinnedBackend(policy=policy)
    findings = []
    for action in actions:
        host = action.host
        try:
            addresses = await backend.checked_addresses(host, 443)
        except Refused as exc:
            findings.append(Finding(f"action {action.name}", False, f"blocked: {exc}"))
        except Unresolvable:
            findings.append(Finding(f"action {action.name}", False, f"{host} does not resolve"))
        else:
            shown = ", ".join(str(a) for a in addresses[:3])
            findings.append(Finding(f"action {action.name}", True, f"{host} → {shown}"))
    return findings


async def check_store(open_store: Callable[[], Awaitable[Store]]) -> Finding:
    try:
        store = await open_store()
    except ActionBotError as exc:
        return Finding("database", False, str(exc))
    try:
        ok = await store.ping()
    finally:
        await store.close()
    return Finding("database", ok, "opens and answers" if ok else "does not answer")
