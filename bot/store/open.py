"""Which database the settings name, and opening it: `ACTIONBOT_DATABASE_URL` (`sqlite:///…`
or `postgresql://…`), else the SQLite file `ACTIONBOT_DB`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.runtime.config import Settings
from bot.store import Store
from bot.store.postgres import PostgresStore
from bot.store.postgres_connect import describe
from bot.store.sqlite import SQLiteStore

SQLITE = "sqlite:///"
POSTGRES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class Database:
    """A database the bot can open: a SQLite file (`path`) or a PostgreSQL server (`url`)."""

    path: Path | None = None
    url: str | None = None

    @property
    def kind(self) -> str:
        return "sqlite" if self.path is not None else "postgresql"

    def describe(self) -> str:
        """What logs and errors may show: the file, or host, port and database (never the
        password)."""
        return str(self.path) if self.path is not None else describe(self.url or "")

    async def open(self, settings: Settings | None = None) -> Store:
        """Open it, bringing its schema up to date (`DatabaseError`/`ConfigError` if not)."""
        if self.path is not None:
            return await SQLiteStore.open(self.path)
        pool = (settings.db_pool_min, settings.db_pool_max) if settings else (1, 10)
        return await PostgresStore.open(self.url or "", min_size=pool[0], max_size=pool[1])


def database_at(url: str) -> Database:
    """The database a URL names; `ConfigError` listing the supported forms otherwise."""
    if url.startswith(SQLITE):
        path = url.removeprefix(SQLITE)
        if not path:
            raise ConfigError("A sqlite:/// database URL needs a file: sqlite:///actionbot.db.")
        return Database(path=Path(path))
    if url.startswith(POSTGRES):
        check_readable(url, name="ACTIONBOT_DATABASE_URL")
        return Database(url=url)
    raise ConfigError(
        f"ACTIONBOT_DATABASE_URL has the unsupported scheme {scheme_of(url)}: use "
        "sqlite:///path/to/actionbot.db (one machine) or "
        "postgresql://user:password@host:5432/database (several replicas)."
    )


def scheme_of(url: str) -> str:
    """The scheme of a URL as errors may show it (nothing else of the URL: no password)."""
    return url.split("://", 1)[0] + "://" if "://" in url else "(none)"


def check_readable(url: str, *, name: str) -> None:
    """`ConfigError` naming `name` when a PostgreSQL URL's host and port cannot be read."""
    try:
        urlsplit(url).port  # noqa: B018 - read for its ValueError
    except ValueError:
        raise ConfigError(
            f"{name} cannot be read: check its host and port "
            "(postgresql://user:password@host:5432/database)."
        ) from None


def configured_database(settings: Settings) -> Database:
    """`ACTIONBOT_DATABASE_URL` if set, else the SQLite file `ACTIONBOT_DB`."""
    if settings.database_url is None:
        return Database(path=settings.db_path)
    return database_at(settings.database_url.get_secret_value().strip())


async def open_store(settings: Settings) -> Store:
    """The configured database, opened."""
    return await configured_database(settings).open(settings)
