"""The status message of a turn: "Checking inventory…" and the action calls, then the answer.

While the engine works, one message shows the status line and, in one embed, every action
call of the turn (⏳ running → ✅ done / ⚠️ failed with its latency; `calls`). It is posted
only when the work takes longer than a delay, so quick answers arrive alone, and edited in
place as calls start and end. Edits are coalesced: one writer task sends them, one at a time
and at most one per `interval`, each showing the latest state, so a burst of calls costs a
few edits, not one per change (Discord rate-limits edits). When the answer is ready the
message is edited into its first piece and the call list is removed: the embed tells what
the bot is doing while the customer waits; the answer is what stays.

If the message cannot be posted or edited (deleted, or a permission taken away), it is
given up: no further edits are tried, and the answer goes out as a new message. The failure
is reported to `EditFailures`, which warns once per cause.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import discord

from adapters.discord.calls import CallList
from adapters.discord.posting import NO_PINGS, EditFailures, Sendable, channel_name
from bot.types import CallUpdate

logger = logging.getLogger(__name__)

PROGRESS_DELAY = 1.5
"""Seconds an answer may take before the status message is posted."""
EDIT_INTERVAL = 1.0
"""Least seconds between two edits of the status message (later changes are merged)."""


class ProgressNote:
    """The status message of one turn, posted only if the work takes longer than `delay`.

    `show` sets the status line and `call` a call's state; both return at once (the writer
    task posts and edits). `on_post` hears of the message when posted (so a replay edits the
    same one). A message posted by an earlier attempt is set as `message` and edited the
    same way. `finish` turns the message into the answer.
    """

    def __init__(
        self,
        where: Sendable,
        *,
        delay: float,
        interval: float = EDIT_INTERVAL,
        failures: EditFailures | None = None,
        on_post: Callable[[discord.Message], Awaitable[None]] | None = None,
    ) -> None:
        self.where = where
        self.delay = delay
        self.interval = interval
        self.failures = failures or EditFailures()
        self.on_post = on_post
        self.message: discord.Message | discord.PartialMessage | None = None
        self.status = ""
        self.calls = CallList()
        self.broken = False
        """Posting or editing failed: the message is left as it is."""
        self._dirty = False
        self._writer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_write: float | None = None

    async def show(self, status: str) -> None:
        """The engine's status line ("Checking inventory…")."""
        self.status = status
        self._changed()

    async def call(self, update: CallUpdate) -> None:
        """A call started or ended."""
        self.calls.update(update)
        self._changed()

    def _changed(self) -> None:
        if self.broken or self._stopping.is_set():
            return
        self._dirty = True
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="discord status message")

    async def _write(self) -> None:
        """Send the latest state until there is no newer one: the first post after `delay`,
        then edits at least `interval` apart."""
        loop = asyncio.get_running_loop()
        if self.message is None:
            wait = self.delay
        elif self._last_write is None:
            wait = 0.0
        else:
            wait = self._last_write + self.interval - loop.time()
        while self._dirty and not self.broken:
            if wait > 0 and await self._stopped_within(wait):
                return
            self._dirty = False
            if self.message is None:
                await self._post()
            else:
                await self._edit(content=self._content(), embeds=self._embeds())
            self._last_write = loop.time()
            wait = self.interval

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True

    def _content(self) -> str:
        return f"*{self.status}*" if self.status else ""

    def _embeds(self) -> list[discord.Embed]:
        embed = self.calls.embed()
        return [embed] if embed is not None else []

    async def _post(self) -> None:
        try:
            posted = await self.where.send(
                self._content() or None, embeds=self._embeds(), allowed_mentions=NO_PINGS
            )
        except discord.HTTPException as exc:
            self.broken = True
            logger.warning(
                "could not post a status message in %s: %s", channel_name(self.where), exc
            )
            return
        self.message = posted
        if self.on_post is not None:
            try:
                await self.on_post(posted)
            except Exception:  # a replay may post a second note; the answer still comes
                logger.exception("could not remember the status message of a turn")

    async def _edit(self, *, content: str, embeds: list[discord.Embed]) -> bool:
        assert self.message is not None
        try:
            await self.message.edit(content=content, embeds=embeds, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            self.broken = True
            self.failures.report(exc, self.where)
            return False
        return True

    async def stop(self) -> None:
        """No more status updates: a pending one is dropped, one being sent is waited for."""
        self._stopping.set()
        if self._writer is None:
            return
        [outcome] = await asyncio.gather(self._writer, return_exceptions=True)
        self._writer = None
        if isinstance(outcome, Exception):  # e.g. the connection dropped: answer anyway
            self.broken = True
            logger.warning("the status message in %s failed: %r", channel_name(self.where), outcome)

    async def finish(self, text: str) -> bool:
        """Turn the message into `text`, without the call list; False when there is no
        message to edit (none was posted, or it was given up): send `text` instead."""
        await self.stop()
        if self.message is None or self.broken:
            return False
        return await self._edit(content=text, embeds=[])
