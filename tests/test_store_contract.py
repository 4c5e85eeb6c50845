"""The store's contract: every role of `bot.store`, run against each implementation the
`role_store` fixture yields (SQLite today; a second backend adds itself to `BACKENDS`).
Implementation details (files, migrations, WAL) are tested in test_store.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.store import Store, first_delivery
from bot.store.sqlite import SQLiteStore
from bot.types import ActionResult, Outcome

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def open_sqlite(tmp_path: Path, clock: Clock) -> Store:
    return await SQLiteStore.open(tmp_path / "contract.db", clock=clock)


BACKENDS: dict[str, Callable[[Path, Clock], Awaitable[Store]]] = {"sqlite": open_sqlite}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=sorted(BACKENDS))
async def role_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Store]:
    """One store of each backend, opened fresh and closed after the test."""
    store = await BACKENDS[request.param](tmp_path, clock)
    try:
        yield store
    finally:
        await store.close()


def call(action: str, outcome: Outcome = Outcome.SUCCESS, latency_ms: float = 10.0) -> ActionResult:
    return ActionResult(
        action=action,
        call_id=f"{action}-{outcome}-{latency_ms}",
        outcome=outcome,
        latency_ms=latency_ms,
        error=None if outcome is Outcome.SUCCESS else f"{outcome.value} happened",
    )


async def test_action_state_round_trip(role_store: Store, clock: Clock) -> None:
    """A toggle is read back with its actor and time; the latest toggle wins."""
    await role_store.set_active("check_inventory", False, actor="slack:U1")
    clock.now += 60
    await role_store.set_active("check_inventory", True, actor="cli:ops")
    state = (await role_store.action_states())["check_inventory"]
    assert (state.active, state.changed_by, state.changed_at.timestamp()) == (
        True,
        "cli:ops",
        T0 + 60,
    )


async def test_call_log_counts_every_outcome_exactly(role_store: Store) -> None:
    """Concurrent recordings of every outcome (busy included) add up in stats, totals and
    counts alike."""
    results = [call("a", outcome) for outcome in Outcome for _ in range(3)] + [call("b")]
    await asyncio.gather(*(role_store.record_call(r, conversation="t:c") for r in results))
    [a] = await role_store.stats("a")
    assert (a.calls, a.successes) == (3 * len(Outcome), 3)
    assert a.failures == {o.value: 3 for o in Outcome if o is not Outcome.SUCCESS}
    assert await role_store.call_counts() == {"a": 3 * len(Outcome), "b": 1}
    totals = await role_store.call_totals()
    assert ("a", "busy", 3) in totals
    assert [s.action for s in await role_store.stats()] == ["a", "b"]


async def test_unknown_action_has_a_zero_stats_row(role_store: Store) -> None:
    """Stats for an action never called are zeros, not an error."""
    [row] = await role_store.stats("never_called")
    assert (row.calls, row.successes, row.failures, row.avg_latency_ms) == (0, 0, {}, None)


async def test_conversation_keeps_order_limit_and_age(role_store: Store, clock: Clock) -> None:
    """Messages come back oldest first, the newest `limit` of them; a conversation is known
    until it is pruned for age, and counts as active while recent."""
    for n in range(5):
        await role_store.append_messages(
            "slack:C1", platform="slack", messages=[{"role": "user", "content": str(n)}]
        )
    loaded = await role_store.load_messages("slack:C1", limit=3)
    assert [m["content"] for m in loaded] == ["2", "3", "4"]
    assert await role_store.has_conversation("slack:C1")
    assert not await role_store.has_conversation("slack:C2")
    assert await role_store.active_conversations(3600) == 1
    clock.now += 10 * 86400
    assert await role_store.active_conversations(3600) == 0
    assert await role_store.prune_conversations(86400) == 1
    assert not await role_store.has_conversation("slack:C1")
    assert await role_store.load_messages("slack:C1", limit=3) == []


async def test_event_inbox_admits_each_id_once(role_store: Store, clock: Clock) -> None:
    """Of many concurrent deliveries of one event exactly one is first; ids are forgotten
    only once older than the retention."""
    firsts = await asyncio.gather(*(first_delivery(role_store, "slack", "Ev1") for _ in range(20)))
    assert firsts.count(True) == 1
    assert await first_delivery(role_store, "slack", None)
    clock.now += 100
    assert await role_store.mark_seen("slack:Ev2")
    assert await role_store.prune_seen(50) == 1
    assert await role_store.mark_seen("slack:Ev1")
    assert not await role_store.mark_seen("slack:Ev2")


async def test_model_checks_remember_the_latest_finding(role_store: Store) -> None:
    """Unknown until checked; then what the last check found, per endpoint and model."""
    url = "http://localhost:11434/v1"
    assert await role_store.native_tools(url, "llama3.1") is None
    await role_store.record_model_check(url, "llama3.1", native_tools=False)
    await role_store.record_model_check(url, "qwen2.5", native_tools=True)
    await role_store.record_model_check(url, "llama3.1", native_tools=True)
    assert await role_store.native_tools(url, "llama3.1") is True
    assert await role_store.native_tools(url, "qwen2.5") is True
    assert await role_store.native_tools("https://api.openai.com/v1", "llama3.1") is None


async def test_ping_answers_while_open(role_store: Store) -> None:
    """Readiness: the store answers a ping."""
    assert await role_store.ping()
