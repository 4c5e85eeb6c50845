"""The built-in `handoff_to_human` tool: offered to the model on platforms with a handoff
channel (`ACTIONBOT_HANDOFF_CHANNEL`); a call of it ends the turn with `Reply.handoff`,
which the adapter posts to the team and `bot.delivery` turns into silence in the
conversation until an admin resumes it."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from bot import wording
from bot.runtime.metrics import Metrics
from bot.store import Handoffs, InboxEntry
from bot.types import Handoff, ToolCall

logger = logging.getLogger(__name__)

HANDOFF_TOOL = "handoff_to_human"
HANDOFF_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": HANDOFF_TOOL,
        "description": wording.HANDOFF_TOOL_DESCRIPTION,
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {
                    "type": "string",
                    "description": "Why a person should take over, in one sentence.",
                },
                "summary": {
                    "type": "string",
                    "description": "What the customer needs and what was tried, for the person "
                    "taking over.",
                },
            },
            "required": ["reason"],
        },
    },
}
HANDED_OFF_RESULT = json.dumps({"ok": True, "handed_off": True})
"""What the model is told (it is not asked again: the turn ends)."""


def requested_handoff(
    call: ToolCall,
    *,
    conversation: str,
    question: str,
    called: list[str],
    display_names: Mapping[str, str],
) -> Handoff:
    """The handoff the model asked for. Lenient on purpose: arguments that are not a JSON
    object still hand over (a person is better than a refusal), with a stock reason."""
    try:
        given = json.loads(call.arguments or "{}")
    except ValueError:
        given = {}
    if not isinstance(given, dict):
        given = {}
    return Handoff(
        conversation=conversation,
        reason=str(given.get("reason") or wording.HANDOFF_NO_REASON)[:500],
        summary=str(given.get("summary") or "")[:2000],
        question=question,
        actions_tried=[display_names.get(name, name) for name in called],
    )


async def with_a_person(store: Handoffs, entry: InboxEntry) -> bool:
    """Whether the message's conversation was handed to a person: then the bot says nothing
    (the person answers) until an admin resumes it or the handoff expires."""
    message = entry.message
    if await store.handed_off(f"{message.platform}:{message.conversation}") is None:
        return False
    logger.info("%s stays unanswered: its conversation is with a person", entry.key)
    return True


async def hand_over(
    store: Handoffs, entry: InboxEntry, handoff: Handoff, seconds: float, metrics: Metrics
) -> None:
    """The answer saying a person takes over was delivered: silence the conversation for
    `seconds` (once, also when the turn is replayed)."""
    platform = entry.message.platform
    try:
        started = await store.start_handoff(
            entry.key, conversation=handoff.conversation, platform=platform, seconds=seconds
        )
    except Exception:  # the bot may answer again; the team was told all the same
        logger.exception("could not record the handoff of %s", handoff.conversation)
        return
    if started:
        metrics.handoffs.labels(platform).inc()
