"""Handoffs to a person and the last hours of calls, on both backends (`bot.store.Handoffs`,
`bot.store.RecentCalls`): the SQL they share, and one small class per backend that the
stores inherit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from bot.store import RecentActivity
from bot.store.postgres_turns import numbered
from bot.store.sqlite_base import Connection

HOUR = 3600.0

START_HANDOFF = """
INSERT INTO handoffs (event_key, conversation, platform, started_at, until)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING
"""
HANDED_OFF = """
SELECT MAX(until) FROM handoffs WHERE conversation = ? AND ended_at IS NULL AND until > ?
"""
END_HANDOFFS = """
UPDATE handoffs SET ended_at = ?, ended_by = ?
WHERE ended_at IS NULL AND until > ?
  AND (conversation = ? OR substr(conversation, 1, ?) = ?)
RETURNING conversation
"""
HANDOFF_COUNTS = """
SELECT COUNT(*), COALESCE(SUM(CASE WHEN ended_at IS NULL AND until > ? THEN 1 ELSE 0 END), 0)
FROM handoffs
"""

# (action, hour index from the window's start, outcome, calls)
SQLITE_HOURLY = """
SELECT action, CAST((recorded_at - ?) / 3600 AS INTEGER) AS hour, outcome, COUNT(*)
FROM calls WHERE recorded_at >= ? AND (? IS NULL OR action = ?)
GROUP BY action, hour, outcome
"""
# Nearest rank, as `percentile_disc(0.95)`: the latency at rank ceil(0.95 n).
SQLITE_P95 = """
SELECT action, latency_ms FROM (
    SELECT action, latency_ms,
           ROW_NUMBER() OVER (PARTITION BY action ORDER BY latency_ms) AS r,
           COUNT(*) OVER (PARTITION BY action) AS n
    FROM calls WHERE recorded_at >= ? AND (? IS NULL OR action = ?)
) WHERE r = (95 * n + 99) / 100
"""
POSTGRES_HOURLY = """
SELECT action, floor((recorded_at - $1) / 3600)::int AS hour, outcome, COUNT(*)
FROM calls WHERE recorded_at >= $1 AND ($2::text IS NULL OR action = $2)
GROUP BY action, hour, outcome
"""
POSTGRES_P95 = """
SELECT action, percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms)
FROM calls WHERE recorded_at >= $1 AND ($2::text IS NULL OR action = $2)
GROUP BY action
"""


def end_parameters(where: str, *, by: str, now: float) -> tuple[Any, ...]:
    """`END_HANDOFFS`' parameters: `where` itself, or anything under `where:`."""
    under = f"{where}:"
    return (now, by, now, where, len(under), under)


def build_recent(
    hourly: Sequence[Sequence[Any]], p95: Sequence[Sequence[Any]], hours: int
) -> dict[str, RecentActivity]:
    """Each action's `RecentActivity` from the hourly rows and the p95 rows."""
    counts: defaultdict[str, list[int]] = defaultdict(lambda: [0] * hours)
    outcomes: defaultdict[str, dict[str, int]] = defaultdict(dict)
    for action, hour, outcome, calls in hourly:
        counts[action][min(max(int(hour), 0), hours - 1)] += int(calls)
        outcomes[action][str(outcome)] = outcomes[action].get(str(outcome), 0) + int(calls)
    latency = {str(action): float(value) for action, value in p95 if value is not None}
    return {
        action: RecentActivity(
            action=action,
            hourly=counts[action],
            outcomes=dict(sorted(outcomes[action].items())),
            p95_latency_ms=latency.get(action),
        )
        for action in sorted(counts)
    }


class SQLiteHandoffs(Connection):
    """`Handoffs` and `RecentCalls` on the SQLite connection."""

    async def start_handoff(
        self, event_key: str, *, conversation: str, platform: str, seconds: float
    ) -> bool:
        now = self._clock()
        with self._transaction(write=True) as db:
            cursor = db.execute(
                START_HANDOFF, (event_key, conversation, platform, now, now + seconds)
            )
            return cursor.rowcount == 1

    async def handed_off(self, conversation: str) -> float | None:
        [(until,)] = self._read(HANDED_OFF, (conversation, self._clock()))
        return None if until is None else float(until)

    async def end_handoffs(self, where: str, *, by: str) -> list[str]:
        with self._transaction(write=True) as db:
            rows = db.execute(END_HANDOFFS, end_parameters(where, by=by, now=self._clock()))
            return sorted({str(row[0]) for row in rows.fetchall()})

    async def handoff_counts(self) -> tuple[int, int]:
        [(total, open_now)] = self._read(HANDOFF_COUNTS, (self._clock(),))
        return int(total), int(open_now)

    async def recent_activity(
        self, *, hours: int = 24, name: str | None = None
    ) -> dict[str, RecentActivity]:
        since = self._clock() - hours * HOUR
        with self._transaction() as db:
            hourly = db.execute(SQLITE_HOURLY, (since, since, name, name)).fetchall()
            p95 = db.execute(SQLITE_P95, (since, name, name)).fetchall()
        return build_recent(hourly, p95, hours)


class PostgresHandoffs:
    """`Handoffs` and `RecentCalls` over the PostgreSQL store's pool."""

    _pool: asyncpg.Pool
    _clock: Callable[[], float]

    async def start_handoff(
        self, event_key: str, *, conversation: str, platform: str, seconds: float
    ) -> bool:
        now = self._clock()
        status = await self._pool.execute(
            numbered(START_HANDOFF), event_key, conversation, platform, now, now + seconds
        )
        return str(status).endswith(" 1")

    async def handed_off(self, conversation: str) -> float | None:
        until = await self._pool.fetchval(numbered(HANDED_OFF), conversation, self._clock())
        return None if until is None else float(until)

    async def end_handoffs(self, where: str, *, by: str) -> list[str]:
        rows = await self._pool.fetch(
            numbered(END_HANDOFFS), *end_parameters(where, by=by, now=self._clock())
        )
        return sorted({str(row[0]) for row in rows})

    async def handoff_counts(self) -> tuple[int, int]:
        row = await self._pool.fetchrow(numbered(HANDOFF_COUNTS), self._clock())
        assert row is not None  # an aggregate always has its row
        return int(row[0]), int(row[1])

    async def recent_activity(
        self, *, hours: int = 24, name: str | None = None
    ) -> dict[str, RecentActivity]:
        since = self._clock() - hours * HOUR
        async with self._pool.acquire() as db, db.transaction(isolation="repeatable_read"):
            hourly = await db.fetch(POSTGRES_HOURLY, since, name)
            p95 = await db.fetch(POSTGRES_P95, since, name)
        return build_recent([tuple(r) for r in hourly], [tuple(r) for r in p95], hours)
