"""The PostgreSQL backend as several replicas use it: each `PostgresStore` here is one
replica's pool on the same real database (the role contract itself runs on both backends in
test_store_contract.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from postgres_server import PASSWORD, PostgresServer, free_port

from bot.errors import ConfigError, DatabaseError
from bot.runtime.config import Settings
from bot.store.open import configured_database, database_at
from bot.store.postgres import PostgresStore
from bot.store.postgres_connect import MIGRATIONS
from bot.types import ActionResult, IncomingMessage, Outcome

REPLICAS = 4


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def replicas(postgres_url: str, clock: Clock) -> AsyncIterator[list[PostgresStore]]:
    """`REPLICAS` stores on one database, opened at once (as replicas start together)."""
    stores = await asyncio.gather(
        *(PostgresStore.open(postgres_url, clock=clock) for _ in range(REPLICAS))
    )
    try:
        yield list(stores)
    finally:
        await asyncio.gather(*(store.close() for store in stores))


def message(event_id: str, conversation: str = "C1:1.0") -> IncomingMessage:
    return IncomingMessage(
        platform="slack", conversation=conversation, user_id="U1", text="hi", event_id=event_id
    )


async def test_replicas_starting_together_migrate_once(
    replicas: list[PostgresStore], postgres_url: str
) -> None:
    """Four pools opened at once on an empty database: the schema is applied once, under
    the advisory lock, and every replica works on it."""
    db = await asyncpg.connect(postgres_url)
    try:
        rows = await db.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await db.close()
    assert [row[0] for row in rows] == [version for version, _, _ in MIGRATIONS]
    assert all([await store.ping() for store in replicas])


async def test_a_redelivery_on_another_replica_is_dropped_or_taken_over_once(
    replicas: list[PostgresStore], clock: Clock
) -> None:
    """A Slack retry landing on another replica is dropped while the first holds the
    lease and once it is answered; after the lease expired exactly one replica of many
    takes it over."""
    first, *others = replicas
    assert await first.receive(message("E1"), route={}, owner="r0:1:a", lease_seconds=60)
    again = await asyncio.gather(
        *(
            r.receive(message("E1"), route={}, owner=f"r{n}:1:a", lease_seconds=60)
            for n, r in enumerate(others, 1)
        )
    )
    assert again == [None] * len(others)
    clock.now += 61
    taken = await asyncio.gather(
        *(
            r.receive(message("E1"), route={}, owner=f"r{n}:1:a", lease_seconds=60)
            for n, r in enumerate(others * 5, 1)
        )
    )
    winners = [entry for entry in taken if entry is not None]
    assert len(winners) == 1
    assert winners[0].attempts == 2
    await others[0].settle("slack:E1", failed=False)
    clock.now += 1000
    assert await first.receive(message("E1"), route={}, owner="r0:1:a", lease_seconds=60) is None


async def test_replicas_claiming_together_take_each_message_once(
    replicas: list[PostgresStore], clock: Clock
) -> None:
    """200 expired messages claimed by four replicas at once, in batches: each message is
    taken by exactly one of them, with one more attempt."""
    for n in range(200):
        await replicas[n % REPLICAS].receive(
            message(f"E{n}", f"C{n % 7}"), route={}, owner="dead:1:x", lease_seconds=60
        )
    clock.now += 61

    async def drain(store: PostgresStore, owner: str) -> list[str]:
        taken: list[str] = []
        while batch := await store.claim(
            owner=owner, lease_seconds=60, platforms=["slack"], limit=7
        ):
            taken += [entry.key for entry in batch]
            assert {entry.attempts for entry in batch} == {2}
        return taken

    claimed = await asyncio.gather(*(drain(r, f"r{n}:1:a") for n, r in enumerate(replicas)))
    every = [key for keys in claimed for key in keys]
    assert sorted(every) == sorted(f"slack:E{n}" for n in range(200))
    assert sum(1 for keys in claimed if keys) > 1  # the work was shared


async def test_counts_stay_exact_when_replicas_record_at_once(
    replicas: list[PostgresStore],
) -> None:
    """Every replica records calls of the same action concurrently: totals, per-outcome
    counts and attempts add up exactly (upserts, no read-modify-write)."""

    def result(n: int) -> ActionResult:
        outcome = Outcome.SUCCESS if n % 4 else Outcome.TIMEOUT
        return ActionResult(
            action="check_inventory",
            call_id=f"k{n}",
            outcome=outcome,
            latency_ms=float(n % 50),
            attempts=2 if n % 10 == 0 else 1,
        )

    await asyncio.gather(*(replicas[n % REPLICAS].record_call(result(n)) for n in range(400)))
    [stats] = await replicas[0].stats("check_inventory")
    assert (stats.calls, stats.successes, stats.failures) == (400, 300, {"timeout": 100})
    assert stats.attempts == 440
    assert await replicas[1].call_counts() == {"check_inventory": 400}
    assert stats.p95_latency_ms == 47.0  # percentile_disc over 0..49, eight times each


async def test_the_instance_key_and_journal_are_shared(replicas: list[PostgresStore]) -> None:
    """Every replica signs with the same instance key and sees the calls another recorded,
    so a turn replayed elsewhere reuses results and the same Idempotency-Key."""
    keys = await asyncio.gather(*(r.instance_key() for r in replicas))
    assert len(set(keys)) == 1
    assert len(keys[0]) == 32
    first, second = replicas[:2]
    assert (
        await first.start_call("slack:E1", "idem1", ordinal=0, action="a", arguments="{}") is None
    )
    done = ActionResult(action="a", call_id="idem1", outcome=Outcome.SUCCESS, latency_ms=5)
    await first.record_call(done, event_key="slack:E1")
    again = await second.start_call("slack:E1", "idem1", ordinal=0, action="a", arguments="{}")
    assert again == done


async def test_a_toggle_on_one_replica_is_read_by_every_other(
    replicas: list[PostgresStore],
) -> None:
    """Action state is read from the database on each turn: no replica keeps a stale copy."""
    await replicas[0].set_active("refund", False, actor="slack:UADMIN")
    seen = [(await r.action_states())["refund"].active for r in replicas]
    assert seen == [False] * REPLICAS


async def test_unreachable_database_is_one_clear_error_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens: the error names host and port, never the password."""
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://actionbot:{PASSWORD}@127.0.0.1:{free_port()}/actionbot"
    with pytest.raises(DatabaseError) as raised:
        await PostgresStore.open(url)
    text = str(raised.value)
    assert text.startswith("Cannot connect to the database at 127.0.0.1:")
    assert PASSWORD not in text
    assert PASSWORD not in caplog.text


async def test_a_wrong_password_is_named_as_such_and_not_shown(
    postgres_server: PostgresServer,
) -> None:
    wrong = "not-the-password-1234"
    with pytest.raises(DatabaseError) as raised:
        await PostgresStore.open(postgres_server.url("postgres", password=wrong))
    assert str(raised.value) == (
        f"Cannot connect to the database at 127.0.0.1:{postgres_server.port}/postgres: "
        "the password was refused"
    )
    assert wrong not in str(raised.value)


async def test_readiness_fails_while_the_server_is_down_and_recovers(
    postgres_server: PostgresServer,
) -> None:
    """`ping` (behind /readyz) answers False while the server is stopped and True again
    once it is back, on the same pool: no restart of the bot. (A cluster of its own, so
    stopping it leaves the other tests alone.)"""
    server = PostgresServer(postgres_server.bindir)
    server.init()
    try:
        store = await PostgresStore.open(server.new_database(), min_size=1, max_size=2)
        try:
            assert await store.ping()
            server.stop()
            assert not await store.ping()
            server.start()
            assert await store.ping()
            await store.set_active("a", True, actor="cli")  # and it works again
        finally:
            await store.close()
    finally:
        server.remove()


def test_the_url_picks_the_backend_and_unknown_schemes_list_the_supported_ones() -> None:
    assert database_at("sqlite:///data/actionbot.db").path == Path("data/actionbot.db")
    assert database_at("sqlite:////var/lib/actionbot.db").path == Path("/var/lib/actionbot.db")
    found = database_at(f"postgresql://bot:{PASSWORD}@db.internal:6432/actionbot")
    assert (found.kind, found.describe()) == ("postgresql", "db.internal:6432/actionbot")
    with pytest.raises(ConfigError) as raised:
        database_at(f"mysql://bot:{PASSWORD}@db/actionbot")
    assert "mysql://" in str(raised.value)
    assert "sqlite:///" in str(raised.value)
    assert "postgresql://" in str(raised.value)
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://bot:{PASSWORD}@db:99999/actionbot",
        f"postgresql://bot:{PASSWORD}@[::1/actionbot",
        f"postgresql://bot:{PASSWORD}@db:port/actionbot",
    ],
)
def test_an_unreadable_url_is_a_clear_error_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        database_at(url)
    assert "cannot be read" in str(raised.value)
    assert PASSWORD not in str(raised.value)
    settings = Settings(ACTIONBOT_DATABASE_URL=url)  # type: ignore[call-arg]
    assert settings.secret_values() is not None  # no traceback while collecting secrets


async def test_bad_url_options_are_a_database_error_without_the_password() -> None:
    url = f"postgresql://bot:{PASSWORD}@127.0.0.1:{free_port()}/actionbot?sslmode=bogus"
    with pytest.raises(DatabaseError) as raised:
        await PostgresStore.open(url)
    assert str(raised.value).startswith("Cannot connect to the database at 127.0.0.1:")
    assert PASSWORD not in str(raised.value)


def test_without_a_url_the_sqlite_file_of_actionbot_db_is_used(tmp_path: Path) -> None:
    settings = Settings(ACTIONBOT_DB=str(tmp_path / "bot.db"))  # type: ignore[call-arg]
    assert configured_database(settings).path == tmp_path / "bot.db"
    url = f"postgresql://bot:{PASSWORD}@db:5432/actionbot"
    with_url = Settings(ACTIONBOT_DB="x.db", ACTIONBOT_DATABASE_URL=url)  # type: ignore[call-arg]
    assert configured_database(with_url).kind == "postgresql"
    assert PASSWORD in with_url.secret_values()  # redacted from every log line
