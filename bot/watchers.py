"""What an adapter hears while a turn runs: a status line when an action starts
(`Progress`), and each action call as it starts and ends (`CallWatcher`), for a card per
call on the surface. A callback that fails is logged and never fails the turn."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.actions.models import Action
from bot.types import ActionResult, CallUpdate, ToolCall

logger = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]
"""Called with a short status line ("Checking inventory…") when an action starts."""
CallWatcher = Callable[[CallUpdate], Awaitable[None]]
"""Called when an action call starts and when it ends."""


class Watchers:
    """The adapter's callbacks of one turn."""

    def __init__(self, progress: Progress | None, calls: CallWatcher | None) -> None:
        self._progress = progress
        self._calls = calls

    async def status(self, text: str) -> None:
        if self._progress is None:
            return
        try:
            await self._progress(text)
        except Exception:  # a failed status message must not fail the turn
            logger.warning("progress callback failed", exc_info=True)

    async def call(self, call: ToolCall, action: Action, result: ActionResult | None) -> None:
        """A call started (`result` None) or ended."""
        if self._calls is None:
            return
        update = CallUpdate(
            id=call.id,
            action=action.name,
            display_name=action.display_name,
            state="running" if result is None else "done" if result.ok else "failed",
            latency_ms=None if result is None else result.latency_ms,
        )
        try:
            await self._calls(update)
        except Exception:  # a card that could not be shown must not fail the turn
            logger.warning("call watcher failed", exc_info=True)
