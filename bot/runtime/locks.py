"""Per-key asyncio locks that live only while someone holds or waits for them."""

from __future__ import annotations

import asyncio


class KeyedLock:
    """The lock of one key (a conversation), removed from its table when nobody holds it."""

    def __init__(self, key: str, table: dict[str, KeyedLock]) -> None:
        self.key = key
        self.table = table
        self.lock = asyncio.Lock()
        self.users = 0

    @classmethod
    def of(cls, key: str, table: dict[str, KeyedLock]) -> KeyedLock:
        """The lock of `key` in `table`, made when nobody has it."""
        lock = table.get(key)
        if lock is None:
            lock = table[key] = cls(key, table)
        return lock

    async def __aenter__(self) -> None:
        self.users += 1
        try:
            await self.lock.acquire()
        except BaseException:  # cancelled while waiting: this user never held it
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.lock.release()
        self._leave()

    def _leave(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.table.pop(self.key, None)
