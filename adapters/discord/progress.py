"""The "Checking inventory…" note a slow answer shows while the engine works.

The note is posted only when the answer takes longer than a delay, so quick answers arrive
alone, and once posted it is edited into the first piece of the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import discord

from adapters.discord.posting import Sendable, edit, send

PROGRESS_DELAY = 1.5
"""Seconds an answer may take before a "Checking inventory…" note is posted."""


class ProgressNote:
    """A "Checking inventory…" note, posted only if the answer takes longer than `delay`.

    When posted, the note is edited into the first piece of the answer; `on_post` hears of
    it (so a replay can edit the same note). A note posted by an earlier attempt is set as
    `message` and edited the same way.
    """

    def __init__(
        self,
        where: Sendable,
        *,
        delay: float,
        on_post: Callable[[discord.Message], Awaitable[None]] | None = None,
    ) -> None:
        self.where = where
        self.delay = delay
        self.on_post = on_post
        self.message: discord.Message | discord.PartialMessage | None = None
        self.pending: asyncio.Task[None] | None = None
        self.status = ""

    async def show(self, status: str) -> None:
        self.status = status
        if self.message is not None:
            await edit(self.message, f"*{status}*")
        elif self.delay <= 0:
            await self._post()
        elif self.pending is None:
            self.pending = asyncio.create_task(self._post_later(), name="discord progress")

    async def _post_later(self) -> None:
        await asyncio.sleep(self.delay)
        await self._post()

    async def _post(self) -> None:
        posted = await send(self.where, f"*{self.status}*")
        self.message = posted
        if posted is not None and self.on_post is not None:
            await self.on_post(posted)

    async def finish(self, text: str) -> bool:
        """Turn the note into `text`; False when no note was posted (send `text` instead)."""
        if self.pending is not None:
            self.pending.cancel()
            await asyncio.gather(self.pending, return_exceptions=True)
        if self.message is None:
            return False
        return await edit(self.message, text)
