"""The model behind a small interface: messages and tools in, text or tool calls out."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import openai

from bot.errors import ConfigError, LLMRejectedError, LLMResponseError
from bot.llm.direct import DirectPost
from bot.llm.history import Message
from bot.llm.tool_prompt import looks_like_a_call, parse_envelope, to_prompt_messages
from bot.outbound.webhooks import default_ssl_context
from bot.runtime.config import Settings
from bot.types import ToolCall

logger = logging.getLogger(__name__)

ToolMode = Literal["native", "prompt", "auto"]
MAX_CAUSES = 100
"""Distinct refusal causes logged per process; later new ones still fail, quietly."""
MAX_DETAIL_CHARS = 300

NO_LLM_CONFIGURED = """\
No language model is configured. Set one of these (in .env or the environment), then run again:

  OpenAI:           OPENAI_API_KEY=sk-...            (model: ACTIONBOT_MODEL, default gpt-4o-mini)
  Ollama (local):   OPENAI_BASE_URL=http://localhost:11434/v1
                    ACTIONBOT_MODEL=llama3.1         (any model you have pulled with tool support)

Any OpenAI-compatible Chat Completions server works the same way (Azure, vLLM, llama.cpp)."""


@dataclass(frozen=True)
class Usage:
    """Token counts the server reported for one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ModelTurn:
    """One model answer: final text, or tool calls to run first."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = ""


class ChatModel(Protocol):
    """Anything that completes a chat with tools."""

    async def complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> ModelTurn:
        """One Chat Completions request; raises `openai.OpenAIError` on failure."""
        ...


class OpenAIChatModel:
    """Chat Completions through the `openai` SDK, against any compatible server.

    Tools go natively (`tools` + `tool_choice: "auto"`) or, for servers without tool
    support, described in the prompt (`bot/tool_prompt.py`). In `auto` mode the model starts
    native and switches to prompt mode, logged once, when the server shows it ignores tools:
    it refuses a request for carrying them, or the model writes a call out as text.
    A request the server refuses (4xx other than 429) is not retried and raises
    `LLMRejectedError`; its cause is logged once. Connection errors, timeouts, 429 (after
    `Retry-After`) and 5xx are retried with backoff by the SDK.
    """

    def __init__(
        self, client: openai.AsyncOpenAI, *, model: str, tool_mode: ToolMode = "auto"
    ) -> None:
        self.client = client
        self.model = model
        self.tool_mode = tool_mode
        self.prompt_tools = tool_mode == "prompt"
        self._causes: set[tuple[int, str]] = set()
        self._direct = DirectPost.over(client)

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChatModel:
        """Build the client once; `ConfigError` with what to set when nothing is configured."""
        if settings.openai_api_key is None and not settings.openai_base_url:
            raise ConfigError(NO_LLM_CONFIGURED)
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
        client = openai.AsyncOpenAI(
            api_key=key,
            base_url=settings.openai_base_url or None,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            # The same trust as webhooks: public CAs plus SSL_CERT_FILE, not instead of them.
            http_client=openai.DefaultAsyncHttpxClient(verify=default_ssl_context()),
        )
        return cls(client, model=settings.model, tool_mode=settings.tool_mode)

    @property
    def endpoint(self) -> str:
        return str(self.client.base_url).rstrip("/")

    def use_prompt_tools(self, reason: str) -> None:
        """Describe tools in the prompt from now on (auto mode's fallback), logged once."""
        if not self.prompt_tools:
            self.prompt_tools = True
            logger.warning(
                "model %s at %s: %s; using ACTIONBOT_TOOL_MODE=prompt from now on "
                "(set it explicitly to skip this check)",
                self.model,
                self.endpoint,
                reason,
            )

    async def complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> ModelTurn:
        """POST /chat/completions with our already well-formed body sent as is and the JSON
        answer read directly: the SDK's typed request transform and response models cost
        more CPU than the rest of a turn together, and add nothing for messages we built
        ourselves. A plain client's requests go straight to its connection pool
        (`bot.llm.direct`, with the SDK's headers, retries and errors); any other goes
        through the SDK's `post`."""
        try:
            return await self._complete(messages, tools)
        except LLMRejectedError as exc:
            if not (tools and self.tool_mode == "auto" and not self.prompt_tools):
                raise
            if "tool" not in exc.detail.lower():
                raise
            self.use_prompt_tools(f"the server refused a request with tools ({exc.detail})")
            return await self._complete(messages, tools)

    async def _complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> ModelTurn:
        prompt_tools = self.prompt_tools and bool(tools)
        body = self._body(messages, tools, prompt_tools=prompt_tools)
        started = time.perf_counter()
        try:
            # Serialised here: given bytes, the SDK sends them as they are instead of copying
            # the whole prompt and encoding it with its own (slower) encoder.
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            if self._direct is not None:
                raw = await self._direct.post(content)
            else:
                raw = await self.client.post("/chat/completions", cast_to=bytes, content=content)
        except openai.APIStatusError as exc:
            raise self._rejected(exc) from exc
        turn = parse_completion(raw)
        if prompt_tools:
            text, calls = parse_envelope(turn.text)
            turn = replace(turn, text=text, tool_calls=calls)
        elif tools and self.tool_mode == "auto" and not turn.tool_calls:
            turn = self._text_call(turn, tools)
        _log_exchange(body, turn, time.perf_counter() - started)
        return turn

    def _body(
        self, messages: list[Message], tools: list[dict[str, Any]], *, prompt_tools: bool
    ) -> dict[str, Any]:
        if prompt_tools:
            return {"model": self.model, "messages": to_prompt_messages(messages, tools)}
        body: dict[str, Any] = {"model": self.model, "messages": _native(messages)}
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"  # some servers drop tools without it
        return body

    def _text_call(self, turn: ModelTurn, tools: list[dict[str, Any]]) -> ModelTurn:
        """A native-mode reply that writes a tool call out as JSON text: the server ignores
        tools. Take the call, and describe tools in the prompt from now on."""
        names = {t["function"]["name"] for t in tools}
        if not looks_like_a_call(turn.text, names):
            return turn
        self.use_prompt_tools("the model wrote a tool call as text (the server ignores tools)")
        text, calls = parse_envelope(turn.text)
        return replace(turn, text=text, tool_calls=calls)

    def _rejected(self, exc: openai.APIStatusError) -> Exception:
        """4xx other than 429 (the SDK did not retry it) → `LLMRejectedError`, logged once
        per distinct cause; anything else goes on as the SDK's error."""
        status = exc.status_code
        if not 400 <= status < 500 or status == 429:
            return exc
        detail = _error_detail(exc)
        if (status, detail) not in self._causes and len(self._causes) < MAX_CAUSES:
            self._causes.add((status, detail))
            logger.error(
                "the LLM server at %s refused a request for model %s: HTTP %d: %s",
                self.endpoint,
                self.model,
                status,
                detail,
            )
        return LLMRejectedError(status, detail)

    async def aclose(self) -> None:
        await self.client.close()


def _native(messages: list[Message]) -> list[Message]:
    """Messages as every server accepts them: an assistant message with tool calls carries
    `content: ""` (llama.cpp-based servers refuse `null` and a missing `content`)."""
    if not any(m.get("tool_calls") and m.get("content") is None for m in messages):
        return messages
    return [
        {**m, "content": ""} if m.get("tool_calls") and m.get("content") is None else m
        for m in messages
    ]


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.message or "no detail")[:MAX_DETAIL_CHARS]


def _log_exchange(body: dict[str, Any], turn: ModelTurn, seconds: float) -> None:
    """At DEBUG: the request and answer in summary (never keys, message texts or secrets)."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    logger.debug(
        "LLM request: model=%s messages=%d tools=%s mode=%s -> finish=%s calls=%s "
        "tokens=%d+%d latency_ms=%.0f",
        body["model"],
        len(body["messages"]),
        ",".join(tools) or "-",
        "native" if "tools" in body or not tools else "prompt",
        turn.finish_reason or "-",
        ",".join(c.name for c in turn.tool_calls) or "-",
        turn.usage.prompt_tokens,
        turn.usage.completion_tokens,
        seconds * 1000,
    )


def parse_completion(raw: bytes) -> ModelTurn:
    """A Chat Completions response body as a `ModelTurn`; `LLMResponseError` if malformed.

    Tolerant of what compatible servers really send: any tool-call id (or none), arguments
    as a JSON object instead of a string, no `usage`, a `function_call` field beside
    `tool_calls`, and any `finish_reason` while tool calls are present."""
    try:
        data = json.loads(raw)
        choices = data.get("choices") or []
        if not choices:
            logger.warning("the model returned no choices")
            return ModelTurn(text="")
        choice = choices[0]
        message = choice["message"]
        calls = [
            _tool_call(c, index)
            for index, c in enumerate(message.get("tool_calls") or [])
            if c.get("type", "function") == "function"
        ]
        usage = data.get("usage") or {}
        return ModelTurn(
            text=(message.get("content") or "").strip(),
            tool_calls=calls,
            usage=Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            ),
            finish_reason=str(choice.get("finish_reason") or ""),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LLMResponseError(
            f"the LLM server sent a malformed completion ({exc!r:.120})"
        ) from None


def _tool_call(call: dict[str, Any], index: int) -> ToolCall:
    function = call["function"]
    arguments = function.get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)  # some servers send an object
    return ToolCall(
        id=str(call.get("id") or f"call_{index}"),
        name=function["name"],
        arguments=arguments or "",
    )
