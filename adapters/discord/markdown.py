"""Discord Markdown from text we do not control: the model's answers, admins' and endpoints'.

The text stays inert. Mentions (`@everyone`, `@here`, users, roles) are escaped with
`discord.utils.escape_mentions` (the adapter also sends with no allowed mentions); backticks
in a code block are kept apart with a zero-width space so they can never close it; and a cut
that would leave a code block open closes it again.
"""

from __future__ import annotations

import re

import discord

FENCE = "```"
CLOSE = "\n" + FENCE
_BACKTICK_RUN = re.compile(r"`(?=`)")


def to_discord_markdown(text: str) -> str:
    """The model's Markdown as Discord message text: Discord reads Markdown as the model
    writes it, so only mentions (`@everyone`, `@here`, users, roles) are neutralised."""
    return discord.utils.escape_mentions(text)


def safe(text: str) -> str:
    """Admin or endpoint text with its mentions escaped; Markdown in it still applies."""
    return discord.utils.escape_mentions(text)


def prose(text: str) -> str:
    """Endpoint-made text (errors) shown as written: Markdown and mentions escaped."""
    return safe(discord.utils.escape_markdown(text))


def inline_code(text: str) -> str:
    """`text` as inline code; a backtick inside would end the span early."""
    return f"`{safe(text).replace('`', 'ˋ')}`"


def code_block(text: str, *, limit: int, language: str = "") -> str:
    """`text` as a code block of at most `limit` characters that nothing inside can close."""
    opening = f"{FENCE}{language}\n"
    return clip(opening + inert(text) + CLOSE, limit)


def inert(text: str) -> str:
    """No two backticks side by side: a zero-width space between them, so no fence forms."""
    return _BACKTICK_RUN.sub("`\u200b", text)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with "…"; a code block cut open is closed again."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if head.count(FENCE) % 2 == 0:
        return head + "…"
    head = text[: limit - 1 - len(CLOSE)]
    return head + "…" + (CLOSE if head.count(FENCE) % 2 else "")
