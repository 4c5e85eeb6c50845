"""Turns in progress: the background tasks adapters start, owned and drained in one place.

An adapter acknowledges a platform event quickly and runs the turn in the background. Every
such task is registered here, so nothing is fire-and-forget: shutdown stops new turns, waits
for the running ones within a grace period, and cancels what is left.

Admission: the adapters acknowledge events on the same event loop that runs the turns, and
Slack retries an event not acknowledged within 3 s. So a waiting turn starts only when fewer
than `limit` turns run (`ACTIONBOT_MAX_TURNS`) *and* the loop is keeping up: one pass over its
ready work takes at most `max_lag`. Under a burst, turns then start as fast as the machine
absorbs them and acknowledgements never queue behind hundreds of freshly started turns;
with a slow model, where turns mostly wait on the network, the loop keeps up and nothing is
held back. Waiting turns start in arrival order. Admin commands skip the queue.

Order within a conversation: a turn spawned with an `after` key starts only once the previous
turn spawned with the same key has ended, so the messages of one conversation are answered in
the order they were handed over (`spawn` is synchronous: that is the order of arrival), while
different conversations run side by side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

MAX_LAG_SECONDS = 0.005
"""A waiting turn starts only while one pass of the event loop takes at most this long."""


async def loop_lag() -> float:
    """Seconds the event loop took to come back to us: the ready work queued ahead of us."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(0)
    return loop.time() - started


class Turns:
    """The set of background turns of this process."""

    def __init__(self, *, limit: int | None = None, max_lag: float = MAX_LAG_SECONDS) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._running = asyncio.Semaphore(limit) if limit is not None else None
        self._admission = asyncio.Lock()
        self._max_lag = max_lag
        self._last: dict[str, asyncio.Task[None]] = {}
        self.closing = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(
        self,
        work: Coroutine[Any, Any, None],
        *,
        name: str,
        queued: bool = True,
        after: str | None = None,
    ) -> bool:
        """Run `work` in the background, after the turns ahead of it when `limit` are running
        (`queued=False` starts it at once) and after the last turn spawned with the same
        `after` key; False (and `work` discarded) once closing."""
        if self.closing:
            work.close()
            logger.info("not starting %s: shutting down", name)
            return False
        running = self._running if queued else None
        previous = self._last.get(after) if after is not None else None
        task = asyncio.create_task(self._in_turn(work, running, previous), name=name)
        if after is not None:
            self._last[after] = task
            task.add_done_callback(lambda done: self._forget(after, done))
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._finished)
        return True

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        if self._last.get(key) is task:
            del self._last[key]

    async def _in_turn(
        self,
        work: Coroutine[Any, Any, None],
        running: asyncio.Semaphore | None,
        previous: asyncio.Task[None] | None,
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # however it ended
            if running is not None:
                await self._admit(running)
        except BaseException:
            work.close()  # cancelled while waiting: it never started
            raise
        try:
            await work
        finally:
            if running is not None:
                running.release()

    async def _admit(self, running: asyncio.Semaphore) -> None:
        """Take a running slot once the loop keeps up (see the module docstring)."""
        async with self._admission:  # one admission at a time keeps arrival order
            await running.acquire()
            try:
                # Back off about as long as the loop is behind; lag is measured, not
                # signalled, so there is no event to wait for.
                while (lag := await loop_lag()) > self._max_lag:  # noqa: ASYNC110
                    await asyncio.sleep(lag)
            except BaseException:
                running.release()
                raise

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("%s failed", task.get_name(), exc_info=error)
        if not self._tasks:
            self._idle.set()  # no task of its own to tell waiters: nothing left behind

    async def drain(self) -> None:
        """Wait until no turn is running (including turns started while waiting)."""
        while self._tasks:
            await self._idle.wait()

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
