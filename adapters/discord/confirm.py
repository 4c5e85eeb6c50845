"""Confirmation cards on Discord: an embed with Confirm / Cancel buttons.

The buttons are persistent: their `custom_id` (`actionbot:confirm:<token>`) carries the
confirmation's token, and `ConfirmButton` is registered as a dynamic item at startup, so a
click on a card posted before a restart is still handled. The click itself is judged by
`Inbox.decide` (only the requester, once, before expiry).
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.discord.posting import NO_PINGS
from bot import wording
from bot.types import Confirmation

logger = logging.getLogger(__name__)

MAX_FIELDS = 20
OnClick = Callable[[discord.Interaction, str, bool], Awaitable[None]]
"""What a click does: (interaction, token, confirmed)."""
_handlers: weakref.WeakKeyDictionary[discord.Client, OnClick] = weakref.WeakKeyDictionary()


class ConfirmButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"actionbot:(?P<answer>confirm|cancel):(?P<token>[A-Za-z0-9_-]{8,64})",
):
    """Confirm or Cancel on one card; found again from its `custom_id` after a restart."""

    def __init__(self, answer: str, token: str) -> None:
        confirm = answer == "confirm"
        super().__init__(
            discord.ui.Button(
                label="Confirm" if confirm else "Cancel",
                style=discord.ButtonStyle.success if confirm else discord.ButtonStyle.danger,
                custom_id=f"actionbot:{answer}:{token}",
            )
        )
        self.answer, self.token = answer, token

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ConfirmButton:
        return cls(match["answer"], match["token"])

    async def callback(self, interaction: discord.Interaction) -> None:
        handler = _handlers.get(interaction.client)
        if handler is None:  # a client without an adapter: nothing can answer
            await interaction.response.send_message(wording.ALREADY_ANSWERED, ephemeral=True)
            return
        await handler(interaction, self.token, self.answer == "confirm")


def register(client: discord.Client, on_click: OnClick) -> None:
    """Handle clicks on every card, including those posted before this process started."""
    _handlers[client] = on_click
    client.add_dynamic_items(ConfirmButton)


def card(confirmation: Confirmation) -> tuple[discord.Embed, discord.ui.View]:
    """The embed (action and every value the AI chose) and its two buttons."""
    view = discord.ui.View(timeout=None)
    view.add_item(ConfirmButton("confirm", confirmation.token))
    view.add_item(ConfirmButton("cancel", confirmation.token))
    return _embed(confirmation), view


def outcome_embed(confirmation: Confirmation, outcome: str) -> discord.Embed:
    """The card once answered or expired: the same details and the outcome, no buttons."""
    embed = _embed(confirmation)
    embed.set_footer(text=outcome)
    return embed


def _embed(confirmation: Confirmation) -> discord.Embed:
    title = f"Confirm {confirmation.display_name or confirmation.action}?"
    embed = discord.Embed(title=title[:256], colour=discord.Colour.orange())
    for name, value in list(confirmation.arguments.items())[:MAX_FIELDS]:
        embed.add_field(name=str(name)[:256], value=str(value)[:1024] or "-", inline=False)
    return embed


async def post(where: discord.abc.Messageable, confirmation: Confirmation) -> int | None:
    """Post the card; its message id, or None when Discord refused."""
    embed, view = card(confirmation)
    try:
        posted = await where.send(embed=embed, view=view, allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:
        logger.warning("could not post a confirmation card: %s", exc)
        return None
    return posted.id
