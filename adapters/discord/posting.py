"""Posting and editing Discord messages without pinging anyone.

A refusal is logged, with the permission to grant when Discord says which is missing, and never
raised: a turn whose answer cannot be posted ends quietly instead of crashing its task.
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


def channel_name(where: object) -> str:
    """`#name` of a channel or thread for the logs, or `#id` when it has no name."""
    return f"#{getattr(where, 'name', None) or getattr(where, 'id', '?')}"
