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
