"""Copying the SQLite store into a PostgreSQL one (`actionbot db migrate-to`).

Everything a replica needs to carry on where the SQLite bot stopped is copied: admin
toggles and dry-run overrides, the last breaker states, the call log (with its audit
columns) and its aggregates (so totals that counted pruned call rows survive),
conversations and their messages, model checks, the instance key (so `Idempotency-Key`s stay
the same), the turn journal, confirmations, and the inbox in every state (answered messages
too, so a platform's redelivery of one is still dropped). Leases are not copied: they belong
to the processes that held them.

The target must hold no bot data (its rows would collide with copied ids, its totals be
overwritten) unless an earlier run from this file began it: the file gets a random id
(`instance` row `migration_id`) that the first run writes into the target (`copied_from`)
before anything else, and a finished copy records a fingerprint of what the target then
holds (`copy_done`): a run again after replicas have worked on it is refused. A run again
before that completes an interrupted copy (or finds nothing to do): rows are matched on
their natural keys (`ON CONFLICT … DO NOTHING`), call and message rows on their ids, copied as
they are (the identity sequences then continue after the largest). Each table is read from
one snapshot of the SQLite file, `BATCH_ROWS` rows at a time, each batch written in a
transaction of its own. Call rows are written with the aggregate trigger off for that
transaction, and the aggregates are then set to SQLite's: recounting the copied rows would
lose what pruned rows counted. The bot must not run on either database meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.errors import ConfigError, DatabaseError
from bot.store.open import POSTGRES, check_readable, scheme_of
from bot.store.postgres import PostgresStore
from bot.store.postgres_connect import describe
from bot.store.postgres_turns import row_count
from bot.store.sqlite import SQLiteStore

BATCH_ROWS = 1000
"""Rows read and written at a time: memory stays the same however big the tables are."""

PARKED = "confirmation"
"""The lease owner of a pending message that waits for a click (see `EventInbox.park`)."""
# A pending message leased by the old process is left for whichever replica looks first; one
# parked for a confirmation stays parked, so the click wakes it.
LEASE_CLEARED = f"state = 'pending' AND lease_owner IS NOT '{PARKED}'"

HAS_BOT_DATA = (  # what a bot that ran on a database left in it
    "SELECT EXISTS (SELECT 1 FROM calls) OR EXISTS (SELECT 1 FROM inbox) OR EXISTS (SELECT 1 "
    "FROM conversations) OR EXISTS (SELECT 1 FROM action_state) OR EXISTS (SELECT 1 FROM "
    "call_totals) OR EXISTS (SELECT 1 FROM journal) OR EXISTS (SELECT 1 FROM confirmations) "
    "OR EXISTS (SELECT 1 FROM action_modes)"
)
GIVE_ID = "INSERT INTO instance (name, value) VALUES ('migration_id', ?) ON CONFLICT DO NOTHING"
MARKS = "('migration_id', 'copied_from', 'copy_done')"  # the copy's own rows: never copied
FINGERPRINT = (
    "SELECT (SELECT COALESCE(MAX(id), 0) FROM calls), (SELECT COUNT(*) FROM inbox), "
    "(SELECT COALESCE(SUM(calls), 0) FROM call_totals), "
    "(SELECT COALESCE(MAX(id), 0) FROM messages), "
    "(SELECT COALESCE(MAX(changed_at), 0) FROM action_state)"
)
"""What any bot's work on the target changes: kept when a copy finishes, so running the
copy again after replicas have used the database is refused."""

CONVERT: dict[str, Callable[[Any], Any]] = {
    "text": str,
    "float8": float,
    "int8": int,
    "int4": int,
    "boolean": bool,  # SQLite's 0 and 1
    "bytea": bytes,
}


@dataclass(frozen=True)
class Table:
    """One table to copy: the key a row is matched on, its columns with their PostgreSQL
    types, and how its rows are read from SQLite."""

    name: str
    key: str
    """The conflict target, e.g. `action, outcome` (empty: any unique constraint); `id` is
    an identity column, copied as it is."""
    columns: str
    """`column type, …` in the order they are read and written."""
    order: str = ""
    """The SQLite order of reading (default: the key)."""
    aggregate: bool = False
    """Set to SQLite's values where they differ, rather than left as found."""
    read: dict[str, str] | None = None
    """SQLite expressions for columns not read as they are."""
    quiet_trigger: str | None = None
    """A trigger on the table that must not fire for copied rows."""
    only: str = "TRUE"
    """A SQLite condition on the rows to copy."""

    @property
    def names(self) -> list[str]:
        return [column.split()[0] for column in self.columns.split(", ")]

    @property
    def types(self) -> list[str]:
        return [column.split()[1] for column in self.columns.split(", ")]

    def select(self) -> str:
        wanted = ", ".join((self.read or {}).get(name, name) for name in self.names)
        order = self.order or self.key
        return f"SELECT {wanted} FROM {self.name} WHERE {self.only} ORDER BY {order}"  # noqa: S608

    def insert(self) -> str:
        names = ", ".join(self.names)
        arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(self.types, start=1))
        overriding = " OVERRIDING SYSTEM VALUE" if self.key == "id" else ""
        target = f"({self.key})" if self.key else ""
        action = "DO NOTHING"
        if self.aggregate:
            rest = [name for name in self.names if name not in self.key.split(", ")]
            assignments = ", ".join(f"{name} = excluded.{name}" for name in rest)
            mine = ", ".join(f"{self.name}.{name}" for name in rest)
            theirs = ", ".join(f"excluded.{name}" for name in rest)
            action = f"DO UPDATE SET {assignments} WHERE ({mine}) IS DISTINCT FROM ({theirs})"
        return (
            f"INSERT INTO {self.name} ({names}){overriding} SELECT {names} "  # noqa: S608 - TABLES' own
            f"FROM unnest({arrays}) WITH ORDINALITY AS source({names}, n) ORDER BY n "
            f"ON CONFLICT {target} {action}"
        )


TABLES = (
    Table(
        "action_state", "action", "action text, active boolean, changed_by text, changed_at float8"
    ),
    Table(
        "calls",
        "id",
        "id int8, action text, call_id text, conversation text, started_at float8, recorded_at "
        "float8, latency_ms float8, outcome text, status int4, error text, attempts int4, "
        "platform text, team text, user_id text, channel text, arguments text",
        quiet_trigger="calls_aggregate",
    ),
    Table(
        "action_modes", "action", "action text, dry_run boolean, changed_by text, changed_at float8"
    ),
    Table(
        "action_breakers",
        "action",
        "action text, state text, failures int4, open_until float8, changed_at float8",
    ),
    Table(
        "call_totals",
        "action, outcome",
        "action text, outcome text, calls int8, latency_ms float8, attempts int8",
        aggregate=True,
    ),
    Table(
        "action_activity",
        "action",
        "action text, last_call_at float8, last_error text, last_error_at float8",
        aggregate=True,
    ),
    Table("conversations", "key", "key text, platform text, created_at float8, updated_at float8"),
    Table("messages", "id", "id int8, conversation text, created_at float8, payload text"),
    Table(
        "model_checks",
        "endpoint, model",
        "endpoint text, model text, native_tools boolean, checked_at float8",
    ),
    Table("instance", "name", "name text, value bytea", only=f"name NOT IN {MARKS}"),
    Table(
        "journal",
        "event_key, idempotency_key",
        "event_key text, idempotency_key text, ordinal int4, action text, arguments text, "
        "started_at float8, result text, finished_at float8",
    ),
    Table(
        "confirmations",
        "",  # the token, or the call it is about
        "token text, event_key text, idempotency_key text, action text, arguments text, "
        "requester text, state text, decided_by text, created_at float8, expires_at float8, "
        "decided_at float8",
        order="token",
    ),
    Table(
        "chat_actions",
        "name",
        "name text, definition text, created_by text, created_at float8, updated_by text, "
        "updated_at float8",
    ),
    Table(
        "handoffs",
        "event_key",
        "event_key text, conversation text, platform text, started_at float8, until float8, "
        "ended_at float8, ended_by text",
    ),
    Table(
        "inbox",
        "event_key",
        "event_key text, platform text, conversation text, user_id text, user_name text, "
        "team_id text, channel_id text, is_admin boolean, text text, route text, received_at "
        "float8, state text, attempts int4, lease_owner text, lease_until float8, progress "
        "text, reply text, finished_at float8",
        order="seq",  # PostgreSQL numbers them anew, in the same order
        read={
            "lease_owner": f"CASE WHEN {LEASE_CLEARED} THEN NULL ELSE lease_owner END",
            "lease_until": f"CASE WHEN {LEASE_CLEARED} THEN 0.0 ELSE lease_until END",
        },
    ),
)


@dataclass(frozen=True)
class Copied:
    """What one table's copy did."""

    table: str
    copied: int
    present: int
    """Rows that were there already (from an earlier run)."""

    def __str__(self) -> str:
        return f"{self.table}: {self.copied} copied, {self.present} already there"


def check_target(url: str) -> None:
    """`ConfigError` unless `url` names a PostgreSQL database (the message shows only the
    scheme, never the rest of the URL)."""
    if not url.startswith(POSTGRES):
        raise ConfigError(
            "The target must be a PostgreSQL URL "
            f"(postgresql://user:password@host:5432/database), not {scheme_of(url)}."
        )
    check_readable(url, name="The target URL")


def shown_url(url: str) -> str:
    """`url` as it may be printed: a password in it (or in `?password=`) is `<password>`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:<password>@{hosts}"
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=<password>", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


async def copy_to_postgres(
    path: Path, url: str, *, report: Callable[[Copied], None] = lambda _: None
) -> list[Copied]:
    """Copy the SQLite database at `path` into the PostgreSQL database at `url` (its schema
    brought up to date first), calling `report` as each table is done. `ConfigError` when
    there is nothing to copy or a bot has run on the target; `DatabaseError` when either
    database fails (naming host and port, never the password)."""
    check_target(url)
    if not await asyncio.to_thread(path.is_file):
        raise ConfigError(f"There is no SQLite database at {path}: nothing to copy.")
    async with await SQLiteStore.open(path) as store:  # its schema brought up to date
        try:  # the file's random id, given by the first run in one short write
            store._db.execute(GIVE_ID, (secrets.token_bytes(16),))
        except sqlite3.Error as exc:
            raise DatabaseError(f"Cannot use the database {path}: {exc}") from exc
    where = describe(url)
    done: list[Copied] = []
    read_only = (await asyncio.to_thread(path.resolve)).as_uri() + "?mode=ro"
    async with await PostgresStore.open(url, min_size=1, max_size=2) as target:
        try:
            with closing(sqlite3.connect(read_only, uri=True, isolation_level=None)) as db:
                db.execute("BEGIN")  # one snapshot for every table
                await _claim(db, target._pool, where)
                for table in TABLES:
                    done.append(await _copy(db, target._pool, table, where))
                    report(done[-1])
                async with target._pool.acquire() as marking:
                    await marking.execute(
                        "INSERT INTO instance (name, value) VALUES ('copy_done', $1) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                        await _fingerprint(marking),
                    )
        except sqlite3.Error as exc:
            raise DatabaseError(f"Cannot read the database {path}: {exc}") from exc
    return done


async def _claim(source: sqlite3.Connection, pool: asyncpg.Pool, where: str) -> None:
    """Refuse a target whose instance key differs, or with bot data but no mark of an earlier
    run from this file; mark an empty one (in a transaction with no other write)."""
    ours = dict(source.execute("SELECT name, value FROM instance").fetchall())
    async with pool.acquire() as db, db.transaction():
        rows = await db.fetch("SELECT name, value FROM instance FOR UPDATE")
        theirs = {row["name"]: bytes(row["value"]) for row in rows}
        key, their_key = ours.get("call_key"), theirs.get("call_key")
        if key and their_key and bytes(key) != their_key:
            why = "an instance key of its own, so calls would get other Idempotency-Keys."
        elif theirs.get("copied_from") == bytes(ours["migration_id"]):
            done = theirs.get("copy_done")
            if done is None or done == await _fingerprint(db):
                return  # an earlier run of this copy: complete it (or find nothing to do)
            why = "changes since this copy finished (replicas have run on it), and copying "
            why += "again would overwrite its call totals with older ones."
        elif await db.fetchval(HAS_BOT_DATA):
            why = "bot data (calls, messages, conversations, toggles) this copy did not write, "
            why += "and copying would mix it with SQLite's and overwrite its call totals."
        else:
            await db.execute(
                "INSERT INTO instance (name, value) VALUES ('copied_from', $1) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                bytes(ours["migration_id"]),
            )
            return
    raise ConfigError(
        f"An ActionBot has run on the database at {where}: it already has {why} Copy into a "
        "new, empty database instead."
    )


async def _fingerprint(db: asyncpg.pool.PoolConnectionProxy[Any]) -> bytes:
    row = await db.fetchrow(FINGERPRINT)
    return json.dumps([float(value) for value in row or ()]).encode()


async def _copy(source: sqlite3.Connection, pool: asyncpg.Pool, table: Table, where: str) -> Copied:
    """Copy one table, batch by batch; then an identity sequence continues after the
    largest id."""
    copied = seen = 0
    cursor = source.execute(table.select())
    try:
        while rows := cursor.fetchmany(BATCH_ROWS):
            copied += await _write_batch(pool, table, rows)
            seen += len(rows)
        if table.key == "id":
            await pool.execute(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608 - TABLES' own
                f"GREATEST(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}"
            )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseError(
            f"Copying {table.name} into the database at {where} failed: {_why(exc)}. "
            "Run the command again to complete the copy."
        ) from exc
    return Copied(table.name, copied, seen - copied)


async def _write_batch(pool: asyncpg.Pool, table: Table, rows: Sequence[Sequence[Any]]) -> int:
    """Write one batch in one transaction; how many rows it added (or, for an aggregate,
    changed)."""
    columns = zip(*rows, strict=True)
    converters = [CONVERT[kind] for kind in table.types]
    arrays = [
        [None if value is None else convert(value) for value in column]
        for convert, column in zip(converters, columns, strict=True)
    ]
    async with pool.acquire() as db, db.transaction():
        if table.quiet_trigger:
            await db.execute(f"ALTER TABLE {table.name} DISABLE TRIGGER {table.quiet_trigger}")
        status = await db.execute(table.insert(), *arrays)
        if table.quiet_trigger:
            await db.execute(f"ALTER TABLE {table.name} ENABLE TRIGGER {table.quiet_trigger}")
    return row_count(status)


def _why(exc: BaseException) -> str:
    """Why a write failed, in words that cannot contain the URL's password."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc)  # the server's words: it never sees the password
    if isinstance(exc, OSError):
        return exc.strerror or "the connection failed"
    return type(exc).__name__
