"""The inbox at work (`bot.delivery.Inbox`) over a real SQLite store: turns that raise or
cannot post are tried again up to the attempts cap, messages taken over at start wait for
the platforms, every process has its own lease owner."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from bot.delivery import Inbox, host_owner, owner_gone, this_place
from bot.runtime.metrics import Metrics
from bot.runtime.tasks import Turns
from bot.store import InboxEntry, Store
from bot.store.sqlite import SQLiteStore
from bot.types import IncomingMessage, Reply


def incoming(event_id: str = "Ev1") -> IncomingMessage:
    return IncomingMessage(
        platform="slack", conversation="D1", user_id="U1", text="hi", event_id=event_id
    )


class Answers:
    """An adapter's answer function whose results are scripted per call: a Reply, None
    (could not post) or an exception."""

    def __init__(self, *results: Reply | Exception | None) -> None:
        self.results = list(results)
        self.seen: list[InboxEntry] = []

    async def __call__(self, entry: InboxEntry) -> Reply | None:
        self.seen.append(entry)
        result = self.results.pop(0) if self.results else entry.reply
        if isinstance(result, BaseException):
            raise result
        return result


def make_inbox(store: Store, answers: Answers, **options: object) -> Inbox:
    inbox = Inbox(store, Turns(), metrics=Metrics(), **options)  # type: ignore[arg-type]
    inbox.register("slack", answers)
    return inbox


async def test_a_turn_that_raises_is_tried_again(store: Store) -> None:
    """An exception in the turn leaves the message pending and released: the next pass
    takes it (one more attempt) and answers it."""
    answers = Answers(RuntimeError("adapter bug"), Reply(text="hello"))
    inbox = make_inbox(store, answers)

    assert await inbox.receive(incoming(), {"channel": "D1"})
    await inbox.turns.drain()
    assert await store.inbox_counts() == {"pending": 1, "done": 0, "failed": 0}
    assert await inbox.recover() == 1
    await inbox.turns.drain()

    assert [e.attempts for e in answers.seen] == [1, 2]
    assert await store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def test_an_answer_that_cannot_be_posted_is_retried_up_to_the_cap(store: Store) -> None:
    """An answer the platform refused leaves the message pending for another attempt; when
    the last attempt cannot post either, the message is failed (not retried forever)."""
    answers = Answers(None, None)
    inbox = make_inbox(store, answers, attempts=2)

    await inbox.receive(incoming(), {"channel": "D1"})
    await inbox.turns.drain()
    assert await store.inbox_counts() == {"pending": 1, "done": 0, "failed": 0}
    assert await inbox.recover() == 1
    await inbox.turns.drain()

    assert [e.attempts for e in answers.seen] == [1, 2]
    assert await store.inbox_counts() == {"pending": 0, "done": 0, "failed": 1}
    assert await inbox.recover() == 0


async def test_messages_taken_over_at_start_wait_for_the_platforms(store: Store) -> None:
    """A previous process of this host left a message in hand: the new process takes it at
    start, at once, but its turn posts only once the platforms are connected."""
    await store.receive(incoming(), route={}, owner="thishost:1:box-dead", lease_seconds=60)
    answers = Answers(Reply(text="late answer"))
    inbox = make_inbox(store, answers, owner="thishost:1:box-fresh", started=False)

    assert await inbox.recover() == 0  # its lease has not expired
    assert await inbox.recover(at_start=True) == 1
    await asyncio.sleep(0)  # let the queued turn run as far as it may
    assert answers.seen == []
    inbox.platforms_started()
    await inbox.turns.drain()

    assert [e.key for e in answers.seen] == ["slack:Ev1"]
    assert await store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def test_other_hosts_and_live_owners_are_not_taken_over(store: Store) -> None:
    """The start-up takeover is limited to this host; and every process is its own owner,
    even with the same host name and pid (a restarted container)."""
    await store.receive(incoming("A"), route={}, owner="otherhost:1:x", lease_seconds=60)
    inbox = make_inbox(store, Answers(), owner="thishost:1:fresh")
    assert await inbox.recover(at_start=True) == 0
    assert (
        Inbox(store, Turns(), metrics=Metrics()).owner
        != Inbox(store, Turns(), metrics=Metrics()).owner
    )


async def test_at_start_replicas_of_the_same_host_keep_their_messages(store: Store) -> None:
    """Several replicas on one host: at start a process takes over only what processes
    of this host that have ended held, not what a running replica holds."""
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    live, ended = f"thishost:{os.getpid()}:box-x", f"thishost:{gone.pid}:box-y"
    await store.receive(incoming("A"), route={}, owner=live, lease_seconds=60)
    other = incoming("B").model_copy(update={"conversation": "D2"})
    await store.receive(other, route={}, owner=ended, lease_seconds=60)
    answers = Answers(Reply(text="ok"))
    inbox = make_inbox(store, answers, owner="thishost:1:box-fresh")
    assert await inbox.recover(at_start=True) == 1
    await inbox.turns.drain()
    assert [e.key for e in answers.seen] == ["slack:B"]
    assert await store.lease_owners("thishost:") == [live]


async def test_a_message_left_for_another_attempt_is_answered_before_a_later_one(
    store: Store,
) -> None:
    """M1's answer could not be posted (left pending, unleased); M2 of the same
    conversation arrives: M2 steps back without using up an attempt, M1 is answered first
    and at once, then M2."""
    answers = Answers(None, Reply(text="one"), Reply(text="two"))
    inbox = make_inbox(store, answers)
    async with asyncio.timeout(5):
        assert await inbox.receive(incoming("M1"), {"channel": "D1"})
        await inbox.turns.drain()
        assert await inbox.receive(incoming("M2"), {"channel": "D1"})
        await inbox.turns.drain()
    assert [(e.key, e.attempts) for e in answers.seen] == [
        ("slack:M1", 1),
        ("slack:M1", 2),
        ("slack:M2", 1),
    ]
    assert await store.inbox_counts() == {"pending": 0, "done": 2, "failed": 0}


async def test_an_earlier_message_taken_over_behind_a_waiting_turn_goes_first(
    tmp_path: Path,
) -> None:
    """Another replica holds M1 when M2 arrives here, so M2 waits. That replica dies; Slack's
    retry of M1 lands here and is taken over, queued behind M2's waiting turn: M2 steps
    back, and M1 is answered before M2, without waiting for a deadline."""
    now = [1_700_000_000.0]
    async with await SQLiteStore.open(tmp_path / "o.db", clock=lambda: now[0]) as store:
        await store.receive(incoming("M1"), route={}, owner="otherhost:9:x", lease_seconds=60)
        answers = Answers(Reply(text="one"), Reply(text="two"))
        inbox = make_inbox(store, answers, owner="thishost:1:me")
        async with asyncio.timeout(5):
            assert await inbox.receive(incoming("M2"), {"channel": "D1"})
            await asyncio.sleep(0)  # M2's turn has started and found M1 in other hands
            assert answers.seen == []
            now[0] += 61
            assert await inbox.receive(incoming("M1"), {"channel": "D1"})
            await inbox.turns.drain()
        assert [(e.key, e.attempts) for e in answers.seen] == [("slack:M1", 2), ("slack:M2", 1)]
        assert await store.inbox_counts() == {"pending": 0, "done": 2, "failed": 0}


async def test_a_turn_that_waited_a_lease_time_gives_its_place_up(store: Store) -> None:
    """M1 is in another live replica's hands for long: M2's turn does not hold a running
    slot forever; after a lease time it steps back (no attempt used) for the next replay."""
    await store.receive(incoming("M1"), route={}, owner="otherhost:9:x", lease_seconds=60)
    answers = Answers(Reply(text="two"))
    inbox = make_inbox(store, answers, lease_seconds=0.3)
    async with asyncio.timeout(5):
        assert await inbox.receive(incoming("M2"), {"channel": "D1"})
        await inbox.turns.drain()
    assert answers.seen == []
    [entry] = await store.claim(owner="me:1:x", lease_seconds=60, platforms=["slack"], limit=5)
    assert (entry.key, entry.attempts) == ("slack:M2", 1)  # deferred, not counted


async def test_a_replica_sharing_the_host_name_and_pid_keeps_its_messages(store: Store) -> None:
    """Two containers with host networking have the same host name and both run as pid 1:
    the one starting does not take what the other (another place) holds."""
    await store.receive(incoming("A"), route={}, owner="node7:1:boxa-1", lease_seconds=60)
    inbox = make_inbox(store, Answers(), owner="node7:1:boxb-2")
    assert await inbox.recover(at_start=True) == 0
    assert owner_gone("node7:1:boxb-0", me="node7:1:boxb-2")  # its own restarted container
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()  # a pid that is not running here means nothing in another container
    assert not owner_gone(f"node7:{gone.pid}:boxa-1", me="node7:1:boxb-2")
    assert owner_gone(f"node7:{gone.pid}:boxb-1", me="node7:1:boxb-2")


async def test_a_restarted_process_finds_its_place_again() -> None:
    """Two processes run one after the other here (as a container restarted) name the same
    place in their owner names, and the names differ."""
    owners = []
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from bot.delivery import host_owner; print(host_owner())",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        owners.append(out.decode().strip())
    first, second = owners
    assert first != second
    assert first.split(":")[2].split("-")[0] == second.split(":")[2].split("-")[0] == this_place()
    assert host_owner().startswith(f"{socket.gethostname()}:{os.getpid()}:{this_place()}-")


async def test_a_console_line_interrupted_is_settled_not_left_pending(store: Store) -> None:
    """Ctrl-C during a console turn (the task is cancelled): nobody will replay it, so it
    is settled failed rather than left waiting forever."""
    answers = Answers(asyncio.CancelledError())
    inbox = make_inbox(store, answers)
    with pytest.raises(asyncio.CancelledError):
        await inbox.run_inline(incoming(), answers)
    assert await store.inbox_counts() == {"pending": 0, "done": 0, "failed": 1}
