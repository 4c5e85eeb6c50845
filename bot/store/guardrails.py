"""The guardrails' roles (`bot.store.AuditLog`, `bot.store.ActionModes`) on both backends: the
SQL they share, and one small class per backend that the stores inherit.

An audit page is a keyset read: `id > after_id … ORDER BY id LIMIT n`, so each page costs
the same however far the export has got, and rows recorded meanwhile are picked up at the
end rather than shifting pages. With `action` it walks the index on `calls(action, id)`;
otherwise the primary key. `since` only filters the rows so walked: an index on
`recorded_at` would have to read (and sort) every row since then for each page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from bot.store import AuditRow, BreakerRecord
from bot.store.postgres_turns import numbered
from bot.store.rows import AUDIT_COLUMNS, audit_row, utc, utc_or_none
from bot.store.sqlite_base import Connection

SET_DRY_RUN = """
INSERT INTO action_modes (action, dry_run, changed_by, changed_at) VALUES (?, ?, ?, ?)
ON CONFLICT (action) DO UPDATE SET
    dry_run = excluded.dry_run, changed_by = excluded.changed_by, changed_at = excluded.changed_at
"""
SELECT_MODES = "SELECT action, dry_run FROM action_modes"
SAVE_BREAKER = """
INSERT INTO action_breakers (action, state, failures, open_until, changed_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (action) DO UPDATE SET state = excluded.state, failures = excluded.failures,
    open_until = excluded.open_until, changed_at = excluded.changed_at
"""
SELECT_BREAKERS = "SELECT action, state, failures, open_until, changed_at FROM action_breakers"
RECENT_CALLS = f"SELECT {AUDIT_COLUMNS} FROM calls WHERE action = ? ORDER BY id DESC LIMIT ?"  # noqa: S608


def audit_query(
    *, after_id: int, since: float | None, action: str | None, limit: int, unindexed: str
) -> tuple[str, list[Any]]:
    """The SQL of one audit page (with `?` placeholders) and its parameters. `unindexed` is
    the backend's way of writing `recorded_at` so that no index on it is used."""
    where = ["id > ?"]
    params: list[Any] = [after_id]
    if action is not None:
        where.append("action = ?")
        params.append(action)
    if since is not None:
        where.append(f"{unindexed} >= ?")
        params.append(since)
    sql = f"SELECT {AUDIT_COLUMNS} FROM calls WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"  # noqa: S608
    return sql, [*params, limit]


def _breakers(rows: Sequence[Sequence[Any]]) -> dict[str, BreakerRecord]:
    return {
        str(action): BreakerRecord(
            state=state,
            failures=int(failures),
            open_until=utc_or_none(open_until),
            changed_at=utc(changed_at),
        )
        for action, state, failures, open_until, changed_at in rows
    }


class SQLiteGuardrails(Connection):
    async def audit_page(
        self,
        *,
        after_id: int = 0,
        since: float | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditRow]:
        sql, params = audit_query(
            after_id=after_id, since=since, action=action, limit=limit, unindexed="+recorded_at"
        )
        return [audit_row(row) for row in self._read(sql, params)]

    async def recent_calls(self, action: str, *, limit: int = 10) -> list[AuditRow]:
        return [audit_row(row) for row in self._read(RECENT_CALLS, (action, limit))]

    async def set_dry_run(self, name: str, on: bool, *, actor: str) -> None:
        with self._transaction(write=True) as db:
            db.execute(SET_DRY_RUN, (name, int(on), actor, self._clock()))

    async def action_modes(self) -> dict[str, bool]:
        return {str(name): bool(on) for name, on in self._read(SELECT_MODES)}

    async def save_breaker(
        self, name: str, state: str, *, failures: int, open_until: float | None
    ) -> None:
        with self._transaction(write=True) as db:
            db.execute(SAVE_BREAKER, (name, state, failures, open_until, self._clock()))

    async def breakers(self) -> dict[str, BreakerRecord]:
        return _breakers(self._read(SELECT_BREAKERS))


class PostgresGuardrails:
    _pool: asyncpg.Pool
    _clock: Callable[[], float]

    async def audit_page(
        self,
        *,
        after_id: int = 0,
        since: float | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditRow]:
        sql, params = audit_query(
            after_id=after_id, since=since, action=action, limit=limit, unindexed="recorded_at + 0"
        )
        return [audit_row(tuple(row)) for row in await self._pool.fetch(numbered(sql), *params)]

    async def recent_calls(self, action: str, *, limit: int = 10) -> list[AuditRow]:
        rows = await self._pool.fetch(_RECENT_CALLS, action, limit)
        return [audit_row(tuple(row)) for row in rows]

    async def set_dry_run(self, name: str, on: bool, *, actor: str) -> None:
        await self._pool.execute(_SET_DRY_RUN, name, on, actor, self._clock())

    async def action_modes(self) -> dict[str, bool]:
        return {str(name): bool(on) for name, on in await self._pool.fetch(SELECT_MODES)}

    async def save_breaker(
        self, name: str, state: str, *, failures: int, open_until: float | None
    ) -> None:
        await self._pool.execute(_SAVE_BREAKER, name, state, failures, open_until, self._clock())

    async def breakers(self) -> dict[str, BreakerRecord]:
        return _breakers([tuple(row) for row in await self._pool.fetch(SELECT_BREAKERS)])


_RECENT_CALLS = numbered(RECENT_CALLS)
_SET_DRY_RUN = numbered(SET_DRY_RUN)
_SAVE_BREAKER = numbered(SAVE_BREAKER)
