"""`actionbot db migrate-to URL`: a real SQLite file, filled through `SQLiteStore`'s own
methods, copied by the real command (in this process, as test_cli.py runs it) into a real
PostgreSQL database on the throwaway cluster (`postgres_server.py`), then read back through
`PostgresStore`: what a replica started on it would see."""

from __future__ import annotations

import errno
import re
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from postgres_server import PASSWORD
from test_cli import Finished, base_env, closed_port, invoke_cli

from bot.store import transfer
from bot.store.postgres import PostgresStore
from bot.store.postgres_connect import describe
from bot.store.sqlite import SQLiteStore
from bot.store.transfer import TABLES, Table
from bot.types import ActionResult, IncomingMessage, Outcome, caller_header

DAY = 86400.0
LEASE = 60.0
CONVERSATIONS = ("C1:1.0", "D1")
WEBHOOK_SECRET = "the-replicas-webhook-secret-4711"
TABLE_NAMES = [table.name for table in TABLES]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def message(event_id: str, conversation: str = "C1:1.0") -> IncomingMessage:
    return IncomingMessage(
        platform="slack", conversation=conversation, user_id="U1", text="hi", event_id=event_id
    )


def call(action: str, call_id: str, outcome: Outcome, latency: float, **more: Any) -> ActionResult:
    return ActionResult(action=action, call_id=call_id, outcome=outcome, latency_ms=latency, **more)


@dataclass
class Source:
    """The SQLite file, and what its store says, for the copy to be compared with."""

    path: Path
    clock: Clock
    facts: dict[str, Any]
    token: str


async def what_it_says(store: SQLiteStore | PostgresStore, token: str) -> dict[str, Any]:
    """Everything the bot reads back, through the store's roles."""
    return {
        "stats": await store.stats(),
        "call_counts": await store.call_counts(),
        "call_totals": await store.call_totals(),
        "action_states": await store.action_states(),
        "messages": [await store.load_messages(c, limit=100) for c in CONVERSATIONS],
        "instance_key": await store.instance_key(),
        "inbox_counts": await store.inbox_counts(),
        "native_tools": await store.native_tools("http://llm:8000/v1", "llama"),
        "confirmation": await store.confirmation_by_token(token),
        "entries": [await store.entry(f"slack:E{n}") for n in range(1, 5)],
        "action_modes": await store.action_modes(),
        "breakers": await store.breakers(),
        "audit": await store.audit_page(),
    }


@pytest.fixture
async def source(tmp_path: Path) -> Source:
    """Ten days of a bot's life: toggles, a dry-run override, an open breaker, calls (the
    first day's pruned; one with its asker and arguments), two conversations, a journaled
    call, messages answered, failed, pending (leased by the old process) and
    parked for a confirmation, a model check and the instance key."""
    clock = Clock()
    path = tmp_path / "actionbot.db"
    async with await SQLiteStore.open(path, clock=clock) as store:
        await store.set_active("check_inventory", False, actor="slack:U1")
        await store.set_active("refund", True, actor="cli:root")
        await store.set_dry_run("refund", True, actor="slack:U1")
        await store.save_breaker("refund", "open", failures=5, open_until=clock.now + 30)
        await store.record_call(call("check_inventory", "k1", Outcome.SUCCESS, 100.0))
        await store.record_call(call("check_inventory", "k2", Outcome.SUCCESS, 200.0))
        await store.record_call(
            call("check_inventory", "k3", Outcome.TIMEOUT, 5000.0, error="timed out after 5 s")
        )
        clock.now += 10 * DAY
        await store.receive(
            message("E1"), route={"channel": "C1"}, owner="old:1", lease_seconds=LEASE
        )
        await store.start_call(
            "slack:E1", "k4", ordinal=0, action="check_inventory", arguments="{}"
        )
        journaled = call("check_inventory", "k4", Outcome.SUCCESS, 120.0, attempts=2, data={"n": 4})
        await store.record_call(
            journaled,
            conversation="C1:1.0",
            event_key="slack:E1",
            caller=caller_header("slack", "T1", "U1", "C1"),
            arguments='{"part_name":"screen","token":"***"}',
        )
        await store.record_call(call("check_inventory", "k5", Outcome.SUCCESS, 80.0))
        await store.record_call(
            call("refund", "k6", Outcome.HTTP_ERROR, 300.0, status=500, error="HTTP 500")
        )
        assert await store.prune_calls(5 * DAY) == 3  # the totals go on counting them
        await store.append_messages(
            "C1:1.0",
            platform="slack",
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "é ✓"}],
        )
        for turn in range(3):
            await store.append_messages(
                "D1", platform="discord", messages=[{"role": "user", "content": f"turn {turn}"}]
            )
        await store.settle("slack:E1", failed=False)
        await store.receive(message("E2"), route={}, owner="old:1", lease_seconds=LEASE)
        await store.settle("slack:E2", failed=True)
        await store.receive(message("E3", "D1"), route={}, owner="old:1", lease_seconds=LEASE)
        await store.receive(message("E4"), route={}, owner="old:1", lease_seconds=LEASE)
        asked = await store.request_confirmation(
            "slack:E4", "k7", action="refund", arguments={"order": "A1"}, requester="U1", ttl=600
        )
        await store.park("slack:E4", until=asked.expires_at)
        await store.record_model_check("http://llm:8000/v1", "llama", native_tools=False)
        await store.instance_key()
        await store.save_chat_action("order_status", {"name": "order_status"}, actor="slack:U1")
        await store.start_handoff(
            "slack:E2", conversation="slack:C1:1.0", platform="slack", seconds=DAY
        )
        facts = await what_it_says(store, asked.token)
    assert facts["call_counts"] == {"check_inventory": 5, "refund": 1}
    assert facts["inbox_counts"] == {"pending": 2, "done": 1, "failed": 1}
    assert [(row.idempotency_key, row.user_id) for row in facts["audit"]] == [
        ("k4", "U1"),
        ("k5", None),
        ("k6", None),
    ]
    return Source(path, clock, facts, asked.token)


async def migrate(tmp_path: Path, url: str, **settings: str) -> Finished:
    """`actionbot db migrate-to URL` with these settings (default: ACTIONBOT_DB, the file of
    `source`)."""
    env = base_env(**(settings or {"ACTIONBOT_DB": str(tmp_path / "actionbot.db")}))
    return await invoke_cli("db", "migrate-to", url, cwd=tmp_path, env=env)


def counts(output: str) -> dict[str, tuple[int, int]]:
    """`table: N copied, M already there` lines, by table."""
    found = re.findall(r"^(\w+): (\d+) copied, (\d+) already there$", output, re.M)
    return {table: (int(copied), int(present)) for table, copied, present in found}


async def rows_in(url: str) -> dict[str, int]:
    db = await asyncpg.connect(url)
    try:
        return {name: await db.fetchval(f"SELECT COUNT(*) FROM {name}") for name in TABLE_NAMES}  # noqa: S608
    finally:
        await db.close()


async def marks_in(path: Path, url: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The SQLite file's copy id, and the target's `instance` rows other than its key."""
    with closing(sqlite3.connect(path)) as source:
        [(mine,)] = source.execute("SELECT value FROM instance WHERE name = 'migration_id'")
    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch("SELECT name, value FROM instance WHERE name <> 'call_key'")
    finally:
        await db.close()
    return bytes(mine), [(row["name"], bytes(row["value"])) for row in rows]


def no_password(*runs: Finished) -> None:
    for run in runs:
        assert PASSWORD not in run.stdout + run.stderr


async def test_a_replica_on_the_copy_carries_on_where_sqlite_stopped(
    tmp_path: Path, source: Source, postgres_url: str
) -> None:
    """Every role reads back what SQLite said, including totals that counted pruned rows; a
    redelivered answered message is dropped, the pending one is claimed at once, the parked
    one waits for its click, a journaled call is not sent again, and new calls count on."""
    first = await migrate(tmp_path, postgres_url)
    assert first.code == 0, first.stderr
    assert counts(first.stdout) == {
        "action_state": (2, 0),
        "action_modes": (1, 0),
        "action_breakers": (1, 0),
        "calls": (3, 0),
        "call_totals": (3, 0),
        "action_activity": (2, 0),
        "conversations": (2, 0),
        "messages": (5, 0),
        "model_checks": (1, 0),
        "instance": (1, 0),
        "journal": (1, 0),
        "confirmations": (1, 0),
        "chat_actions": (1, 0),
        "handoffs": (1, 0),
        "inbox": (4, 0),
    }
    shown = postgres_url.replace(PASSWORD, "<password>")  # user, host, port and database
    assert f"ACTIONBOT_DATABASE_URL={shown} and restart" in first.stdout
    assert (await rows_in(postgres_url))["calls"] == 3

    async with await PostgresStore.open(postgres_url, clock=source.clock) as replica:
        assert await what_it_says(replica, source.token) == source.facts
        assert [made.name for made in await replica.chat_actions()] == ["order_status"]
        assert await replica.handed_off("slack:C1:1.0") == source.clock.now + DAY
        assert (
            await replica.receive(message("E1"), route={}, owner="new:1", lease_seconds=LEASE)
            is None
        )
        assert (
            await replica.receive(message("E2"), route={}, owner="new:1", lease_seconds=LEASE)
            is None
        )
        claimed = await replica.claim(
            owner="new:1", lease_seconds=LEASE, platforms=["slack"], limit=10
        )
        assert [(found.key, found.attempts) for found in claimed] == [("slack:E3", 2)]
        recorded = await replica.start_call("slack:E1", "k4", ordinal=0, action="x", arguments="{}")
        assert recorded == call(
            "check_inventory", "k4", Outcome.SUCCESS, 120.0, attempts=2, data={"n": 4}
        )
        assert await replica.decide(source.token, confirmed=True, by="U1")
        assert await replica.wake("slack:E4")  # it was still parked
        await replica.record_call(call("check_inventory", "k8", Outcome.SUCCESS, 90.0))
        assert await replica.call_counts() == {"check_inventory": 6, "refund": 1}
        await replica.append_messages(
            "D1", platform="discord", messages=[{"role": "user", "content": "more"}]
        )
        history = await replica.load_messages("D1", limit=100)
        assert [m["content"] for m in history] == ["turn 0", "turn 1", "turn 2", "more"]
    no_password(first)


async def test_a_second_run_copies_nothing(
    tmp_path: Path, source: Source, postgres_url: str
) -> None:
    """Every table says `0 copied` and what the first run copied is `already there`; no row
    count moves, and the totals are not counted twice."""
    first = await migrate(tmp_path, postgres_url)
    assert first.code == 0, first.stderr
    before = await rows_in(postgres_url)
    second = await migrate(tmp_path, postgres_url)
    assert second.code == 0, second.stderr
    assert await rows_in(postgres_url) == before
    assert counts(second.stdout) == {
        table: (0, copied) for table, (copied, _) in counts(first.stdout).items()
    }
    assert set(counts(second.stdout)) == set(TABLE_NAMES)
    mine, marks = await marks_in(source.path, postgres_url)
    assert dict(marks)["copied_from"] == mine  # the file's own id is not copied as a row
    assert sorted(dict(marks)) == ["copied_from", "copy_done"]
    async with await PostgresStore.open(postgres_url, clock=source.clock) as replica:
        assert await what_it_says(replica, source.token) == source.facts
        assert [made.name for made in await replica.chat_actions()] == ["order_status"]
        assert await replica.handed_off("slack:C1:1.0") == source.clock.now + DAY
    no_password(first, second)


async def test_running_it_again_after_replicas_used_the_copy_is_refused(
    tmp_path: Path, source: Source, postgres_url: str
) -> None:
    """The copy finished and a replica has worked on the database since: running the copy
    again (by mistake) is refused, so the replicas' totals are not overwritten."""
    first = await migrate(tmp_path, postgres_url)
    assert first.code == 0, first.stderr
    async with await PostgresStore.open(postgres_url, clock=source.clock) as replica:
        await replica.record_call(call("check_inventory", "r1", Outcome.SUCCESS, 50.0))
        totals = await replica.call_totals()
    before = await rows_in(postgres_url)
    again = await migrate(tmp_path, postgres_url)
    assert again.code == 1
    assert "changes since this copy finished" in again.stderr
    assert counts(again.stdout) == {}
    assert await rows_in(postgres_url) == before
    async with await PostgresStore.open(postgres_url, clock=source.clock) as replica:
        assert await replica.call_totals() == totals
    no_password(first, again)


async def test_an_interrupted_copy_is_completed_by_running_it_again(
    tmp_path: Path, source: Source, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops in the second batch of messages (batches of 2 here): the command
    fails without the password and says to run it again; the run again copies the rest, and
    only the rest. The source is named by ACTIONBOT_DATABASE_URL=sqlite:///… this time."""
    monkeypatch.setattr(transfer, "BATCH_ROWS", 2)
    write_batch = transfer._write_batch
    written: list[str] = []

    async def dropped(pool: asyncpg.Pool, table: Table, rows: Sequence[Sequence[Any]]) -> int:
        written.append(table.name)
        if written.count("messages") == 2:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return await write_batch(pool, table, rows)

    monkeypatch.setattr(transfer, "_write_batch", dropped)
    settings = {"ACTIONBOT_DATABASE_URL": f"sqlite:///{source.path}"}
    broken = await migrate(tmp_path, postgres_url, **settings)
    assert broken.code == 1
    assert "Copying messages into the database at 127.0.0.1:" in broken.stderr
    assert "Connection reset by peer. Run the command again" in broken.stderr
    assert "conversations" in counts(broken.stdout)
    assert "messages" not in counts(broken.stdout)

    monkeypatch.setattr(transfer, "_write_batch", write_batch)
    again = await migrate(tmp_path, postgres_url, **settings)
    assert again.code == 0, again.stderr
    done = counts(again.stdout)
    assert done["calls"] == (0, 3)
    assert done["conversations"] == (0, 2)
    assert done["messages"] == (3, 2)
    assert done["inbox"] == (4, 0)
    async with await PostgresStore.open(postgres_url, clock=source.clock) as replica:
        assert await what_it_says(replica, source.token) == source.facts
        assert [made.name for made in await replica.chat_actions()] == ["order_status"]
        assert await replica.handed_off("slack:C1:1.0") == source.clock.now + DAY
    no_password(broken, again)


async def test_a_database_another_bot_ran_on_is_refused(
    tmp_path: Path, source: Source, postgres_url: str
) -> None:
    """Its own instance key would give calls other Idempotency-Keys: nothing is copied."""
    async with await PostgresStore.open(postgres_url) as other:
        await other.instance_key()
    refused = await migrate(tmp_path, postgres_url)
    assert refused.code == 1
    assert "already has an instance key of its own" in refused.stderr
    assert (await rows_in(postgres_url))["calls"] == 0
    no_password(refused)


async def test_a_database_replicas_ran_on_with_the_webhook_secret_is_refused(
    tmp_path: Path, source: Source, postgres_url: str
) -> None:
    """With ACTIONBOT_WEBHOOK_SECRET set, the secret is the replicas' instance key, so their
    database has none of its own; their calls and messages still make it theirs. Nothing is
    copied (no mark either): their rows and totals stay as they were."""
    async with await PostgresStore.open(postgres_url, clock=source.clock) as replica:
        await replica.record_call(call("check_inventory", "r1", Outcome.SUCCESS, 50.0))
        await replica.receive(message("R1"), route={}, owner="new:1", lease_seconds=LEASE)
        totals = await replica.call_totals()
    before = await rows_in(postgres_url)
    assert before["calls"] == before["inbox"] == 1

    settings = {"ACTIONBOT_DB": str(source.path), "ACTIONBOT_WEBHOOK_SECRET": WEBHOOK_SECRET}
    refused = await migrate(tmp_path, postgres_url, **settings)
    assert refused.code == 1
    assert f"An ActionBot has run on the database at {describe(postgres_url)}: " in refused.stderr
    assert "Copy into a new, empty database instead." in refused.stderr
    assert counts(refused.stdout) == {}
    assert await rows_in(postgres_url) == before
    assert (await marks_in(source.path, postgres_url))[1] == []
    async with await PostgresStore.open(postgres_url, clock=source.clock) as replica:
        assert await replica.call_totals() == totals
        assert await replica.call_counts() == {"check_inventory": 1}
    no_password(refused)
    assert WEBHOOK_SECRET not in refused.stdout + refused.stderr


async def test_a_database_another_sqlite_file_was_copied_into_is_refused(
    tmp_path: Path, source: Source, postgres_url: str
) -> None:
    """The target's mark names the file copied into it: another file (with no instance key
    to tell it apart) is refused, and the first file's copy can still be run again."""
    assert (await migrate(tmp_path, postgres_url)).code == 0
    before = await rows_in(postgres_url)
    other = tmp_path / "other" / "actionbot.db"
    async with await SQLiteStore.open(other) as store:
        await store.record_call(call("refund", "k1", Outcome.SUCCESS, 10.0))
    refused = await migrate(tmp_path, postgres_url, ACTIONBOT_DB=str(other))
    assert refused.code == 1
    assert "already has bot data (calls, messages, conversations, toggles) this" in refused.stderr
    assert await rows_in(postgres_url) == before
    again = await migrate(tmp_path, postgres_url)
    assert again.code == 0, again.stderr
    assert await rows_in(postgres_url) == before
    no_password(refused, again)


@pytest.mark.parametrize(
    "url", ["mysql://root:hunter2@db/actionbot", "sqlite:///hunter2.db", "hunter2"]
)
async def test_only_postgresql_is_a_target(tmp_path: Path, source: Source, url: str) -> None:
    refused = await migrate(tmp_path, url)
    assert refused.code == 2
    assert "The target must be a PostgreSQL URL (postgresql://" in refused.stderr
    assert "hunter2" not in refused.stdout + refused.stderr


async def test_an_unreadable_url_is_refused(tmp_path: Path, source: Source) -> None:
    refused = await migrate(tmp_path, "postgresql://actionbot:hunter2@db:port/actionbot")
    assert refused.code == 2
    assert "The target URL cannot be read: check its host and port" in refused.stderr
    assert "hunter2" not in refused.stdout + refused.stderr


async def test_an_unreachable_server_is_named_without_the_password(
    tmp_path: Path, source: Source
) -> None:
    port = closed_port()
    refused = await migrate(tmp_path, f"postgresql://actionbot:hunter2@127.0.0.1:{port}/x")
    assert refused.code == 1
    assert f"Cannot connect to the database at 127.0.0.1:{port}/x" in refused.stderr
    assert "hunter2" not in refused.stdout + refused.stderr


async def test_a_missing_sqlite_file_is_refused(tmp_path: Path) -> None:
    refused = await migrate(tmp_path, "postgresql://actionbot:hunter2@127.0.0.1:1/actionbot")
    assert refused.code == 1
    assert f"There is no SQLite database at {tmp_path / 'actionbot.db'}" in refused.stderr
    assert "hunter2" not in refused.stdout + refused.stderr
    assert not (tmp_path / "actionbot.db").exists()


async def test_the_source_must_be_sqlite(tmp_path: Path) -> None:
    target = "postgresql://actionbot:hunter2@127.0.0.1:1/new"
    settings = {"ACTIONBOT_DATABASE_URL": "postgresql://actionbot:s3cret@127.0.0.1:1/old"}
    refused = await migrate(tmp_path, target, **settings)
    assert refused.code == 2
    assert "already name a PostgreSQL database (127.0.0.1:1/old)" in refused.stderr
    assert "hunter2" not in refused.stdout + refused.stderr
    assert "s3cret" not in refused.stdout + refused.stderr
