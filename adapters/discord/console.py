"""The interactive `/actions console` on Discord: an embed per action and Enable/Disable buttons.

Discord cannot invoke a command group without a subcommand, so `/actions console` is
Discord's spelling of a bare `/actions`. The reply is ephemeral: a field per action (state,
calls, success rate and p95 of the last 24 hours; `format.console_cards`) and one button per
action, whose `custom_id` (`actionbot:console:<enable|disable>:<name>`) carries the action
and the state it sets. A message holds at most 25 buttons (5 rows of 5); with more actions
the buttons give way to two selects, "Enable…" and "Disable…" (25 options each).

Buttons and selects are dynamic items registered at startup, like the confirmation cards'
(`confirm`), so a console opened before a restart, or on another replica, still works. What
a click does (check the clicker, toggle, redraw) is `commands.ActionsCommands.toggle`.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import discord

from adapters.discord.embeds import to_embeds
from adapters.discord.format import console_cards
from adapters.discord.markdown import clip
from bot.admin.console import Console, ConsoleRow

MAX_BUTTONS = 25
"""Discord's limit: 5 action rows of 5 buttons."""
MAX_OPTIONS = 25
"""Discord's limit on the options of one select."""
MAX_LABEL = 80
OnToggle = Callable[[discord.Interaction, str, bool], Awaitable[None]]
"""What a click does: (interaction, action name, active)."""
_handlers: weakref.WeakKeyDictionary[discord.Client, OnToggle] = weakref.WeakKeyDictionary()


class ToggleButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"actionbot:console:(?P<state>enable|disable):(?P<name>[a-zA-Z0-9_-]{1,64})",
):
    """Enable or Disable one action; found again from its `custom_id` after a restart."""

    def __init__(self, name: str, active: bool, *, label: str = "") -> None:
        verb = "enable" if active else "disable"
        super().__init__(
            discord.ui.Button(
                label=clip(label or f"{verb.title()} {name}", MAX_LABEL),
                style=discord.ButtonStyle.success if active else discord.ButtonStyle.secondary,
                custom_id=f"actionbot:console:{verb}:{name}",
            )
        )
        self.name, self.active = name, active

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ToggleButton:
        return cls(match["name"], match["state"] == "enable")

    async def callback(self, interaction: discord.Interaction) -> None:
        await _dispatch(interaction, self.name, self.active)


class TogglePick(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=r"actionbot:console-pick:(?P<state>enable|disable)",
):
    """A select of actions to enable (or disable), for consoles with more than 25 actions."""

    def __init__(self, active: bool, rows: list[ConsoleRow] | None = None) -> None:
        verb = "enable" if active else "disable"
        more = len(rows or []) > MAX_OPTIONS
        options = [
            discord.SelectOption(label=clip(r.display_name, 100), value=r.name, description=r.name)
            for r in (rows or [])[:MAX_OPTIONS]
        ]
        super().__init__(
            discord.ui.Select(
                custom_id=f"actionbot:console-pick:{verb}",
                placeholder=f"{verb.title()} an action…"
                + (
                    f" (the first {MAX_OPTIONS}; /actions {verb} NAME for the rest)" if more else ""
                ),
                options=options or [discord.SelectOption(label="-", value="-")],
                disabled=not options and rows is not None,
            )
        )
        self.active = active

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> TogglePick:
        return cls(match["state"] == "enable")

    async def callback(self, interaction: discord.Interaction) -> None:
        await _dispatch(interaction, self.item.values[0], self.active)


async def _dispatch(interaction: discord.Interaction, name: str, active: bool) -> None:
    handler = _handlers.get(interaction.client)
    if handler is None:  # a client without an adapter: nothing can answer
        await interaction.response.defer()
        return
    await handler(interaction, name, active)


def register(client: discord.Client, on_toggle: OnToggle) -> None:
    """Handle clicks on every console, including those shown before this process started."""
    _handlers[client] = on_toggle
    client.add_dynamic_items(ToggleButton, TogglePick)


def console_message(
    console: Console, *, chat: Collection[str] = ()
) -> tuple[list[discord.Embed], discord.ui.View]:
    """The console's embeds and its buttons (or selects); `chat` names the actions made in
    chat (the others come from the actions file)."""
    return to_embeds(console_cards(console, chat=chat)), console_view(console)


def console_view(console: Console) -> discord.ui.View:
    """A button per action that sets the other state; two selects past `MAX_BUTTONS`."""
    view = discord.ui.View(timeout=None)
    if len(console.rows) <= MAX_BUTTONS:
        for row in console.rows:
            verb = "Disable" if row.active else "Enable"
            view.add_item(
                ToggleButton(row.name, not row.active, label=f"{verb} {row.display_name}")
            )
        return view
    for active in (False, True):  # "Disable…" first: actions are active unless turned off
        view.add_item(TogglePick(active, [r for r in console.rows if r.active != active]))
    return view
