"""Each Discord interaction handled once: a gateway replay, or a shard moving to another
replica, can deliver a command or a click twice. The first claim of a lease named after the
interaction id wins, on whichever replica; the lease outlives the interaction's token."""

from __future__ import annotations

import logging
import uuid

import discord
from discord import app_commands

from bot.store import Leases

logger = logging.getLogger(__name__)

INTERACTION_SECONDS = 900.0
"""How long an interaction id is remembered: its token is valid for 15 minutes."""


async def first_delivery(leases: Leases, interaction: discord.Interaction) -> bool:
    """Whether this is the first delivery of `interaction` to any replica. If the database
    cannot tell, it is handled (a missed duplicate beats a dropped click)."""
    name = f"discord-interaction:{interaction.id}"
    try:
        first = await leases.hold_lease(name, owner=uuid.uuid4().hex, seconds=INTERACTION_SECONDS)
    except Exception:
        logger.exception("could not check interaction %s for a redelivery", interaction.id)
        return True
    if not first:
        logger.info("Discord interaction %s delivered again; skipping it", interaction.id)
    return first


class OnceTree(app_commands.CommandTree[discord.Client]):
    """The command tree, running each interaction once."""

    def __init__(self, client: discord.Client, *, store: Leases) -> None:
        super().__init__(client)
        self._store = store

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return await first_delivery(self._store, interaction)
