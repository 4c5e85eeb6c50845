"""The Chat Completions messages one turn adds: the assistant's tool calls, tool errors, and
the repairs a cancelled or parked turn needs (`answered_only`, `unanswered_round`)."""

from __future__ import annotations

import json

from bot.llm.client import ModelTurn
from bot.llm.history import Message
from bot.types import ToolCall


def assistant_message(answer: ModelTurn) -> Message:
    return {
        "role": "assistant",
        "content": answer.text,  # "" rather than null: some servers refuse null
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.tool_calls
        ],
    }


def tool_error(name: str, message: str) -> str:
    return json.dumps({"ok": False, "action": name, "error": message}, ensure_ascii=False)


def unanswered_round(messages: list[Message]) -> list[ToolCall]:
    """The calls of a last assistant message that has no results yet (a round that waited
    for a confirmation), to run when the turn resumes."""
    if not messages or messages[-1]["role"] != "assistant" or not messages[-1].get("tool_calls"):
        return []
    return [
        ToolCall(id=c["id"], name=c["function"]["name"], arguments=c["function"]["arguments"])
        for c in messages[-1]["tool_calls"]
    ]


def answered_only(messages: list[Message]) -> list[Message]:
    """Drop tool-call messages whose results are missing (a turn that broke mid-round)."""
    answered = {m.get("tool_call_id") for m in messages if m["role"] == "tool"}
    return [
        m
        for m in messages
        if not m.get("tool_calls") or all(c["id"] in answered for c in m["tool_calls"])
    ]
