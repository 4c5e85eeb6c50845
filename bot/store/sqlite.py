"""The SQLite store: migrations, admin action state, the call log with stats, conversations;
the inbox, confirmations and turn journal are in `sqlite_turns.py`, the connection handling
in `sqlite_base.py`.

One `sqlite3` connection, used from the event loop's own thread: every operation runs its
statements inline, a single read as its own implicit transaction, anything longer as one
explicit transaction, and never yields to the loop in between, so operations cannot
interleave and need no lock. Each statement takes well under a millisecond on a local file
(WAL, `synchronous = NORMAL`: a commit does not wait for the disk). Handing them to a worker
thread instead (as aiosqlite does) costs two GIL handoffs per statement, about 5 ms each
while turns keep the loop busy: under a burst of Slack events that made every
acknowledgement wait ~15 ms for its one insert, and capped turns at the rate the store could
serialise them. Another process (the CLI) may open the same file while the bot runs: WAL lets
readers and the writer proceed side by side, and `busy_timeout` makes a second writer wait
(briefly: the CLI's writes are single statements) instead of failing.

Stats stay fast with millions of call rows because a trigger on each recorded call updates the
aggregate tables (counts and total latency per action and outcome, last call and last error per
action) in the same statement as the call row, so they are also exact under concurrency. The
one number not taken from aggregates is p95 latency: it is computed over the most recent
`P95_WINDOW` calls of the action (read from the index on `calls(action, id, …)`), so it
describes recent behaviour.

Schema changes are SQL files in `migrations/` (see `queries.py`); each is applied once,
in order, in its own transaction, and recorded in `schema_migrations`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bot.errors import ConfigError, DatabaseError
from bot.store import ActionState, ActionStats
from bot.store.chat_actions import SQLiteChatActions
from bot.store.guardrails import SQLiteGuardrails
from bot.store.handoffs import SQLiteHandoffs
from bot.store.queries import (
    ACTIVITY_BY_ACTION,
    CREATE_MIGRATIONS_TABLE,
    INSERT_CALL,
    JOURNAL_RESULT,
    MAX_COMPOUND_SELECTS,
    MIGRATIONS,
    NEAREST_RANK_P95,
    PRAGMAS,
    RECORD_MODEL_CHECK,
    SET_ACTIVE,
    TOTALS_BY_ACTION,
)
from bot.store.rows import P95_WINDOW, build_stats, caller_fields, short_error, utc
from bot.store.sqlite_turns import TurnRows
from bot.types import ActionResult

logger = logging.getLogger(__name__)


class SQLiteStore(TurnRows, SQLiteHandoffs, SQLiteChatActions, SQLiteGuardrails):
    """The bot's database in one SQLite file: every role of `bot.store`. Create with
    `await SQLiteStore.open(path)`; close with `close()` or use it as
    `async with await SQLiteStore.open(path) as store`."""

    @classmethod
    async def open(cls, path: Path, *, clock: Callable[[], float] = time.time) -> SQLiteStore:
        """Open (creating it if needed) the database at `path` and bring its schema up to date.

        Raises `ConfigError` when the file is not a usable database or was written by a newer
        ActionBot.
        """
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"Cannot open the database {path}: {exc}") from exc
        store = cls(db, clock=clock)
        try:
            store._configure(path)
            store._migrate(path)
        except sqlite3.DatabaseError as exc:  # damaged ("not a database") or locked
            db.close()
            raise DatabaseError(f"Cannot use the database {path}: {exc}") from exc
        except BaseException:
            db.close()
            raise
        return store

    async def close(self) -> None:
        """Close the connection (no operation is ever in progress between awaits)."""
        self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- action state --------------------------------------------------------------------

    async def action_states(self) -> dict[str, ActionState]:
        """Every action an admin has toggled, by name."""
        sql = "SELECT action, active, changed_by, changed_at FROM action_state"
        rows = self._read(sql)
        return {
            name: ActionState(active=bool(active), changed_by=actor, changed_at=utc(at))
            for name, active, actor, at in rows
        }

    async def set_active(self, name: str, active: bool, *, actor: str) -> None:
        """Record that `actor` turned action `name` on or off, now (the admin operation logs
        it, once)."""
        with self._transaction(write=True) as db:
            db.execute(SET_ACTIVE, (name, int(active), actor, self._clock()))

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
        """Store one webhook call with who asked and its arguments; a trigger adds it to
        its action's aggregates in the same statement. With `event_key`, the journal row of
        the call gets the result in the same transaction, so a replay never sees a call
        counted but not journaled."""
        now = self._clock()
        platform, team, user_id, channel = caller_fields(caller)
        params: dict[str, Any] = {
            "action": result.action,
            "call_id": result.call_id,
            "conversation": conversation,
            "started_at": now - result.latency_ms / 1000,
            "now": now,
            "latency_ms": result.latency_ms,
            "outcome": result.outcome.value,
            "status": result.status,
            "error": short_error(result.error),
            "attempts": result.attempts,
            "platform": platform,
            "team": team,
            "user_id": user_id,
            "channel": channel,
            "arguments": arguments,
        }
        if event_key is None:
            self._db.execute(INSERT_CALL, params)
            return
        with self._transaction(write=True) as db:
            db.execute(INSERT_CALL, params)
            recorded = result.model_dump_json()
            db.execute(JOURNAL_RESULT, (recorded, now, event_key, result.call_id))

    async def prune_calls(self, older_than_seconds: float) -> int:
        """Delete call rows recorded more than `older_than_seconds` ago (the totals, kept by
        the trigger, go on counting them; p95 reads the rows that remain)."""
        sql = "DELETE FROM calls WHERE recorded_at < ?"
        with self._transaction(write=True) as db:
            return db.execute(sql, (self._clock() - older_than_seconds,)).rowcount

    async def stats(self, name: str | None = None) -> list[ActionStats]:
        """Stats for action `name` (a zero row if it has no calls), or for every action with
        calls, sorted by name. A constant number of queries, however many actions there are."""
        with self._transaction() as db:
            totals = _by_action(db, TOTALS_BY_ACTION, name)
            activity = _by_action(db, ACTIVITY_BY_ACTION, name)
            names = [name] if name is not None else sorted(totals)
            calls = {a: sum(int(row[1]) for row in totals.get(a, [])) for a in names}
            p95 = _p95_by_action(db, calls)
        return [
            build_stats(a, totals=totals.get(a, []), activity=activity.get(a, []), p95=p95.get(a))
            for a in names
        ]

    async def call_totals(self) -> list[tuple[str, str, int]]:
        """(action, outcome, calls) for every pair with calls, from the aggregates."""
        sql = "SELECT action, outcome, calls FROM call_totals ORDER BY action, outcome"
        rows = self._read(sql)
        return [(str(a), str(o), int(c)) for a, o, c in rows]

    async def call_counts(self) -> dict[str, int]:
        """Total calls per action that has any, from the aggregates (cheap)."""
        sql = "SELECT action, SUM(calls) FROM call_totals GROUP BY action"
        rows = self._read(sql)
        return {action: int(count) for action, count in rows}

    async def turn_inputs(
        self, conversation: str, *, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, ActionState], dict[str, bool]]:
        """The conversation's newest messages, every toggle and every dry-run override
        (three reads in-process)."""
        history = await self.load_messages(conversation, limit=limit)
        return history, await self.action_states(), await self.action_modes()

    # -- conversations -------------------------------------------------------------------

    async def load_messages(self, conversation: str, *, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` messages of a conversation, oldest first."""
        sql = "SELECT payload FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?"
        rows = self._read(sql, (conversation, limit))
        return [json.loads(payload) for (payload,) in reversed(list(rows))]

    async def append_messages(
        self, conversation: str, *, platform: str, messages: list[dict[str, Any]]
    ) -> None:
        """Add one turn's messages to a conversation, in one transaction."""
        with self._transaction(write=True) as db:
            self._append(db, conversation, platform, messages)

    async def prune_conversations(self, older_than_seconds: float) -> int:
        """Delete conversations idle for more than `older_than_seconds`; returns how many."""
        sql = "DELETE FROM conversations WHERE updated_at < ?"
        with self._transaction(write=True) as db:
            return db.execute(sql, (self._clock() - older_than_seconds,)).rowcount

    async def has_conversation(self, conversation: str) -> bool:
        """Whether the bot has taken part in this conversation (and it was not pruned)."""
        sql = "SELECT 1 FROM conversations WHERE key = ?"
        rows = self._read(sql, (conversation,))
        return bool(rows)

    async def ping(self) -> bool:
        """True when the database answers a query (readiness)."""
        rows = self._read("SELECT 1")
        return rows == [(1,)]

    async def active_conversations(self, within_seconds: float) -> int:
        """How many conversations had a message in the last `within_seconds`."""
        sql = "SELECT COUNT(*) FROM conversations WHERE updated_at >= ?"
        rows = self._read(sql, (self._clock() - within_seconds,))
        return int(rows[0][0])

    # -- model checks --------------------------------------------------------------------

    async def record_model_check(self, endpoint: str, model: str, *, native_tools: bool) -> None:
        """Remember whether `model` at `endpoint` calls tools natively (`actionbot doctor`)."""
        self._db.execute(RECORD_MODEL_CHECK, (endpoint, model, int(native_tools), self._clock()))

    async def native_tools(self, endpoint: str, model: str) -> bool | None:
        """What the last check found for `model` at `endpoint`; None if never checked."""
        sql = "SELECT native_tools FROM model_checks WHERE endpoint = ? AND model = ?"
        rows = self._read(sql, (endpoint, model))
        return bool(rows[0][0]) if rows else None

    def _configure(self, path: Path) -> None:
        for pragma in PRAGMAS:
            self._db.execute(pragma)
        rows = self._read("PRAGMA journal_mode = WAL")
        if rows[0][0] != "wal":
            logger.warning("database %s is not in WAL mode (%s)", path, rows[0][0])

    def _migrate(self, path: Path) -> None:
        self._db.execute(CREATE_MIGRATIONS_TABLE)
        known = max(version for version, _, _ in MIGRATIONS)
        with self._transaction() as db:
            applied = _applied_versions(db)
        if applied and max(applied) > known:
            raise ConfigError(
                f"The database {path} has schema version {max(applied)}, but this ActionBot "
                f"knows versions up to {known}. Upgrade ActionBot or point ACTIONBOT_DB "
                "at another file."
            )
        for version, name, sql in MIGRATIONS:
            if version not in applied:
                self._apply(version, name=name, sql=sql)
                logger.info("database %s: applied migration %d (%s)", path, version, name)

    def _apply(self, version: int, *, name: str, sql: str) -> None:
        with self._transaction(write=True) as db:
            # Another process may have applied it since we looked.
            if version in _applied_versions(db):
                return
            for statement in _statements(sql):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, self._clock()),
            )


def _applied_versions(db: sqlite3.Connection) -> set[int]:
    rows = db.execute("SELECT version FROM schema_migrations").fetchall()
    return {int(row[0]) for row in rows}


def _by_action(
    db: sqlite3.Connection, sql: str, name: str | None
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows of `sql` (whose first column is the action) grouped by action, maybe just one."""
    rows = db.execute(
        sql + (" WHERE action = ?" if name is not None else ""), () if name is None else (name,)
    ).fetchall()
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for action, *rest in rows:
        grouped.setdefault(str(action), []).append(tuple(rest))
    return grouped


def _p95_by_action(db: sqlite3.Connection, calls: dict[str, int]) -> dict[str, float]:
    """Nearest-rank p95 over each action's most recent `P95_WINDOW` call rows still kept, in
    one query per chunk of actions (as `percentile_disc(0.95)` on PostgreSQL): the value at
    rank ceil(0.95 n) of the n latencies in the window."""
    wanted = [a for a, n in calls.items() if n > 0]
    found: dict[str, float] = {}
    for start in range(0, len(wanted), MAX_COMPOUND_SELECTS):
        chunk = wanted[start : start + MAX_COMPOUND_SELECTS]
        params: list[Any] = []
        for action in chunk:
            params += [action, action, P95_WINDOW, action, P95_WINDOW]
        rows = db.execute(" UNION ALL ".join([NEAREST_RANK_P95] * len(chunk)), params).fetchall()
        found.update((str(action), float(latency)) for action, latency in rows)
    return found


def _statements(script: str) -> list[str]:
    """Split an SQL script into statements (so a migration runs inside our own transaction,
    which `executescript` would commit); `complete_statement` keeps triggers whole."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        statements.append(pending)  # incomplete: let SQLite report the syntax error
    return statements
