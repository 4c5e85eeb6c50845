"""Turns in progress: drained on shutdown within the grace period, the rest cancelled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.runtime.tasks import Turns


async def test_close_waits_for_running_turns_and_refuses_new_ones() -> None:
    """A running turn finishes during close; a turn offered while closing never starts."""
    turns = Turns()
    release = asyncio.Event()
    finished: list[str] = []

    async def turn(name: str) -> None:
        await release.wait()
        finished.append(name)

    assert turns.spawn(turn("first"), name="first")
    turns.refuse_new()
    assert not turns.spawn(turn("late"), name="late")
    release.set()

    assert await turns.close(grace=30) == 0
    assert finished == ["first"]


async def test_turns_past_the_grace_period_are_cancelled() -> None:
    """A turn that would never end is cancelled once the grace period is over."""
    turns = Turns()
    turns.spawn(asyncio.Event().wait(), name="stuck")  # type: ignore[arg-type]

    assert await turns.close(grace=0.05) == 1
    assert len(turns) == 0


async def test_turn_started_during_the_grace_period_is_not_dropped() -> None:
    """A message already past an adapter's door when shutdown begins still gets its turn."""
    turns = Turns()
    waiting, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []
    started: list[bool] = []

    async def late() -> None:
        finished.append("late")

    async def running() -> None:
        waiting.set()
        await release.wait()  # woken only after close() below has begun
        started.append(turns.spawn(late(), name="late"))
        finished.append("running")

    turns.spawn(running(), name="running")
    await waiting.wait()
    closing = asyncio.create_task(turns.close(grace=30))
    release.set()

    assert await closing == 0
    assert started == [True]
    assert sorted(finished) == ["late", "running"]
    assert not turns.spawn(late(), name="after")


async def test_turns_start_no_task_of_their_own() -> None:
    """Only the turns themselves run as tasks: finishing one leaves no helper task behind
    (every task has an owner)."""
    loop = asyncio.get_running_loop()
    created: list[str] = []

    def recording_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        created.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def turn() -> None:
        pass

    loop.set_task_factory(recording_factory)
    try:
        turns = Turns()
        turns.spawn(turn(), name="one")
        turns.spawn(turn(), name="two")
        await turns.drain()
    finally:
        loop.set_task_factory(None)
    assert created == ["Turns._in_turn", "Turns._in_turn"]


async def test_at_most_limit_turns_run_and_the_rest_start_in_order() -> None:
    """With a limit of 2, the third and fourth turns wait and start in arrival order as
    running ones finish; an admin command (not queued) starts at once."""
    turns = Turns(limit=2)
    releases = {name: asyncio.Event() for name in ("a", "b", "c", "d")}
    started: list[str] = []
    changed = asyncio.Condition()

    async def turn(name: str) -> None:
        async with changed:
            started.append(name)
            changed.notify_all()
        await releases[name].wait()

    async def wait_started(count: int) -> None:
        async with asyncio.timeout(5), changed:
            await changed.wait_for(lambda: len(started) >= count)

    for name in "abcd":
        turns.spawn(turn(name), name=name)
    await wait_started(2)
    admin_done = asyncio.Event()

    async def admin() -> None:
        admin_done.set()

    turns.spawn(admin(), name="admin", queued=False)
    await asyncio.wait_for(admin_done.wait(), 5)
    assert started == ["a", "b"]
    releases["b"].set()
    await wait_started(3)
    releases["a"].set()
    await wait_started(4)
    assert started == ["a", "b", "c", "d"]
    releases["c"].set()
    releases["d"].set()
    assert await turns.close(grace=5) == 0


async def test_waiting_turn_cancelled_at_shutdown_never_runs() -> None:
    """A turn still waiting for a slot when the grace period ends is cancelled without ever
    starting (and without a 'never awaited' warning, which fails the suite)."""
    turns = Turns(limit=1)
    ran: list[str] = []

    async def stuck() -> None:
        await asyncio.Event().wait()

    async def waiting() -> None:
        ran.append("waiting")

    turns.spawn(stuck(), name="stuck")
    turns.spawn(waiting(), name="waiting")
    assert await turns.close(grace=0.05) == 2
    assert ran == []


async def test_waiting_turns_start_only_while_the_loop_keeps_up() -> None:
    """While other work keeps every pass of the event loop over the lag limit, a waiting
    turn does not start (acknowledgements come first); once the loop keeps up, it starts."""
    turns = Turns(limit=10, max_lag=0.005)
    started = asyncio.Event()
    stop = False
    passes = 0
    busy_passes = asyncio.Event()

    async def hog() -> None:
        nonlocal passes
        while not stop:
            busy_until = time.perf_counter() + 0.02  # CPU work: 20 ms of every loop pass
            while time.perf_counter() < busy_until:
                pass
            passes += 1
            if passes == 10:
                busy_passes.set()
            await asyncio.sleep(0)

    async def turn() -> None:
        started.set()

    hogging = asyncio.create_task(hog())
    await asyncio.sleep(0)  # let the hog take its first pass before the turn is offered
    turns.spawn(turn(), name="turn")
    await busy_passes.wait()
    assert not started.is_set()
    stop = True
    await hogging
    await asyncio.wait_for(started.wait(), 5)
    assert await turns.close(grace=5) == 0


async def test_turns_with_the_same_key_run_one_after_another_in_spawn_order() -> None:
    """Turns of one conversation start in the order they were spawned, each after the
    previous one ended (even a failed one); other conversations do not wait for them."""
    turns = Turns(limit=10)
    gate, other_done = asyncio.Event(), asyncio.Event()
    events: list[str] = []

    async def turn(name: str, *, wait: bool = False, fail: bool = False) -> None:
        events.append(f"start {name}")
        if wait:
            await gate.wait()
        events.append(f"end {name}")
        if name == "b1":
            other_done.set()
        if fail:
            raise RuntimeError("boom")

    turns.spawn(turn("a1", wait=True, fail=True), name="a1", after="conv-a")
    turns.spawn(turn("a2"), name="a2", after="conv-a")
    turns.spawn(turn("b1"), name="b1", after="conv-b")
    async with asyncio.timeout(5):
        await other_done.wait()
    assert events == ["start a1", "start b1", "end b1"]
    gate.set()
    await turns.drain()
    assert events[3:] == ["end a1", "start a2", "end a2"]
