"""The SQLite store on real files: migrations, action state, call stats, seen events."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import ConfigError, DatabaseError
from bot.store import ActionState, ActionStats, Store
from bot.store import sqlite as store_module
from bot.store.queries import EARLIER_PENDING, INBOX_INSERT
from bot.store.rows import MAX_ERROR_CHARS, P95_WINDOW
from bot.store.sqlite import MIGRATIONS, SQLiteStore
from bot.types import ActionResult, IncomingMessage, Outcome

T0 = 1_700_000_000.0
FAILURES = [Outcome.HTTP_ERROR, Outcome.TIMEOUT, Outcome.BLOCKED]


class Clock:
    """A clock that only moves when a test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def result(
    action: str = "check_inventory",
    *,
    outcome: Outcome = Outcome.SUCCESS,
    latency_ms: float = 12.5,
    error: str | None = None,
    call_id: str = "c1",
) -> ActionResult:
    ok = outcome is Outcome.SUCCESS
    return ActionResult(
        action=action,
        call_id=call_id,
        outcome=outcome,
        latency_ms=latency_ms,
        status=200 if ok else None,
        data={"in_stock": True} if ok else None,
        error=error,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "actionbot.db"


@pytest.fixture
async def store(db_path: Path, clock: Clock) -> AsyncIterator[Store]:
    async with await SQLiteStore.open(db_path, clock=clock) as opened:
        yield opened


async def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the file through a separate connection, as another process would."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [tuple(row) for row in db.execute(sql).fetchall()]


# -- opening and migrations --------------------------------------------------------------


async def test_open_creates_parent_dirs_and_uses_wal(db_path: Path, store: Store) -> None:
    """Opening creates missing parent directories and leaves the file in WAL mode."""
    assert await asyncio.to_thread(db_path.exists)
    assert await query(db_path, "PRAGMA journal_mode") == [("wal",)]


async def test_migrations_are_applied_once_and_recorded(db_path: Path, clock: Clock) -> None:
    """Every migration is recorded with its time, and reopening applies nothing again."""
    async with await SQLiteStore.open(db_path, clock=clock):
        pass
    clock.now = T0 + 3600
    async with await SQLiteStore.open(db_path, clock=clock):
        pass
    rows = await query(db_path, "SELECT version, name, applied_at FROM schema_migrations")
    assert rows == [(version, name, T0) for version, name, _ in MIGRATIONS]


def test_migration_versions_are_ordered_and_contiguous() -> None:
    """Migration versions run 1, 2, 3… so appending one is the only way to add one."""
    assert [version for version, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


async def test_appended_migration_applies_only_itself(
    db_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration appended later runs on an existing database, trigger bodies intact."""
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        await store.record_call(result())
    extra = (
        len(MIGRATIONS) + 1,
        "audit",
        """
        CREATE TABLE audit (action TEXT NOT NULL);
        CREATE TRIGGER calls_audit AFTER INSERT ON calls BEGIN
            INSERT INTO audit (action) VALUES (new.action);
        END;
        """,
    )
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, extra])
    clock.now = T0 + 60
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        await store.record_call(result())
        assert (await store.stats("check_inventory"))[0].calls == 2
    assert await query(db_path, "SELECT action FROM audit") == [("check_inventory",)]
    applied = await query(db_path, "SELECT version, applied_at FROM schema_migrations")
    assert applied[-1] == (extra[0], T0 + 60)
    assert len(applied) == len(MIGRATIONS) + 1


async def test_upgrade_keeps_seen_event_ids_as_answered_messages(
    db_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Event ids seen before the inbox existed become answered messages: a platform's retry
    of one of them after the upgrade is still dropped."""
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:4])
    async with await SQLiteStore.open(db_path, clock=clock):
        pass
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO seen_events (event_id, seen_at) VALUES ('slack:EvOld', ?)", (T0,))
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    message = IncomingMessage(
        platform="slack", conversation="C1", user_id="U1", text="hi", event_id="EvOld"
    )
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        assert await store.receive(message, route={}, owner="h:1", lease_seconds=60) is None
        assert await store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def test_upgrade_keeps_old_calls_in_the_audit_trail_without_an_asker(
    db_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls recorded before the audit columns existed stay, with no asker and no arguments;
    calls recorded after the upgrade have them."""
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:9])
    async with await SQLiteStore.open(db_path, clock=clock):
        pass
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        db.execute(
            "INSERT INTO calls (action, call_id, started_at, recorded_at, latency_ms, outcome) "
            "VALUES ('refund', 'old-1', ?, ?, 5.0, 'success')",
            (T0, T0),
        )
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        await store.record_call(
            result("refund", call_id="new-1"),
            caller="platform=slack; team=T1; user=U1; channel=C1",
            arguments='{"order":"A1"}',
        )
        old, new = await store.audit_page()
        [(count,)] = store._read("SELECT calls FROM call_totals WHERE action = 'refund'")
    assert (old.idempotency_key, old.platform, old.user_id, old.arguments) == (
        "old-1",
        None,
        None,
        None,
    )
    assert (new.platform, new.team, new.user_id, new.channel, new.arguments) == (
        "slack",
        "T1",
        "U1",
        "C1",
        '{"order":"A1"}',
    )
    assert count == 2  # the trigger counted both


async def test_failed_migration_is_rolled_back(
    db_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration that fails halfway leaves neither its tables nor its version behind."""
    async with await SQLiteStore.open(db_path, clock=clock):
        pass
    broken = (len(MIGRATIONS) + 1, "broken", "CREATE TABLE half (x); SELECT * FROM nowhere;")
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(DatabaseError, match="nowhere"):
        await SQLiteStore.open(db_path, clock=clock)
    tables = await query(db_path, "SELECT name FROM sqlite_master WHERE name = 'half'")
    assert tables == []
    versions = await query(db_path, "SELECT MAX(version) FROM schema_migrations")
    assert versions == [(len(MIGRATIONS),)]


async def test_newer_schema_is_refused(db_path: Path, clock: Clock) -> None:
    """A database written by a newer ActionBot is refused with a clear ConfigError."""
    async with await SQLiteStore.open(db_path, clock=clock):
        pass
    newer = len(MIGRATIONS) + 5
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        db.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)",
            (newer,),
        )
    with pytest.raises(ConfigError, match=f"schema version {newer}.*Upgrade ActionBot"):
        await SQLiteStore.open(db_path, clock=clock)


async def test_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """Pointing ACTIONBOT_DB at some other file is a DatabaseError naming it, not a trace."""
    path = tmp_path / "actions.toml"
    path.write_text("[[actions]]\nname = 'x'\n" * 200)
    with pytest.raises(DatabaseError, match=r"actions\.toml"):
        await SQLiteStore.open(path)


# -- action state ------------------------------------------------------------------------


async def test_set_active_persists_with_actor_and_time(db_path: Path, clock: Clock) -> None:
    """A toggle survives close and reopen, with who made it and when; the last one wins."""
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        assert await store.action_states() == {}
        await store.set_active("check_inventory", False, actor="slack:U1")
        clock.now = T0 + 10
        await store.set_active("warranty", True, actor="discord:42")
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        assert await store.action_states() == {
            "check_inventory": ActionState(active=False, changed_by="slack:U1", changed_at=at(T0)),
            "warranty": ActionState(active=True, changed_by="discord:42", changed_at=at(T0 + 10)),
        }
        clock.now = T0 + 20
        await store.set_active("check_inventory", True, actor="console")
        states = await store.action_states()
    assert states["check_inventory"] == ActionState(
        active=True, changed_by="console", changed_at=at(T0 + 20)
    )
    assert states["check_inventory"].changed_at.tzinfo is UTC


# -- call log and stats ------------------------------------------------------------------


async def test_stats_numbers(store: Store, clock: Clock) -> None:
    """Calls, successes, failures by outcome, average, p95 and last error add up exactly."""
    for latency in range(1, 18):  # 17 successes, 1..17 ms
        await store.record_call(result(latency_ms=float(latency)))
    clock.now = T0 + 5
    await store.record_call(result(outcome=Outcome.TIMEOUT, latency_ms=18.0, error="timed out"))
    clock.now = T0 + 7
    await store.record_call(result(outcome=Outcome.HTTP_ERROR, latency_ms=19.0, error="HTTP 502"))
    clock.now = T0 + 9
    await store.record_call(result(latency_ms=20.0))

    assert await store.stats("check_inventory") == [
        ActionStats(
            action="check_inventory",
            calls=20,
            attempts=20,
            successes=18,
            failures={"http_error": 1, "timeout": 1},
            avg_latency_ms=10.5,  # (1 + … + 20) / 20
            p95_latency_ms=19.0,  # nearest rank: the 19th of 20 sorted values
            last_call_at=at(T0 + 9),
            last_error="HTTP 502",
            last_error_at=at(T0 + 7),
        )
    ]


async def test_record_call_stores_the_row(db_path: Path, store: Store, clock: Clock) -> None:
    """Each call is one row with its conversation, times, outcome, status and a capped error."""
    await store.record_call(
        result(outcome=Outcome.ERROR, latency_ms=250.0, error="x" * 1000, call_id="c9"),
        conversation="slack:C1:1700.1",
    )
    rows = await query(
        db_path,
        "SELECT action, call_id, conversation, started_at, recorded_at, latency_ms, outcome,"
        " status, length(error) FROM calls",
    )
    assert rows == [
        ("check_inventory", "c9", "slack:C1:1700.1", T0 - 0.25, T0, 250.0, "error", None, 300)
    ]
    assert MAX_ERROR_CHARS == 300
    last_error = (await store.stats("check_inventory"))[0].last_error
    assert last_error is not None
    assert len(last_error) == MAX_ERROR_CHARS
    assert last_error.endswith("…")


async def test_failure_without_message_names_its_outcome(store: Store) -> None:
    """A failure that carries no error text still shows which outcome it was."""
    await store.record_call(result(outcome=Outcome.BLOCKED))
    assert (await store.stats("check_inventory"))[0].last_error == "blocked"


async def test_p95_covers_the_recent_window(store: Store) -> None:
    """p95 ignores calls older than the most recent P95_WINDOW; counts and average do not."""
    for _ in range(50):
        await store.record_call(result(latency_ms=9000.0))
    for _ in range(P95_WINDOW):
        await store.record_call(result(latency_ms=10.0))
    [stats] = await store.stats("check_inventory")
    assert stats.p95_latency_ms == 10.0
    assert stats.calls == P95_WINDOW + 50
    assert stats.avg_latency_ms is not None
    assert stats.avg_latency_ms > 10.0


async def test_stats_for_an_unknown_action_is_a_zero_row(store: Store) -> None:
    """An action with no calls gets a row of zeros and Nones, not an error or nothing."""
    assert await store.stats("never_called") == [
        ActionStats(
            action="never_called",
            calls=0,
            successes=0,
            failures={},
            avg_latency_ms=None,
            p95_latency_ms=None,
            last_call_at=None,
            last_error=None,
            last_error_at=None,
        )
    ]


async def test_stats_for_all_lists_actions_with_calls_by_name(store: Store) -> None:
    """Without a name: every action that has calls, sorted; toggled-only actions are absent."""
    await store.set_active("idle", False, actor="console")
    for name in ["warranty", "check_inventory", "crm_lookup"]:
        await store.record_call(result(name))
    await store.record_call(result("warranty", outcome=Outcome.TIMEOUT))
    stats = await store.stats()
    assert [s.action for s in stats] == ["check_inventory", "crm_lookup", "warranty"]
    assert await store.call_counts() == {"check_inventory": 1, "crm_lookup": 1, "warranty": 2}


async def test_concurrent_record_calls_are_exact(db_path: Path, clock: Clock) -> None:
    """200 concurrent record_call tasks give exactly 200 calls, split exactly by outcome,
    and the counts survive reopening."""
    outcomes = [Outcome.SUCCESS, *FAILURES]
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        await asyncio.gather(
            *(
                store.record_call(result(outcome=outcomes[i % 4], call_id=f"c{i}"))
                for i in range(200)
            )
        )
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        [stats] = await store.stats("check_inventory")
        counts = await store.call_counts()
    assert stats.calls == 200
    assert stats.successes == 50
    assert stats.failures == {outcome.value: 50 for outcome in FAILURES}
    assert stats.successes + sum(stats.failures.values()) == 200
    assert counts == {"check_inventory": 200}
    assert await query(db_path, "SELECT COUNT(*) FROM calls") == [(200,)]


async def test_two_connections_recording_at_once_are_exact(db_path: Path, clock: Clock) -> None:
    """The bot and the CLI recording into the same file at once lose no call."""
    async with (
        await SQLiteStore.open(db_path, clock=clock) as bot,
        await SQLiteStore.open(db_path, clock=clock) as cli,
    ):
        await asyncio.gather(
            *(bot.record_call(result(call_id=f"b{i}")) for i in range(100)),
            *(cli.record_call(result(call_id=f"c{i}")) for i in range(100)),
        )
        assert await bot.call_counts() == {"check_inventory": 200}


# -- inbox --------------------------------------------------------------------------------


async def test_inbox_survives_reopening(db_path: Path, clock: Clock) -> None:
    """A message written before a restart is still pending after it, and a settled one is
    still recognised as answered."""
    message = IncomingMessage(
        platform="slack", conversation="C1", user_id="U1", text="hi", event_id="Ev1"
    )
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        assert await store.receive(message, route={}, owner="h:1", lease_seconds=60) is not None
        assert await store.receive(
            message.model_copy(update={"event_id": "Ev2"}), route={}, owner="h:1", lease_seconds=60
        )
        await store.settle("slack:Ev2", failed=False)
    async with await SQLiteStore.open(db_path, clock=clock) as store:
        [entry] = await store.claim(
            owner="h:2", lease_seconds=60, platforms=["slack"], limit=5, previous=["h:1"]
        )
        assert entry.key == "slack:Ev1"
        assert (
            await store.receive(
                message.model_copy(update={"event_id": "Ev2"}),
                route={},
                owner="h:2",
                lease_seconds=60,
            )
            is None
        )


async def test_p95_of_many_actions_matches_nearest_rank(store: Store) -> None:
    """All actions at once give each action the nearest-rank p95 of its own recent window."""
    rng = random.Random(7)
    latencies: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    sizes = {"a": 1203, "b": 37, "c": 1}
    for action, size in sizes.items():
        for n in range(size):
            latency = round(rng.uniform(1, 500), 1)
            latencies[action].append(latency)
            await store.record_call(
                ActionResult(
                    action=action,
                    call_id=f"{action}{n}",
                    outcome=Outcome.SUCCESS,
                    latency_ms=latency,
                ),
            )

    stats = {s.action: s for s in await store.stats()}

    for action, values in latencies.items():
        window = sorted(values[-1000:])
        expected = window[max(math.ceil(0.95 * len(window)), 1) - 1]
        assert stats[action].p95_latency_ms == expected, action
        assert stats[action].calls == sizes[action]
    assert (await store.stats("b"))[0].p95_latency_ms == stats["b"].p95_latency_ms


async def test_a_new_message_counts_only_its_own_conversations_pending_messages(
    tmp_path: Path,
) -> None:
    """Writing a message down (before its acknowledgement) searches the pending messages of
    its conversation by index, never every pending message: with a backlog, a scan would
    make each acknowledgement slower than the last."""
    path = tmp_path / "plan.db"
    async with await SQLiteStore.open(path):
        pass
    params = {
        "key": "slack:Ev1",
        "platform": "slack",
        "conversation": "C1:1.0",
        "user_id": "U1",
        "user_name": None,
        "team_id": "T1",
        "channel_id": "C1",
        "is_admin": 0,
        "text": "hi",
        "route": "{}",
        "now": T0,
        "attempts": 1,
        "owner": "host:1",
        "until": T0 + 60,
    }
    with contextlib.closing(sqlite3.connect(path)) as db:
        insert = db.execute("EXPLAIN QUERY PLAN " + INBOX_INSERT, params).fetchall()
        earlier = db.execute("EXPLAIN QUERY PLAN " + EARLIER_PENDING, (T0, "k")).fetchall()
    for plan in (insert, earlier):
        steps = [str(row[3]) for row in plan if "earlier" in str(row[3])]
        assert steps, plan
        assert all("inbox_pending_conversation (conversation=?" in step for step in steps), plan
