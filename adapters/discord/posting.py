"""Posting and editing Discord messages without pinging anyone.

A refusal is logged, with the permission to grant when Discord says which is missing, and never
raised: a turn whose answer cannot be posted ends quietly instead of crashing its task. A
status message that cannot be edited (deleted, or a permission taken away) is reported by
`EditFailures`: one warning per cause, not one per message.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

logger = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
Sendable = discord.abc.Messageable


async def send(
    where: Sendable, text: str, *, reply_to: discord.Message | discord.PartialMessage | None = None
) -> discord.Message | None:
    """Post without pinging anyone; a refusal is logged with the permission to grant."""
    options: dict[str, Any] = {"allowed_mentions": NO_PINGS}
    if reply_to is not None:
        options.update(reference=reply_to, mention_author=False)
    try:
        return await where.send(text, **options)
    except discord.Forbidden as exc:
        logger.warning(
            "cannot post in %s (%s): grant ActionBot 'View Channel', 'Send Messages' and "
            "'Send Messages in Threads' there",
            channel_name(where),
            exc.text,
        )
    except discord.HTTPException as exc:
        logger.warning("posting in %s failed: %s", channel_name(where), exc)
    return None


async def edit(message: discord.Message | discord.PartialMessage, text: str) -> bool:
    """Replace a message's text without pinging anyone; False when Discord refuses."""
    try:
        await message.edit(content=text, allowed_mentions=NO_PINGS)
        return True
    except discord.HTTPException as exc:
        logger.warning("could not edit a message: %s", exc)
        return False


EDIT_ADVICE = {
    (404, 10008): "the message was deleted",
    (403, 50013): "grant ActionBot 'Send Messages' and 'Send Messages in Threads' there",
    (403, 50001): "grant ActionBot 'View Channel' and 'Read Message History' there",
    (400, 50083): "the thread is archived",
}
"""What a failed edit (Discord's status and error code) means for the operator."""


class EditFailures:
    """Failed edits of status messages, warned about once per cause (Discord's status and
    error code) for the life of one connection; repeats are logged at debug level."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()

    def report(self, exc: discord.HTTPException, where: object) -> None:
        cause = (exc.status, exc.code)
        if cause in self.seen:
            logger.debug(
                "a status message in %s could not be edited again: %s", channel_name(where), exc
            )
            return
        self.seen.add(cause)
        advice = EDIT_ADVICE.get(cause, "Discord refused the edit")
        logger.warning(
            "could not edit a status message in %s (%s): %s; answers go as new messages "
            "instead (warned once per cause)",
            channel_name(where),
            exc,
            advice,
        )


THREAD_NAME_LIMIT = 90


async def open_thread(
    message: discord.Message | discord.PartialMessage, text: str
) -> discord.Thread | None:
    """A public thread on `message`, named after `text`; None when Discord refuses (logged
    with the permissions to grant)."""
    name = text if len(text) <= THREAD_NAME_LIMIT else text[: THREAD_NAME_LIMIT - 1] + "…"
    try:
        return await message.create_thread(name=name)
    except discord.HTTPException as exc:
        logger.warning(
            "could not open a thread in %s (%s): grant ActionBot 'Create Public Threads' "
            "and 'Send Messages in Threads'; answering in the channel instead",
            channel_name(message.channel),
            exc,
        )
        return None


def partial_message(where: Sendable, message_id: int) -> discord.PartialMessage | None:
    """A message of `where` by id, to edit without fetching it."""
    get = getattr(where, "get_partial_message", None)
    return get(message_id) if get is not None else None


def channel_name(where: object) -> str:
    """`#name` of a channel or thread for the logs, or `#id` when it has no name."""
    return f"#{getattr(where, 'name', None) or getattr(where, 'id', '?')}"
