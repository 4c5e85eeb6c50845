"""The model behind a small interface: messages and tools in, text or tool calls out."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai

from bot.config import Settings
from bot.errors import ConfigError, LLMResponseError
from bot.history import Message
from bot.types import ToolCall
from bot.webhooks import default_ssl_context

logger = logging.getLogger(__name__)

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


class ChatModel(Protocol):
    """Anything that completes a chat with tools."""

    async def complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> ModelTurn:
        """One Chat Completions request; raises `openai.OpenAIError` on failure."""
        ...


class OpenAIChatModel:
    """Chat Completions through the `openai` SDK, against any compatible server."""

    def __init__(self, client: openai.AsyncOpenAI, *, model: str) -> None:
        self.client = client
        self.model = model

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
        return cls(client, model=settings.model)

    async def complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> ModelTurn:
        """POST /chat/completions through the SDK (its retries, timeout and error types),
        with our already well-formed body sent as is and the JSON answer read directly:
        the SDK's typed request transform and response models cost more CPU than the rest
        of a turn together, and add nothing for messages we built ourselves."""
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            body["tools"] = tools
        raw = await self.client.post("/chat/completions", cast_to=bytes, body=body)
        return parse_completion(raw)

    async def aclose(self) -> None:
        await self.client.close()


def parse_completion(raw: bytes) -> ModelTurn:
    """A Chat Completions response body as a `ModelTurn`; `LLMResponseError` if malformed."""
    try:
        data = json.loads(raw)
        choices = data.get("choices") or []
        if not choices:
            logger.warning("the model returned no choices")
            return ModelTurn(text="")
        message = choices[0]["message"]
        calls = [
            ToolCall(
                id=c["id"],
                name=c["function"]["name"],
                arguments=c["function"].get("arguments") or "",
            )
            for c in message.get("tool_calls") or []
            if c.get("type", "function") == "function"
        ]
        usage = data.get("usage") or {}
        return ModelTurn(
            text=(message.get("content") or "").strip(),
            tool_calls=calls,
            usage=Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            ),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LLMResponseError(
            f"the LLM server sent a malformed completion ({exc!r:.120})"
        ) from None
