"""The store's contract: every role of `bot.store`, run against each implementation the
`role_store` fixture yields (SQLite today; a second backend adds itself to `BACKENDS`).
Implementation details (files, migrations, WAL) are tested in test_store.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store import AuditRow, BreakerRecord, Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from bot.types import ActionResult, IncomingMessage, Outcome, Reply, caller_header

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=BACKENDS)
async def role_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Store]:
    """One store of each backend, opened fresh and closed after the test."""
    store: Store
    if request.param == "sqlite":
        store = await SQLiteStore.open(tmp_path / "contract.db", clock=clock)
    else:
        url = request.getfixturevalue("postgres_url")
        store = await PostgresStore.open(url, clock=clock)
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


def incoming(
    event_id: str, conversation: str = "C1:1.0", platform: str = "slack"
) -> IncomingMessage:
    return IncomingMessage(
        platform=platform, conversation=conversation, user_id="U1", text="hi", event_id=event_id
    )


ROUTE = {"channel": "C1", "thread_ts": "1.0"}


async def test_inbox_runs_each_event_once_and_takes_over_expired_leases(
    role_store: Store, clock: Clock
) -> None:
    """Of many concurrent deliveries of one event exactly one runs; a redelivery while the
    lease holds is dropped, after it expires it is taken over with one more attempt, and
    once settled every delivery is dropped."""
    entries = await asyncio.gather(
        *(
            role_store.receive(incoming("Ev1"), route=ROUTE, owner="a:1", lease_seconds=60)
            for _ in range(20)
        )
    )
    first = [e for e in entries if e is not None]
    assert len(first) == 1
    assert (first[0].key, first[0].attempts, first[0].route) == ("slack:Ev1", 1, ROUTE)
    clock.now += 59
    assert (
        await role_store.receive(incoming("Ev1"), route=ROUTE, owner="b:2", lease_seconds=60)
        is None
    )
    clock.now += 2
    taken = await role_store.receive(incoming("Ev1"), route=ROUTE, owner="b:2", lease_seconds=60)
    assert taken is not None
    assert (taken.attempts, taken.message.text) == (2, "hi")
    await role_store.settle("slack:Ev1", failed=False)
    clock.now += 1000
    assert (
        await role_store.receive(incoming("Ev1"), route=ROUTE, owner="c:3", lease_seconds=60)
        is None
    )
    assert await role_store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def test_inbox_claims_expired_and_released_messages_in_arrival_order(
    role_store: Store, clock: Clock
) -> None:
    """`claim` takes pending messages of the asked platforms whose lease expired (released
    ones at once; with `host`, those of an earlier process of that host), oldest first, with
    what the earlier attempt left: route changes, progress and reply."""
    for n in range(3):
        await role_store.receive(incoming(f"E{n}"), route=ROUTE, owner="h:1", lease_seconds=60)
    await role_store.receive(
        incoming("D1", platform="discord"), route={}, owner="h:1", lease_seconds=60
    )
    unleased = await role_store.receive(incoming("E3"), route=ROUTE, owner="h:1", lease_seconds=0)
    assert unleased is None  # written down for the next start, not run
    await role_store.update_route("slack:E1", {"placeholder": "9.9"})
    await role_store.save_progress("slack:E1", [{"role": "user", "content": "hi"}])
    await role_store.release("slack:E1")
    await role_store.finish_turn(
        "slack:C1:1.0", platform="slack", messages=[], event_key="slack:E2", reply=Reply(text="ok")
    )
    assert await role_store.lease_owners("h:") == ["h:1"]
    assert await role_store.lease_owners("other:") == []
    claimed = await role_store.claim(owner="h:2", lease_seconds=60, platforms=["slack"], limit=10)
    assert [e.key for e in claimed] == ["slack:E1", "slack:E3"]
    assert claimed[0].route == {**ROUTE, "placeholder": "9.9"}
    assert claimed[0].progress == [{"role": "user", "content": "hi"}]
    assert (claimed[0].attempts, claimed[1].attempts) == (2, 1)
    assert (
        await role_store.claim(owner="h:2", lease_seconds=60, platforms=["slack"], limit=10) == []
    )
    again = await role_store.claim(
        owner="h:2", lease_seconds=60, platforms=["slack", "discord"], limit=10, previous=["h:1"]
    )
    assert [e.key for e in again] == ["slack:E0", "slack:E2", "discord:D1"]
    assert again[1].reply == Reply(text="ok")
    held = ["slack:E0", "slack:E1", "slack:E2", "slack:E3", "discord:D1", "slack:unknown"]
    assert await role_store.renew("h:2", held[1:], 60) == 4  # only the keys named
    assert await role_store.renew("other:1", held, 60) == 0  # only its own leases
    clock.now += 61
    assert await role_store.claim(owner="x:1", lease_seconds=60, platforms=["slack"], limit=1) != []


async def test_inbox_retention_deletes_old_messages(role_store: Store, clock: Clock) -> None:
    """Messages received longer ago than the retention are deleted, settled or not."""
    await role_store.receive(incoming("old"), route=ROUTE, owner="a:1", lease_seconds=60)
    await role_store.settle("slack:old", failed=True)
    clock.now += 100
    await role_store.receive(incoming("new"), route=ROUTE, owner="a:1", lease_seconds=60)
    assert await role_store.prune_inbox(50) == 1
    assert await role_store.inbox_counts() == {"pending": 1, "done": 0, "failed": 0}


async def test_journal_returns_the_recorded_result_of_a_finished_call(
    role_store: Store, clock: Clock
) -> None:
    """A call journaled but not finished has no result (send it again with its key); once
    recorded with its event key, the result comes back and the call log counts it once."""
    first = await role_store.start_call("slack:E1", "k1", ordinal=0, action="a", arguments="{}")
    assert first is None
    again = await role_store.start_call("slack:E1", "k1", ordinal=0, action="a", arguments="{}")
    assert again is None
    result = ActionResult(
        action="a", call_id="k1", outcome=Outcome.SUCCESS, latency_ms=5, data={"n": 1}, attempts=2
    )
    await role_store.record_call(result, conversation="slack:C1", event_key="slack:E1")
    recorded = await role_store.start_call("slack:E1", "k1", ordinal=0, action="a", arguments="{}")
    assert recorded == result
    [stats] = await role_store.stats("a")
    assert (stats.calls, stats.attempts) == (1, 2)
    other = await role_store.start_call("slack:E2", "k1", ordinal=0, action="a", arguments="{}")
    assert other is None  # keys belong to their event
    clock.now += 100
    assert await role_store.prune_journal(50) == 2
    assert await role_store.prune_calls(50) == 1
    assert (await role_store.stats("a"))[0].calls == 1  # totals keep counting pruned rows


async def test_finish_turn_saves_history_and_reply_together(role_store: Store) -> None:
    """The finished turn's messages and its reply are saved together; the instance key is
    created once and then stays the same."""
    await role_store.receive(incoming("E1"), route=ROUTE, owner="a:1", lease_seconds=60)
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    await role_store.finish_turn(
        "slack:C1:1.0",
        platform="slack",
        messages=messages,
        event_key="slack:E1",
        reply=Reply(text="hello"),
    )
    assert await role_store.load_messages("slack:C1:1.0", limit=10) == messages
    key = await role_store.instance_key()
    assert len(key) == 32
    assert await role_store.instance_key() == key


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


async def test_a_confirmation_is_decided_once_and_not_after_it_expired(
    role_store: Store, clock: Clock
) -> None:
    """Asked once per call (asking again returns it), found by token, decided by the first
    answer only, never after it expired; a parked message stays out of claims until then."""
    await role_store.receive(incoming("E1"), route=ROUTE, owner="a:1", lease_seconds=60)
    first = await role_store.request_confirmation(
        "slack:E1",
        "k1",
        action="create_return",
        arguments={"order": "A-1"},
        requester="U1",
        ttl=600,
    )
    again = await role_store.request_confirmation(
        "slack:E1",
        "k1",
        action="create_return",
        arguments={"order": "A-1"},
        requester="U1",
        ttl=600,
    )
    assert again == first
    assert (first.state, first.requester, first.arguments) == ("pending", "U1", {"order": "A-1"})
    assert await role_store.confirmation_by_token(first.token) == first
    await role_store.park("slack:E1", until=first.expires_at)
    assert await role_store.claim(owner="b:1", lease_seconds=60, platforms=["slack"], limit=5) == []
    assert await role_store.decide(first.token, confirmed=True, by="U1")
    assert not await role_store.decide(first.token, confirmed=False, by="U1")
    decided = await role_store.confirmation("slack:E1", "k1")
    assert decided is not None
    assert decided.state == "confirmed"

    late = await role_store.request_confirmation(
        "slack:E1", "k2", action="create_return", arguments={}, requester="U1", ttl=10
    )
    clock.now += 11
    assert late.expired(clock.now)
    assert not await role_store.decide(late.token, confirmed=True, by="U1")
    assert await role_store.confirmation_by_token("no-such-token") is None


async def test_a_turn_waits_only_for_earlier_pending_messages_of_its_conversation(
    role_store: Store, clock: Clock
) -> None:
    """`earlier_pending` lists the messages of the same conversation that arrived before
    and are still pending, with who holds each; answered ones, parked ones (waiting for a
    click), later ones and other conversations are not listed."""
    written = [
        await role_store.receive(incoming(f"E{n}"), route=ROUTE, owner="a:1", lease_seconds=60)
        for n in range(4)
    ]
    other = await role_store.receive(
        incoming("X0", conversation="C9:2.0"), route=ROUTE, owner="a:1", lease_seconds=60
    )
    # receive says whether anything of the conversation was pending ahead of it
    assert [e.first_in_line for e in written if e] + [other and other.first_in_line] == [
        True,
        False,
        False,
        False,
        True,
    ]
    await role_store.receive(
        incoming("D0", platform="discord", conversation="C1:1.0"),
        route={},
        owner="a:1",
        lease_seconds=60,
    )
    counts = [len(await role_store.earlier_pending(f"slack:E{n}")) for n in range(4)]
    assert counts == [0, 1, 2, 3]
    assert await role_store.earlier_pending("slack:E2") == [
        ("slack:E0", "a:1"),
        ("slack:E1", "a:1"),
    ]
    assert await role_store.earlier_pending("slack:X0") == []
    assert await role_store.earlier_pending("discord:D0") == []  # another platform's thread
    await role_store.settle("slack:E0", failed=False)
    await role_store.park("slack:E1", until=clock.now + 600)
    await role_store.release("slack:E2")
    assert await role_store.earlier_pending("slack:E3") == [("slack:E2", None)]  # not parked
    clock.now += 61  # E3's own lease expired too: expired holders read as nobody
    await role_store.receive(incoming("E2"), route=ROUTE, owner="b:2", lease_seconds=60)
    assert await role_store.earlier_pending("slack:E3") == [("slack:E2", "b:2")]
    await role_store.settle("slack:E2", failed=True)
    assert await role_store.earlier_pending("slack:E3") == []
    assert await role_store.earlier_pending("slack:unknown") == []
    await role_store.settle("slack:E3", failed=False)
    after_parked = await role_store.receive(
        incoming("E4"), route=ROUTE, owner="a:1", lease_seconds=60
    )
    assert after_parked is not None
    assert after_parked.first_in_line  # only E1 is pending, and it waits for a click


async def test_a_deferred_message_keeps_its_attempts(role_store: Store, clock: Clock) -> None:
    """`defer` leaves a message for the next claim without counting the attempt it used;
    neither it nor `release` touches a message another process holds now."""
    await role_store.receive(incoming("E1"), route=ROUTE, owner="a:1", lease_seconds=60)
    await role_store.defer("slack:E1", owner="b:2")
    await role_store.release("slack:E1", owner="b:2")
    assert await role_store.earlier_pending("slack:E1") == []
    assert await role_store.claim(owner="c:3", lease_seconds=60, platforms=["slack"], limit=5) == []
    await role_store.defer("slack:E1", owner="a:1")
    [claimed] = await role_store.claim(owner="a:1", lease_seconds=60, platforms=["slack"], limit=5)
    assert (claimed.key, claimed.attempts) == ("slack:E1", 1)


async def test_a_lease_has_one_holder_until_it_expires_or_is_dropped(
    role_store: Store, clock: Clock
) -> None:
    """Of many concurrent takers exactly one gets a free lease; its holder can renew it,
    others cannot take it until it expires, and a dropped lease is free at once."""
    taken = await asyncio.gather(
        *(role_store.hold_lease("discord-shard-0", owner=f"r:{n}", seconds=30) for n in range(10))
    )
    assert taken.count(True) == 1
    holder = f"r:{taken.index(True)}"
    other = "r:99"
    assert await role_store.lease_holder("discord-shard-0") == holder
    assert await role_store.lease_holder("discord-shard-9") is None
    clock.now += 20
    assert await role_store.hold_lease("discord-shard-0", owner=holder, seconds=30)  # renewed
    clock.now += 29
    assert not await role_store.hold_lease("discord-shard-0", owner=other, seconds=30)
    assert await role_store.hold_lease("discord-shard-1", owner=other, seconds=30)  # another
    clock.now += 2
    assert await role_store.lease_holder("discord-shard-0") is None  # expired
    assert await role_store.hold_lease("discord-shard-0", owner=other, seconds=30)
    assert not await role_store.hold_lease("discord-shard-0", owner=holder, seconds=30)
    await role_store.drop_lease("discord-shard-0", owner=holder)  # not its own: no effect
    assert not await role_store.hold_lease("discord-shard-0", owner=holder, seconds=30)
    await role_store.drop_lease("discord-shard-0", owner=other)
    assert await role_store.hold_lease("discord-shard-0", owner=holder, seconds=30)
    clock.now += 100  # both expired 70 s ago or more
    assert await role_store.prune_leases(3600) == 0
    assert await role_store.prune_leases(60) == 2
    assert await role_store.lease_holder("discord-shard-0") is None


async def test_turn_inputs_are_the_history_the_toggles_and_the_modes(
    role_store: Store, clock: Clock
) -> None:
    """`turn_inputs` reads what `load_messages`, `action_states` and `action_modes` read, in
    one go."""
    for n in range(5):
        await role_store.append_messages(
            "slack:C1", platform="slack", messages=[{"role": "user", "content": f"m{n}"}]
        )
    await role_store.append_messages(
        "slack:C2", platform="slack", messages=[{"role": "user", "content": "other"}]
    )
    await role_store.set_active("refund", False, actor="slack:U1")
    await role_store.set_active("check_inventory", True, actor="cli:ops")
    await role_store.set_dry_run("refund", True, actor="slack:U1")
    await role_store.set_dry_run("order_status", False, actor="slack:U1")
    history, states, modes = await role_store.turn_inputs("slack:C1", limit=3)
    assert history == await role_store.load_messages("slack:C1", limit=3)
    assert [m["content"] for m in history] == ["m2", "m3", "m4"]
    assert states == await role_store.action_states()
    assert {name: state.active for name, state in states.items()} == {
        "refund": False,
        "check_inventory": True,
    }
    assert modes == {"refund": True, "order_status": False}
    assert await role_store.turn_inputs("slack:none", limit=3) == ([], states, modes)


async def test_p95_is_taken_over_the_call_rows_kept(role_store: Store, clock: Clock) -> None:
    """After old rows are deleted, p95 is the nearest rank over the rows still kept (the
    totals still count every call): ten kept calls of 1…10 ms give 10 ms."""
    for n in range(90):
        await role_store.record_call(call("a", latency_ms=1000.0 + n))
    clock.now += 86400
    for latency in range(1, 11):
        await role_store.record_call(call("a", latency_ms=float(latency)))
    assert await role_store.prune_calls(3600) == 90
    [stats] = await role_store.stats("a")
    assert stats.calls == 100
    assert stats.p95_latency_ms == 10.0


async def test_a_handoff_silences_its_conversation_until_resumed_or_expired(
    role_store: Store, clock: Clock
) -> None:
    """A handoff holds for its time; a replay of the same turn does not start a second;
    resuming by channel ends the handoffs of the channel's threads and no other; counts
    cover every handoff and the ones still open."""
    started = await role_store.start_handoff(
        "slack:Ev1", conversation="slack:C1:1.0", platform="slack", seconds=3600
    )
    replayed = await role_store.start_handoff(
        "slack:Ev1", conversation="slack:C1:1.0", platform="slack", seconds=3600
    )
    assert (started, replayed) == (True, False)
    await role_store.start_handoff(
        "slack:Ev2", conversation="slack:C10:2.0", platform="slack", seconds=3600
    )
    await role_store.start_handoff(
        "discord:9", conversation="discord:thread:9", platform="discord", seconds=60
    )
    assert await role_store.handed_off("slack:C1:1.0") == T0 + 3600
    assert await role_store.handed_off("slack:C1:3.0") is None
    assert await role_store.handoff_counts() == (3, 3)
    clock.now += 61  # the Discord one expires
    assert await role_store.handed_off("discord:thread:9") is None
    assert await role_store.end_handoffs("slack:C1", by="slack:UADMIN") == ["slack:C1:1.0"]
    assert await role_store.handed_off("slack:C1:1.0") is None
    assert await role_store.handed_off("slack:C10:2.0") == T0 + 3600
    assert await role_store.end_handoffs("slack:C1", by="slack:UADMIN") == []
    assert await role_store.handoff_counts() == (3, 1)


async def test_recent_activity_counts_calls_per_hour_and_outcome(
    role_store: Store, clock: Clock
) -> None:
    """The last 24 hours by hour, oldest first, with outcomes and a nearest-rank p95; calls
    older than the window are not counted."""
    await role_store.record_call(call("a", latency_ms=5.0))  # 25 hours before "now"
    clock.now += 3600 * 2
    for latency in range(1, 21):
        await role_store.record_call(call("a", latency_ms=float(latency)))
    clock.now += 3600 * 23 + 1800  # they are 23.5 hours old: the oldest hour
    await role_store.record_call(call("a", Outcome.TIMEOUT, latency_ms=1000.0))
    await role_store.record_call(call("b", Outcome.HTTP_ERROR, latency_ms=7.0))
    recent = await role_store.recent_activity(hours=24)
    assert sorted(recent) == ["a", "b"]
    a = recent["a"]
    assert len(a.hourly) == 24
    assert a.hourly[0] == 20
    assert a.hourly[-1] == 1
    assert sum(a.hourly) == 21
    assert a.outcomes == {"success": 20, "timeout": 1}
    assert a.p95_latency_ms == 20.0  # rank ceil(0.95 * 21) = 20 of 1…20, 1000
    assert a.success_rate == 20 / 21
    only_b = await role_store.recent_activity(hours=24, name="b")
    assert list(only_b) == ["b"]
    assert only_b["b"].outcomes == {"http_error": 1}


async def test_chat_actions_are_kept_renamed_and_deleted(role_store: Store, clock: Clock) -> None:
    """Actions made in chat are kept with their definition in the order they were made; an
    edit that renames one keeps its place and who made it; deleting says whether it was
    there."""
    first = {"name": "a", "display_name": "A", "url": "https://x.example/a"}
    await role_store.save_chat_action("a", first, actor="slack:U1")
    clock.now += 1
    await role_store.save_chat_action("b", {"name": "b"}, actor="slack:U2")
    clock.now += 1
    renamed = dict(first, name="a2")
    await role_store.save_chat_action("a2", renamed, actor="slack:U3", previous="a")

    kept = await role_store.chat_actions()
    assert [(c.name, c.updated_by) for c in kept] == [("a2", "slack:U3"), ("b", "slack:U2")]
    assert kept[0].definition == renamed
    assert kept[0].updated_at == T0 + 2
    assert await role_store.delete_chat_action("b") is True
    assert await role_store.delete_chat_action("b") is False
    assert [c.name for c in await role_store.chat_actions()] == ["a2"]


def audited(action: str, n: int, outcome: Outcome = Outcome.SUCCESS) -> ActionResult:
    return ActionResult(
        action=action,
        call_id=f"{action}-{n}",
        outcome=outcome,
        latency_ms=float(n),
        status=200 if outcome is Outcome.SUCCESS else None,
        attempts=1 + n % 2,
        error=None if outcome is Outcome.SUCCESS else "HTTP 503",
    )


async def test_an_audit_row_says_who_asked_with_what_and_how_it_went(
    role_store: Store, clock: Clock
) -> None:
    """The caller header is kept split into its fields, the arguments as the JSON text sent,
    the call id as the idempotency key; a call recorded without them has None there."""
    caller = caller_header("slack", "T1", "U42", "C7")
    arguments = '{"card":"***","part_name":"screen"}'
    await role_store.record_call(
        audited("refund", 3), conversation="slack:C7:1.0", caller=caller, arguments=arguments
    )
    clock.now += 5
    await role_store.record_call(audited("refund", 4, Outcome.HTTP_ERROR))
    first, second = await role_store.audit_page()
    assert first == AuditRow(
        id=first.id,
        recorded_at=datetime.fromtimestamp(T0, tz=UTC),
        action="refund",
        platform="slack",
        team="T1",
        user_id="U42",
        channel="C7",
        conversation="slack:C7:1.0",
        arguments=arguments,
        idempotency_key="refund-3",
        outcome="success",
        status=200,
        latency_ms=3.0,
        attempts=2,
        error=None,
    )
    assert (second.platform, second.user_id, second.arguments, second.conversation) == (
        None,
        None,
        None,
        None,
    )
    assert (second.outcome, second.status, second.error, second.attempts) == (
        "http_error",
        None,
        "HTTP 503",
        1,
    )
    assert second.id > first.id
    assert second.recorded_at.timestamp() == T0 + 5


async def test_audit_pages_follow_the_id_with_since_and_action_filters(
    role_store: Store, clock: Clock
) -> None:
    """Pages continue after the last id, by id; `since` leaves out older rows, `action` other
    actions' rows, and both together narrow to both."""
    for n in range(10):
        await role_store.record_call(audited("a" if n % 2 else "b", n))
        clock.now += 60
    every = await role_store.audit_page(limit=100)
    assert [row.idempotency_key for row in every] == [
        f"{'a' if n % 2 else 'b'}-{n}" for n in range(10)
    ]
    ids = [row.id for row in every]
    assert ids == sorted(ids)
    first = await role_store.audit_page(limit=4)
    rest = await role_store.audit_page(after_id=first[-1].id, limit=4)
    last = await role_store.audit_page(after_id=rest[-1].id, limit=4)
    assert [row.id for row in first + rest + last] == ids
    assert await role_store.audit_page(after_id=ids[-1]) == []
    since = T0 + 6 * 60  # rows 6 to 9
    assert [r.idempotency_key for r in await role_store.audit_page(since=since)] == [
        "b-6",
        "a-7",
        "b-8",
        "a-9",
    ]
    only_a = await role_store.audit_page(action="a", limit=3)
    assert [r.idempotency_key for r in only_a] == ["a-1", "a-3", "a-5"]
    next_a = await role_store.audit_page(action="a", after_id=only_a[-1].id, since=since)
    assert [r.idempotency_key for r in next_a] == ["a-7", "a-9"]
    assert await role_store.audit_page(action="never_called") == []


async def test_recent_calls_are_an_actions_newest_first(role_store: Store, clock: Clock) -> None:
    """`recent_calls` gives one action's newest rows first, at most `limit` of them."""
    for n in range(15):
        await role_store.record_call(audited("a", n))
        await role_store.record_call(audited("b", n))
        clock.now += 1
    recent = await role_store.recent_calls("a")
    assert [row.idempotency_key for row in recent] == [f"a-{n}" for n in range(14, 4, -1)]
    assert [r.idempotency_key for r in await role_store.recent_calls("b", limit=2)] == [
        "b-14",
        "b-13",
    ]
    assert await role_store.recent_calls("never_called") == []


async def test_audit_rows_go_with_the_call_log_retention(role_store: Store, clock: Clock) -> None:
    """Pruning the call log removes the old rows from the audit trail too."""
    await role_store.record_call(audited("a", 1), caller=caller_header("slack", "T", "U", "C"))
    clock.now += 10 * 86400
    await role_store.record_call(audited("a", 2), arguments="{}")
    assert await role_store.prune_calls(86400) == 1
    assert [row.idempotency_key for row in await role_store.audit_page()] == ["a-2"]
    assert [row.idempotency_key for row in await role_store.recent_calls("a")] == ["a-2"]


async def test_dry_run_overrides_are_kept_and_the_latest_wins(
    role_store: Store, clock: Clock
) -> None:
    """A dry-run override is read back by name; setting it again replaces it, off included."""
    assert await role_store.action_modes() == {}
    await role_store.set_dry_run("refund", True, actor="slack:U1")
    await role_store.set_dry_run("check_inventory", True, actor="cli:ops")
    clock.now += 60
    await role_store.set_dry_run("check_inventory", False, actor="cli:ops")
    assert await role_store.action_modes() == {"refund": True, "check_inventory": False}


async def test_breaker_states_are_kept_with_their_time(role_store: Store, clock: Clock) -> None:
    """The last saved state of each breaker is read back with failures, until when it is
    open, and when it changed."""
    assert await role_store.breakers() == {}
    await role_store.save_breaker("refund", "open", failures=5, open_until=T0 + 30)
    await role_store.save_breaker("order_status", "half_open", failures=5, open_until=None)
    clock.now += 40
    await role_store.save_breaker("refund", "closed", failures=0, open_until=None)
    at = datetime.fromtimestamp
    assert await role_store.breakers() == {
        "refund": BreakerRecord(
            state="closed", failures=0, open_until=None, changed_at=at(T0 + 40, UTC)
        ),
        "order_status": BreakerRecord(
            state="half_open", failures=5, open_until=None, changed_at=at(T0, UTC)
        ),
    }
    await role_store.save_breaker("refund", "open", failures=6, open_until=T0 + 100)
    refund = (await role_store.breakers())["refund"]
    assert (refund.state, refund.failures, refund.open_until) == ("open", 6, at(T0 + 100, UTC))
