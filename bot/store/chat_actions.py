"""Actions made in chat (`bot.store.ChatActions`) on both backends: the SQL they share, and
one small class per backend that the stores inherit."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from bot.store import ChatAction
from bot.store.postgres_turns import numbered
from bot.store.sqlite_base import Connection

SELECT = (
    "SELECT name, definition, updated_by, updated_at FROM chat_actions ORDER BY created_at, name"
)
UPSERT = """
INSERT INTO chat_actions (name, definition, created_by, created_at, updated_by, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,
    updated_by = excluded.updated_by, updated_at = excluded.updated_at
"""
CREATED = "SELECT created_by, created_at FROM chat_actions WHERE name = ?"
DELETE = "DELETE FROM chat_actions WHERE name = ?"


def _row(row: Sequence[Any]) -> ChatAction:
    name, definition, by, at = row
    return ChatAction(name=name, definition=json.loads(definition), updated_by=by, updated_at=at)


class SQLiteChatActions(Connection):
    async def chat_actions(self) -> list[ChatAction]:
        return [_row(row) for row in self._read(SELECT)]

    async def save_chat_action(
        self, name: str, definition: dict[str, Any], *, actor: str, previous: str | None = None
    ) -> None:
        now = self._clock()
        with self._transaction(write=True) as db:
            created = (actor, now)
            if previous is not None:  # an edit keeps who made the action and when
                found = db.execute(CREATED, (previous,)).fetchone()
                created = tuple(found) if found else created
                if previous != name:
                    db.execute(DELETE, (previous,))
            text = json.dumps(definition, ensure_ascii=False)
            db.execute(UPSERT, (name, text, created[0], created[1], actor, now))

    async def delete_chat_action(self, name: str) -> bool:
        with self._transaction(write=True) as db:
            return db.execute(DELETE, (name,)).rowcount == 1


class PostgresChatActions:
    _pool: asyncpg.Pool
    _clock: Callable[[], float]

    async def chat_actions(self) -> list[ChatAction]:
        return [_row(tuple(row)) for row in await self._pool.fetch(SELECT)]

    async def save_chat_action(
        self, name: str, definition: dict[str, Any], *, actor: str, previous: str | None = None
    ) -> None:
        now = self._clock()
        async with self._pool.acquire() as db, db.transaction():
            created: tuple[Any, ...] = (actor, now)
            if previous is not None:
                found = await db.fetchrow(numbered(CREATED), previous)
                created = tuple(found) if found else created
                if previous != name:
                    await db.execute(numbered(DELETE), previous)
            text = json.dumps(definition, ensure_ascii=False)
            await db.execute(numbered(UPSERT), name, text, created[0], created[1], actor, now)

    async def delete_chat_action(self, name: str) -> bool:
        status = await self._pool.execute(numbered(DELETE), name)
        return str(status).endswith(" 1")
