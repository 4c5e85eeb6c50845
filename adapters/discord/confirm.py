"""Confirmation cards on Discord: an embed with Confirm / Cancel buttons.

The buttons are persistent: their `custom_id` (`actionbot:confirm:<token>`) carries the
confirmation's token, and `ConfirmButton` is registered as a dynamic item at startup, so a
click on a card posted before a restart is still handled. The click itself is judged by
`Inbox.decide` (only the requester, once, before expiry). `Cards` shows a turn's cards,
closes them once answered, and answers the clicks.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.discord.once import first_delivery
from adapters.discord.posting import NO_PINGS, Sendable, partial_message, send
from adapters.discord.progress import ProgressNote
from bot import wording
from bot.delivery import Inbox
from bot.store import InboxEntry, Leases
from bot.types import Confirmation, Reply

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


class Cards:
    """The confirmation cards of one Discord client's turns."""

    def __init__(self, *, inbox: Inbox, leases: Leases, display_name: Callable[[str], str]) -> None:
        self.inbox = inbox
        self.leases = leases
        self.display_name = display_name

    async def show(
        self, entry: InboxEntry, reply: Reply, where: Sendable, note: ProgressNote
    ) -> bool:
        """The waiting line (later edited into the answer) and a card per call waiting for
        confirmation, unless an earlier attempt posted it."""
        cards = posted_cards(entry)
        waiting = f"*{reply.text}*"
        if not await note.finish(waiting):
            line = await send(where, waiting)
            if line is None:
                return False
            await self.inbox.update_route(entry, {"note": line.id})
        for confirmation in reply.confirmations:
            if confirmation.token in cards:
                continue
            card_id = await post(where, confirmation)
            if card_id is None:
                return False
            cards[confirmation.token] = card_id
            await self.inbox.update_route(entry, {"cards": cards})
        return True

    async def close(self, entry: InboxEntry, where: Sendable) -> None:
        """Show each card's outcome in place of its buttons (confirmed, cancelled, expired)."""
        for token, message_id in posted_cards(entry).items():
            found = await self.inbox.store.confirmation_by_token(token)
            card = partial_message(where, message_id)
            if found is None or card is None:
                continue
            outcome = wording.card_outcome(found.state, found.requester)
            found = found.model_copy(update={"display_name": self.display_name(found.action)})
            try:
                await card.edit(embed=outcome_embed(found, outcome), view=None)
            except discord.HTTPException as exc:
                logger.warning("could not show the outcome on a confirmation card: %s", exc)

    async def on_click(self, interaction: discord.Interaction, token: str, confirmed: bool) -> None:
        """A click on a card: only the user who asked may answer, once, before it expires;
        anyone else is told so privately. The waiting turn then goes on."""
        if not await first_delivery(self.leases, interaction):
            return
        user = str(interaction.user.id)
        outcome, found = await self.inbox.decide(token, confirmed=confirmed, user=user)
        if outcome == "decided":
            await interaction.response.defer()
            return
        text = wording.click_refusal(outcome, found.requester if found else None)
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


def posted_cards(entry: InboxEntry) -> dict[str, int]:
    """The cards earlier attempts posted: token → message id."""
    return {k: int(v) for k, v in (entry.route.get("cards") or {}).items()}
