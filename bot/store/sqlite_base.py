"""The SQLite store's connection handling, shared by its parts: one `sqlite3` connection on
the event loop's thread, single statements run inline, longer work in one transaction that
never awaits (see `sqlite.py` for why)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bot.store.queries import APPEND_MESSAGE, TOUCH_CONVERSATION
from bot.store.rows import to_json as to_json


class Connection:
    """The connection and the clock, with the two ways every operation uses them."""

    def __init__(self, db: sqlite3.Connection, *, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """One read statement. A single statement is its own transaction in autocommit
        mode, so it needs no BEGIN/COMMIT."""
        return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; the block must not await. Writes take the file's write lock up
        front (IMMEDIATE), so they wait on `busy_timeout` rather than fail midway."""
        self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield self._db
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    def _append(
        self,
        db: sqlite3.Connection,
        conversation: str,
        platform: str,
        messages: list[dict[str, Any]],
    ) -> None:
        now = self._clock()
        rows = [(conversation, now, json.dumps(m, ensure_ascii=False)) for m in messages]
        db.execute(TOUCH_CONVERSATION, (conversation, platform, now, now))
        db.executemany(APPEND_MESSAGE, rows)
