"""Turns in progress: the background tasks adapters start, owned and drained in one place.

An adapter acknowledges a platform event quickly and runs the turn in the background. Every
such task is registered here, so nothing is fire-and-forget: shutdown stops new turns, waits
for the running ones within a grace period, and cancels what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class Turns:
    """The set of background turns of this process."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        self.closing = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> bool:
        """Run `work` in the background; False (and `work` discarded) once closing."""
        if self.closing:
            work.close()
            logger.info("not starting %s: shutting down", name)
            return False
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return True

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("%s failed", task.get_name(), exc_info=error)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def drain(self) -> None:
        """Wait until no turn is running (including turns started while waiting)."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self._tasks)

    def refuse_new(self) -> None:
        """From now on `spawn` starts nothing (shutdown has begun)."""
        self.closing = True

    async def close(self, *, grace: float) -> int:
        """Let running turns finish within `grace` seconds, then refuse new ones and cancel
        the rest; returns how many had to be cancelled.

        Adapters stop taking messages at their door before this (`stop_receiving`); a
        message already past the door may still start its turn during the grace period.
        """
        try:
            async with asyncio.timeout(grace):
                await self.drain()
            self.refuse_new()
            return 0
        except TimeoutError:
            self.refuse_new()
            left = list(self._tasks)
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            logger.warning("cancelled %d turns still running after %.0f s", len(left), grace)
            return len(left)
