"""How self-hosted OpenAI-compatible servers really answer, for the scripted LLM fake.

`Quirks` describe a server's behaviour and `reshape` turns a standard completion into its
exact response shape:

- `LLAMA_CPP`: llama-cpp-python 0.3.x `--chat_format chatml-function-calling`, as recorded:
  drops `tools` unless `tool_choice` is sent, refuses an assistant message whose `content`
  is null or missing (HTTP 500, pydantic's message), tool-call ids like
  `call__0_check_inventory_cmpl-<uuid>`, a deprecated `function_call` beside `tool_calls`,
  and no `usage`.
- `LLAMA_CPP_CHATML`: the same server with `--chat_format chatml`: no tool calling at all,
  `tools` are ignored.
- `OLLAMA`: Ollama's `/v1/chat/completions` as documented: `chatcmpl-<n>` ids,
  `system_fingerprint: fp_ollama`, tool calls with an `index`; a model without tool
  support answers 400 `<model> does not support tools`.
- `VLLM`: vLLM's OpenAI server as documented: `chatcmpl-tool-<hex>` call ids,
  `reasoning_content: null`, and `prompt_logprobs` / `kv_transfer_params` at the top level.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Quirks:
    """What a server does differently from OpenAI's own API."""

    name: str = "openai"
    needs_tool_choice: bool = False
    """`tools` without `tool_choice` are silently dropped: the model answers from memory."""
    ignores_tools: bool = False
    """No tool calling at all: `tools` never reach the model."""
    refuses_tools: bool = False
    """A request carrying `tools` is refused with 400 (a model without tool support)."""
    refuses_null_content: bool = False
    """An assistant message with tool calls and `content` null or missing gets HTTP 500."""
    arguments_as_object: bool = False
    """Tool-call arguments come as a JSON object, not a string."""
    finish_reason_stop: bool = False
    """`finish_reason` is "stop" even when tool calls are present."""


OPENAI = Quirks()
LLAMA_CPP = Quirks(name="llama_cpp", needs_tool_choice=True, refuses_null_content=True)
LLAMA_CPP_CHATML = Quirks(name="llama_cpp", ignores_tools=True)
OLLAMA = Quirks(name="ollama")
OLLAMA_WITHOUT_TOOLS = Quirks(name="ollama", refuses_tools=True)
VLLM = Quirks(name="vllm")
LOOSE = Quirks(name="loose", arguments_as_object=True, finish_reason_stop=True)
"""A server that bends the format (seen in smaller proxies): the parser must still cope."""


def request_problem(quirks: Quirks, body: dict[str, Any]) -> tuple[int, str] | None:
    """The error status and message this server answers `body` with, if it refuses it."""
    if quirks.refuses_tools and body.get("tools"):
        return 400, f"registry.ollama.ai/library/{body.get('model')}:latest does not support tools"
    if quirks.refuses_null_content:
        for index, message in enumerate(body.get("messages") or []):
            if message.get("tool_calls") and not isinstance(message.get("content"), str):
                return 500, (
                    f"1 validation error for ChatCompletionRequestAssistantMessage\n"
                    f"messages.{index}.content\n  Input should be a valid string"
                )
    return None


def tools_reach_the_model(quirks: Quirks, body: dict[str, Any]) -> bool:
    """Whether the model sees the request's tools on this server."""
    if quirks.ignores_tools:
        return False
    return not (quirks.needs_tool_choice and "tool_choice" not in body)


def reshape(quirks: Quirks, completion: dict[str, Any]) -> dict[str, Any]:
    """The standard `completion` as this server shapes it."""
    choice = completion["choices"][0]
    message = choice["message"]
    calls = message.get("tool_calls") or []
    if quirks.arguments_as_object:
        for call in calls:
            call["function"]["arguments"] = _as_object(call["function"]["arguments"])
    if quirks.finish_reason_stop:
        choice["finish_reason"] = "stop"
    shaper = {"llama_cpp": _llama_cpp, "ollama": _ollama, "vllm": _vllm}.get(quirks.name)
    return shaper(completion) if shaper else completion


def _llama_cpp(completion: dict[str, Any]) -> dict[str, Any]:
    completion_id = f"cmpl-{uuid.uuid4()}"
    completion["id"] = completion_id
    message = completion["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    for index, call in enumerate(calls):
        call["id"] = f"call__{index}_{call['function']['name']}_{completion_id}"
    if calls:
        message["function_call"] = dict(calls[0]["function"])
    del completion["usage"]
    return completion


def _ollama(completion: dict[str, Any]) -> dict[str, Any]:
    completion["id"] = f"chatcmpl-{uuid.uuid4().int % 1000}"
    completion["system_fingerprint"] = "fp_ollama"
    for index, call in enumerate(completion["choices"][0]["message"].get("tool_calls") or []):
        call["id"] = f"call_{uuid.uuid4().hex[:8]}"
        call["index"] = index
    return completion


def _vllm(completion: dict[str, Any]) -> dict[str, Any]:
    completion["id"] = f"chatcmpl-{uuid.uuid4().hex}"
    message = completion["choices"][0]["message"]
    message["reasoning_content"] = None
    for call in message.get("tool_calls") or []:
        call["id"] = f"chatcmpl-tool-{uuid.uuid4().hex}"
    completion["prompt_logprobs"] = None
    completion["kv_transfer_params"] = None
    return completion


def _as_object(arguments: Any) -> Any:
    return json.loads(arguments) if isinstance(arguments, str) and arguments else {}
