"""Turns in progress: drained on shutdown within the grace period, the rest cancelled."""

from __future__ import annotations

import asyncio

from bot.tasks import Turns


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
