"""The PostgreSQL store, for several replicas sharing one database: every role of
`bot.store` over an asyncpg pool. The inbox, confirmations and turn journal are in
`postgres_turns.py`; connecting and migrating in `postgres_connect.py`; the schema is in
`pg_migrations/`.

Each operation is one statement where it can be (a data-modifying `WITH` does the work of a
transaction in one round trip) and otherwise one transaction. Counters stay exact under
concurrency because a trigger upserts the aggregates of each recorded call in the same
statement (`INSERT … ON CONFLICT`, row locks, no read-modify-write). p95 latency is
`percentile_disc(0.95)` over each action's most recent `P95_WINDOW` calls, read through the
index on `calls(action, id)`.

Migrations run in one transaction under `pg_advisory_xact_lock`, so replicas that start
together apply them once: the others wait for the lock, then find nothing left to do. Times
are Unix seconds from the store's clock, as in the SQLite store.

The database URL's password never reaches a log or an error: errors name host and port.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import asyncpg

from bot.store import ActionState, ActionStats
from bot.store.chat_actions import PostgresChatActions
from bot.store.guardrails import PostgresGuardrails
from bot.store.handoffs import PostgresHandoffs
from bot.store.postgres_connect import connect, describe, migrate
from bot.store.postgres_turns import PostgresTurnRows, numbered, row_count
from bot.store.queries import DEFER, EARLIER_PENDING, HOLD_LEASE
from bot.store.rows import P95_WINDOW, build_stats, caller_fields, short_error, to_json, utc
from bot.types import ActionResult

logger = logging.getLogger(__name__)

PING_TIMEOUT = 2.0
"""Seconds `/readyz` waits for the database to answer."""

RECORD_CALL = """
WITH journaled AS (
    UPDATE journal SET result = $11, finished_at = $5
    WHERE event_key = $12 AND idempotency_key = $2 AND result IS NULL
)
INSERT INTO calls (action, call_id, conversation, started_at, recorded_at, latency_ms,
                   outcome, status, error, attempts, platform, team, user_id, channel,
                   arguments)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13, $14, $15, $16, $17)
"""

APPEND = """
WITH conversation AS (
    INSERT INTO conversations (key, platform, created_at, updated_at) VALUES ($1, $2, $3, $3)
    ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING key
)
INSERT INTO messages (conversation, created_at, payload)
SELECT conversation.key, $3, payload
FROM conversation, unnest($4::text[]) WITH ORDINALITY AS m(payload, n) ORDER BY n
"""

# A turn's inputs in one round trip: message rows carry their id (to sort by); toggle rows
# a NULL id, dry-run overrides a NULL id and their `dry_run` (never NULL) last.
TURN_INPUTS = """
SELECT id, payload, NULL::boolean, NULL::text, NULL::float8, NULL::boolean FROM (
    SELECT id, payload FROM messages WHERE conversation = $1 ORDER BY id DESC LIMIT $2
) AS recent
UNION ALL
SELECT NULL::bigint, action, active, changed_by, changed_at, NULL::boolean FROM action_state
UNION ALL
SELECT NULL::bigint, action, NULL::boolean, NULL::text, NULL::float8, dry_run
FROM action_modes
"""

TOTALS = """
SELECT action, outcome, calls, latency_ms, attempts FROM call_totals
WHERE $1::text IS NULL OR action = $1
"""
ACTIVITY = """
SELECT action, last_call_at, last_error, last_error_at FROM action_activity
WHERE $1::text IS NULL OR action = $1
"""

P95 = """
SELECT wanted.action, (
    SELECT percentile_disc(0.95) WITHIN GROUP (ORDER BY recent.latency_ms)
    FROM (SELECT latency_ms FROM calls WHERE calls.action = wanted.action
          ORDER BY id DESC LIMIT $2) AS recent
)
FROM unnest($1::text[]) AS wanted(action)
"""


class PostgresStore(PostgresTurnRows, PostgresHandoffs, PostgresChatActions, PostgresGuardrails):
    """The bot's database on a PostgreSQL server. Create with
    `await PostgresStore.open(url, min_size=…, max_size=…)`; close with `close()`."""

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> PostgresStore:
        """Connect a pool to `url` and bring the schema up to date. Raises `DatabaseError`
        naming host and port (never the password) when the server cannot be used."""
        where = describe(url)
        pool, inbox = await connect(url, min_size=min_size, max_size=max_size)
        store = cls(pool, clock=clock, inbox=inbox)
        try:
            await migrate(pool, where=where, clock=clock)
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Close the pools' connections."""
        await self._inbox.close()
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> bool:
        """True when the database answers a query within `PING_TIMEOUT` (readiness); the
        pool replaces broken connections, so this recovers without a restart."""
        try:
            async with asyncio.timeout(PING_TIMEOUT):  # a connection and the query, both
                answer = await self._inbox.fetchval("SELECT 1")  # not behind busy turns
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return bool(answer == 1)

    # -- action state --------------------------------------------------------------------

    async def action_states(self) -> dict[str, ActionState]:
        """Every action an admin has toggled, by name (read on every turn, so a toggle on
        one replica holds on all of them from their next turn)."""
        rows = await self._pool.fetch(
            "SELECT action, active, changed_by, changed_at FROM action_state"
        )
        return {
            name: ActionState(active=active, changed_by=actor, changed_at=utc(at))
            for name, active, actor, at in rows
        }

    async def set_active(self, name: str, active: bool, *, actor: str) -> None:
        """Record that `actor` turned action `name` on or off, now."""
        await self._pool.execute(
            "INSERT INTO action_state (action, active, changed_by, changed_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (action) DO UPDATE SET "
            "active = excluded.active, changed_by = excluded.changed_by, "
            "changed_at = excluded.changed_at",
            name,
            active,
            actor,
            self._clock(),
        )

    async def turn_inputs(
        self, conversation: str, *, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, ActionState], dict[str, bool]]:
        """The conversation's newest messages, every toggle and every dry-run override:
        one query."""
        rows = await self._pool.fetch(TURN_INPUTS, conversation, limit)
        recent = sorted((row[0], row[1]) for row in rows if row[0] is not None)
        settings = [row[1:] for row in rows if row[0] is None]
        states = {
            action: ActionState(active=active, changed_by=actor, changed_at=utc(at))
            for action, active, actor, at, dry_run in settings
            if dry_run is None
        }
        modes = {action: bool(dry_run) for action, *_, dry_run in settings if dry_run is not None}
        return [_loads(payload) for _, payload in recent], states, modes

    # -- call log and stats --------------------------------------------------------------

    async def record_call(
        self,
        result: ActionResult,
        *,
        conversation: str | None = None,
        event_key: str | None = None,
        caller: str = "",
        arguments: str | None = None,
    ) -> None:
        """Store one webhook call with who asked and its arguments (the trigger adds it
        to the aggregates) and, with `event_key`, its journal row's result: one statement."""
        now = self._clock()
        await self._pool.execute(
            RECORD_CALL,
            result.action,
            result.call_id,
            conversation,
            now - result.latency_ms / 1000,
            now,
            result.latency_ms,
            result.outcome.value,
            result.status,
            short_error(result.error),
            result.attempts,
            result.model_dump_json(),
            event_key,
            *caller_fields(caller),
            arguments,
        )

    async def prune_calls(self, older_than_seconds: float) -> int:
        """Delete call rows recorded longer ago (the totals go on counting them)."""
        status = await self._pool.execute(
            "DELETE FROM calls WHERE recorded_at < $1", self._clock() - older_than_seconds
        )
        return row_count(status)

    async def stats(self, name: str | None = None) -> list[ActionStats]:
        """Stats for action `name` (a zero row if it has no calls), or for every action with
        calls, sorted by name: three queries in one snapshot, however many actions."""
        async with self._pool.acquire() as db, db.transaction(isolation="repeatable_read"):
            totals = await db.fetch(TOTALS, name)
            activity = await db.fetch(ACTIVITY, name)
            names = [name] if name is not None else sorted({row[0] for row in totals})
            p95_rows = await db.fetch(P95, names, P95_WINDOW) if names else []
        by_totals = _group(totals)
        by_activity = _group(activity)
        p95 = {action: value for action, value in p95_rows if value is not None}
        return [
            build_stats(
                a, totals=by_totals.get(a, []), activity=by_activity.get(a, []), p95=p95.get(a)
            )
            for a in names
        ]

    async def call_totals(self) -> list[tuple[str, str, int]]:
        """(action, outcome, calls) for every pair with calls, from the aggregates."""
        rows = await self._pool.fetch(
            "SELECT action, outcome, calls FROM call_totals ORDER BY action, outcome"
        )
        return [(str(a), str(o), int(c)) for a, o, c in rows]

    async def call_counts(self) -> dict[str, int]:
        """Total calls per action that has any, from the aggregates."""
        rows = await self._pool.fetch("SELECT action, SUM(calls) FROM call_totals GROUP BY action")
        return {action: int(count) for action, count in rows}

    # -- conversations -------------------------------------------------------------------

    async def load_messages(self, conversation: str, *, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` messages of a conversation, oldest first."""
        rows = await self._pool.fetch(
            "SELECT payload FROM messages WHERE conversation = $1 ORDER BY id DESC LIMIT $2",
            conversation,
            limit,
        )
        return [_loads(payload) for (payload,) in reversed(rows)]

    async def append_messages(
        self, conversation: str, *, platform: str, messages: list[dict[str, Any]]
    ) -> None:
        """Add one turn's messages to a conversation: one statement."""
        payloads = [to_json(m) for m in messages]
        await self._pool.execute(APPEND, conversation, platform, self._clock(), payloads)

    async def has_conversation(self, conversation: str) -> bool:
        """Whether the bot has taken part in this conversation (and it was not pruned)."""
        found = await self._pool.fetchval(
            "SELECT 1 FROM conversations WHERE key = $1", conversation
        )
        return found is not None

    async def prune_conversations(self, older_than_seconds: float) -> int:
        """Delete conversations idle for longer (their messages go with them)."""
        status = await self._pool.execute(
            "DELETE FROM conversations WHERE updated_at < $1",
            self._clock() - older_than_seconds,
        )
        return row_count(status)

    async def active_conversations(self, within_seconds: float) -> int:
        """How many conversations had a message in the last `within_seconds`."""
        found = await self._pool.fetchval(
            "SELECT COUNT(*) FROM conversations WHERE updated_at >= $1",
            self._clock() - within_seconds,
        )
        return int(found)

    # -- model checks and leases ---------------------------------------------------------

    async def record_model_check(self, endpoint: str, model: str, *, native_tools: bool) -> None:
        """Remember whether `model` at `endpoint` calls tools natively."""
        await self._pool.execute(
            "INSERT INTO model_checks (endpoint, model, native_tools, checked_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (endpoint, model) DO UPDATE SET "
            "native_tools = excluded.native_tools, checked_at = excluded.checked_at",
            endpoint,
            model,
            native_tools,
            self._clock(),
        )

    async def native_tools(self, endpoint: str, model: str) -> bool | None:
        """What the last check found; None if never checked."""
        found = await self._pool.fetchval(
            "SELECT native_tools FROM model_checks WHERE endpoint = $1 AND model = $2",
            endpoint,
            model,
        )
        return None if found is None else bool(found)

    async def hold_lease(self, name: str, *, owner: str, seconds: float) -> bool:
        """Take or extend lease `name`; False while another owner holds it."""
        now = self._clock()
        found = await self._pool.fetchval(_HOLD_LEASE, name, owner, now + seconds, now)
        return found is not None

    async def drop_lease(self, name: str, *, owner: str) -> None:
        """Give up lease `name` if `owner` holds it."""
        await self._pool.execute("DELETE FROM leases WHERE name = $1 AND owner = $2", name, owner)

    async def lease_holder(self, name: str) -> str | None:
        """Who holds lease `name` now; None if nobody."""
        found = await self._pool.fetchval(
            "SELECT owner FROM leases WHERE name = $1 AND until > $2", name, self._clock()
        )
        return None if found is None else str(found)

    async def prune_leases(self, older_than_seconds: float) -> int:
        """Delete leases that expired longer ago; returns how many."""
        status = await self._pool.execute(
            "DELETE FROM leases WHERE until < $1", self._clock() - older_than_seconds
        )
        return row_count(status)

    async def earlier_pending(self, key: str) -> list[tuple[str, str | None]]:
        """Earlier pending messages of `key`'s conversation, not waiting for a click."""
        rows = await self._pool.fetch(_EARLIER_PENDING, self._clock(), key)
        return [(str(found), None if holder is None else str(holder)) for found, holder in rows]

    async def defer(self, key: str, *, owner: str) -> None:
        """Leave a pending message `owner` holds for a moment without using up an attempt."""
        await self._pool.execute(_DEFER, key, owner)


_HOLD_LEASE = numbered(HOLD_LEASE)
_EARLIER_PENDING = numbered(EARLIER_PENDING)
_DEFER = numbered(DEFER)


def _group(rows: list[Any]) -> dict[str, list[tuple[Any, ...]]]:
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for action, *rest in rows:
        grouped.setdefault(str(action), []).append(tuple(rest))
    return grouped


def _loads(payload: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(payload)
    return loaded
