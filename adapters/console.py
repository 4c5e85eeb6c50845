"""The console adapter: one customer conversation on stdin/stdout.

The simplest complete adapter: read a line, map it to an `IncomingMessage` (or, for lines
starting with `/actions`, an admin command — the local operator is an admin), call the core,
print the answer. Works interactively (with a prompt and progress lines) and piped (exactly
one answer per non-empty input line, exit at end of input). Each line goes through the inbox
like a platform message (so its webhook calls are journaled and keyed), but is answered at
once in the console's own task: a line left unanswered by a crash is not replayed, since
the terminal that asked it is gone.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import TextIO

from bot import wording
from bot.admin.operations import Admin, render_text
from bot.delivery import Inbox
from bot.engine import Engine
from bot.store import InboxEntry
from bot.types import Confirmation, IncomingMessage, Reply

PLATFORM = "console"
ADMIN_PREFIX = "/actions"


async def stdin_lines(prompt: str | None) -> AsyncIterator[str]:
    """Lines from stdin without blocking the event loop; `prompt` shown before each read."""
    while True:
        if prompt:
            sys.stdout.write(prompt)
            sys.stdout.flush()
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        yield line.rstrip("\n")


class ConsoleAdapter:
    """Relays console lines to the engine or to the admin operations."""

    def __init__(
        self,
        *,
        engine: Engine,
        admin: Admin,
        conversation: str,
        out: TextIO,
        interactive: bool,
        inbox: Inbox,
    ) -> None:
        self.engine = engine
        self.inbox = inbox
        self._lines: AsyncIterator[str] | None = None
        self.admin = admin
        self.conversation = conversation
        self.out = out
        self.interactive = interactive

    async def run(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines
        async for line in lines:
            text = line.strip()
            if text:
                self._print(await self.answer(text))

    async def answer(self, text: str) -> str:
        """The reply to one console line."""
        if text.split(maxsplit=1)[0].lower() == ADMIN_PREFIX:
            result = await self.admin.execute(text, actor=f"{PLATFORM}:local")
            return render_text(result)
        message = IncomingMessage(
            platform=PLATFORM,
            conversation=self.conversation,
            user_id="local",
            text=text,
            event_id=uuid.uuid4().hex,
            channel_id="local",
            is_admin=True,  # the local operator runs the bot
        )
        reply = await self.inbox.run_inline(message, self._turn, self._confirm)
        assert reply is not None  # a fresh event id is always new
        return reply.text

    async def _confirm(self, confirmation: Confirmation) -> bool:
        """Ask on the terminal; only `y` or `yes` confirms (end of input declines)."""
        question = wording.confirm_text(confirmation.display_name, confirmation.arguments)
        self.out.write(f"{question} [y/N] ")
        self.out.flush()
        if self._lines is None:
            return False
        line = await anext(self._lines, "")
        return line.strip().lower() in ("y", "yes")

    async def _turn(self, entry: InboxEntry) -> Reply:
        message = entry.message.model_copy(update={"is_admin": True})  # kept messages forget it
        return await self.engine.handle(message, progress=self._progress, resume=entry.progress)

    async def _progress(self, status: str) -> None:
        if self.interactive:
            self._print(f"  ({status})")

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
