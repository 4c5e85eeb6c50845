"""The prompt's history window: the newest messages that fit a count and a character budget.

An assistant message that calls tools and the tool results that answer it are one unit: the
window keeps or drops them together, so the model never sees a result without its call.
"""

from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]
"""One Chat Completions message as sent to the model (role, content, tool_calls, …)."""


def units(messages: list[Message]) -> list[list[Message]]:
    """Group messages so each tool-result message stays with the call that asked for it."""
    grouped: list[list[Message]] = []
    for message in messages:
        if message.get("role") == "tool" and grouped and _calls_tools(grouped[-1][0]):
            grouped[-1].append(message)
        else:
            grouped.append([message])
    return grouped


def window(messages: list[Message], *, max_messages: int, max_chars: int) -> list[Message]:
    """The newest whole units within both limits (possibly none).

    The kept history starts at a user message, since some models reject any other opening.
    """
    kept: list[list[Message]] = []
    count = chars = 0
    for unit in reversed(units(messages)):
        size = sum(size_of(m) for m in unit)
        if count + len(unit) > max_messages or chars + size > max_chars:
            break
        kept.append(unit)
        count, chars = count + len(unit), chars + size
    kept.reverse()
    while kept and kept[0][0].get("role") != "user":
        kept.pop(0)
    return [m for unit in kept for m in unit]


def _calls_tools(message: Message) -> bool:
    return message.get("role") == "assistant" and bool(message.get("tool_calls"))


def size_of(message: Message) -> int:
    """A message's size as sent: its JSON length."""
    return len(json.dumps(message, ensure_ascii=False))
