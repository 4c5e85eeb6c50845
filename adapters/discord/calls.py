"""The action calls of one turn as the customer watches them: one embed, a line per call.

Each call is a line with its state, ⏳ while it runs, then ✅ done or ⚠️ failed with its
latency. The engine reports each call when it starts and when it ends (`bot.types.CallUpdate`);
a call whose result an earlier attempt recorded is reported only when it ends, so a line may
appear already finished. Lines keep the order in which calls were first reported.
"""

from __future__ import annotations

import discord

from adapters.discord.embeds import MAX_DESCRIPTION
from adapters.discord.markdown import clip, prose
from bot.types import CallUpdate

MARKS = {"running": "⏳", "done": "✅", "failed": "⚠️"}


class CallList:
    """The calls of one turn so far, by the model's tool-call id."""

    def __init__(self) -> None:
        self.calls: dict[str, CallUpdate] = {}

    def update(self, update: CallUpdate) -> None:
        self.calls[update.id] = update

    def __bool__(self) -> bool:
        return bool(self.calls)

    def lines(self) -> list[str]:
        return [call_line(call) for call in self.calls.values()]

    def embed(self) -> discord.Embed | None:
        """The embed of every call, or None before the first one."""
        if not self.calls:
            return None
        states = {call.state for call in self.calls.values()}
        if "failed" in states:
            colour = discord.Colour.orange()
        elif "running" in states:
            colour = discord.Colour.blurple()
        else:
            colour = discord.Colour.green()
        return discord.Embed(
            colour=colour, description=clip("\n".join(self.lines()), MAX_DESCRIPTION)
        )


def call_line(call: CallUpdate) -> str:
    """`✅ Check Inventory · 182 ms`: the state, the display name (inert), the latency."""
    line = f"{MARKS[call.state]} {prose(call.display_name or call.action)}"
    if call.latency_ms is not None and call.state != "running":
        line += f" · {call.latency_ms:.0f} ms"
    return line
