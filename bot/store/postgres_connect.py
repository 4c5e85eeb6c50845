"""Connecting to PostgreSQL and bringing its schema up to date: the pools, the migrations
under an advisory lock, and errors that name host and port, never the password."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from urllib.parse import urlsplit

import asyncpg

from bot.errors import ConfigError, DatabaseError

logger = logging.getLogger(__name__)

MIGRATION_LOCK = 0x616374696F6E
"""The advisory lock key under which migrations run ("action" in hex)."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the database at start before giving up with a clear error."""

INBOX_CONNECTIONS = 2
"""Connections always open for writing incoming messages down (`receive`) and `/readyz`,
apart from the pool the turns use, so an acknowledgement never waits behind turn work for a
connection; under a burst this pool grows to the turns' pool size."""
CONNECT_ERRORS = (
    OSError,
    TimeoutError,
    ValueError,  # the URL names no usable port or option
    OverflowError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

Migration = tuple[int, str, str]


def _load_migrations() -> list[Migration]:
    """`pg_migrations/NNNN_name.sql`, in version order; first line `-- <name>`."""
    folder = resources.files(__package__) / "pg_migrations"
    found: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            sql = entry.read_text(encoding="utf-8")
            name = sql.splitlines()[0].removeprefix("--").strip()
            found.append((int(entry.name.split("_", 1)[0]), name, sql))
    return found


MIGRATIONS: list[Migration] = _load_migrations()


def describe(url: str) -> str:
    """`host:port/database` of a PostgreSQL URL: what errors and logs may show of it."""
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        return "(an unreadable URL)"
    return f"{parts.hostname or 'localhost'}:{port}{parts.path or '/'}"


async def connect(url: str, *, min_size: int, max_size: int) -> tuple[asyncpg.Pool, asyncpg.Pool]:
    """The turns' pool and the incoming messages' pool; `DatabaseError` naming host and port
    (never the password) when the server cannot be used."""
    pools: list[asyncpg.Pool] = []
    try:
        sizes = ((min(min_size, max_size), max_size), (INBOX_CONNECTIONS, max(max_size, 2)))
        for low, high in sizes:
            pools.append(await _pool(url, min_size=low, max_size=high))
    except CONNECT_ERRORS as exc:
        for opened in pools:
            await opened.close()
        raise DatabaseError(
            f"Cannot connect to the database at {describe(url)}: {_reason(exc)}"
        ) from exc
    return pools[0], pools[1]


async def migrate(pool: asyncpg.Pool, *, where: str, clock: Callable[[], float]) -> None:
    """Apply the migrations the database lacks, in one transaction under the advisory lock:
    of replicas starting together one does the work, the others then find nothing to do."""
    known = max(version for version, _, _ in MIGRATIONS)
    async with pool.acquire() as db, db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        applied = {row[0] for row in await db.fetch("SELECT version FROM schema_migrations")}
        if applied and max(applied) > known:
            raise ConfigError(
                f"The database at {where} has schema version {max(applied)}, but this "
                f"ActionBot knows versions up to {known}. Upgrade ActionBot or point "
                "ACTIONBOT_DATABASE_URL at another database."
            )
        for version, name, sql in MIGRATIONS:
            if version in applied:
                continue
            await db.execute(sql)
            await db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                version,
                name,
                clock(),
            )
            logger.info("database %s: applied migration %d (%s)", where, version, name)


async def _pool(url: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT,
        server_settings={"application_name": "actionbot"},
        reset=_keep_session,
    )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to its pool: the store sets no session
    state (no SET, LISTEN, cursors or session locks), and asyncpg itself rolls back a
    transaction left open. The default reset costs a second round trip per statement."""


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in words that cannot contain the URL's password."""
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "the password was refused"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return "the user was refused"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database does not exist"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(exc, OSError):
        return exc.strerror or "the connection failed"
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc)  # the server's words: it never sees the password
    if isinstance(exc, ValueError | OverflowError):
        return "the URL cannot be read (check its port and options)"
    if isinstance(exc, asyncpg.InterfaceError):
        return f"the client refused the URL's options ({type(exc).__name__})"
    return type(exc).__name__
