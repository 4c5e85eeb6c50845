"""Capacity for webhook calls: each action's concurrency limit and the shared connections.

Before a call is sent it takes a slot of its action (`max_concurrency` in the actions file)
and then one of the connection pool's slots (`ACTIONBOT_WEBHOOK_CONNECTIONS`). Both waits
together are bounded by the queue timeout (`ACTIONBOT_WEBHOOK_QUEUE_TIMEOUT`); a call that gets
no slots in time raises `Busy` and is never sent. The wait is not charged to the call's own
deadline, which starts once the slots are held.

Because no more calls are in flight than the pool has connections, requests never queue
inside the pool: waiting happens here, where it is bounded, cancellation-safe and measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Busy(Exception):
    """No slot freed up within the queue timeout; the message is safe to show the model."""

    def __init__(self, message: str, *, waited: float) -> None:
        super().__init__(message)
        self.waited = waited


class CallSlots:
    """Per-action and shared slots for webhook calls (see the module docstring)."""

    def __init__(self, *, connections: int, queue_timeout: float) -> None:
        self.connections = connections
        self.queue_timeout = queue_timeout
        self._shared = asyncio.Semaphore(connections)
        self._per_action: dict[str, tuple[int, asyncio.Semaphore]] = {}

    @asynccontextmanager
    async def hold(self, action: str, *, limit: int) -> AsyncIterator[float]:
        """Hold a slot of `action` (at most `limit` at once) and a connection slot while the
        block runs; yields the seconds spent waiting for them. Raises `Busy`."""
        own = self._for_action(action, limit)
        started, waiting_for_connection = time.monotonic(), False
        try:
            async with asyncio.timeout(self.queue_timeout):
                await own.acquire()
                waiting_for_connection = True
                try:
                    await self._shared.acquire()
                except BaseException:
                    own.release()
                    raise
        except TimeoutError:
            waited = time.monotonic() - started
            message = self._busy_message(limit, connections=waiting_for_connection)
            raise Busy(message, waited=waited) from None
        try:
            yield time.monotonic() - started
        finally:
            self._shared.release()
            own.release()

    def _for_action(self, action: str, limit: int) -> asyncio.Semaphore:
        """The action's semaphore; a new one when its limit changed (calls holding the old
        one finish on it)."""
        known = self._per_action.get(action)
        if known is None or known[0] != limit:
            known = (limit, asyncio.Semaphore(limit))
            self._per_action[action] = known
        return known[1]

    def _busy_message(self, limit: int, *, connections: bool) -> str:
        seconds = f"{self.queue_timeout:g} s"
        if not connections:
            return (
                f"the service is busy: {limit} calls to it are already in progress and none "
                f"finished within {seconds}; tell the customer to try again in a moment"
            )
        return (
            f"the service is busy: all {self.connections} outgoing connections were in use "
            f"for {seconds}; tell the customer to try again in a moment"
        )
