"""`/actions` on Discord: the app-command group, who may use it, and its ephemeral replies.

Discord hides the group from members without Manage Server (`default_permissions`), but a
server's owner can change that, so every call is checked again here (`is_admin`) before it
runs. Action names autocomplete; results are rendered by `format.admin_reply` and shown only
to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from adapters.discord import wording as discord_wording
from adapters.discord.format import admin_reply
from adapters.discord.posting import NO_PINGS
from bot.admin.access import AdminCheck
from bot.admin.operations import (
    USAGE,
    Admin,
    AdminCommand,
    AdminResult,
    Notice,
    Verb,
    parse_key_values,
)
from bot.errors import AdminUsageError
from bot.runtime.config import Settings

logger = logging.getLogger(__name__)


class ActionsCommands:
    """The `/actions` group of one Discord bot account, running the admin operations."""

    def __init__(self, *, settings: Settings, admin: Admin, platform: str) -> None:
        self.settings = settings
        self.admin = admin
        self.platform = platform
        self.admins = AdminCheck(settings.admin_ids)

    def group(self) -> app_commands.Group:
        """`/actions list|show|enable|disable|stats|test`, for the command tree."""
        group = app_commands.Group(
            name="actions",
            description="Inspect, toggle and test Custom Actions (admins only)",
            default_permissions=discord.Permissions(manage_guild=True),
        )

        async def names(_: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            matches = [n for n in self.admin.actions.names() if current.lower() in n.lower()]
            return [app_commands.Choice(name=n, value=n) for n in matches[:25]]

        def simple(verb: Verb, description: str) -> None:
            async def callback(interaction: discord.Interaction, name: str) -> None:
                await self._run(interaction, AdminCommand(verb, name))

            command: app_commands.Command[Any, ..., None] = app_commands.Command(
                name=verb, description=description, callback=callback
            )
            command.autocomplete("name")(names)
            group.add_command(command)

        @group.command(name="list", description="Every action with its state and call count")
        async def list_(interaction: discord.Interaction) -> None:
            await self._run(interaction, AdminCommand("list"))

        simple("show", "One action's definition (secrets masked)")
        simple("enable", "Offer the action to the AI again")
        simple("disable", "Stop offering the action to the AI (nothing is deleted)")

        @group.command(name="stats", description="Calls, failures, latency and last error")
        @app_commands.autocomplete(name=names)
        async def stats(interaction: discord.Interaction, name: str | None = None) -> None:
            await self._run(interaction, AdminCommand("stats", name))

        @group.command(name="test", description="Call the endpoint once with key=value arguments")
        @app_commands.autocomplete(name=names)
        async def test(interaction: discord.Interaction, name: str, arguments: str = "") -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                pairs = parse_key_values(arguments)
            except AdminUsageError as exc:
                await self._run(interaction, Notice(f"{exc}\n\n{USAGE}", error=True))
                return
            await self._run(interaction, AdminCommand("test", name, pairs))

        return group

    async def _run(self, interaction: discord.Interaction, command: AdminCommand | Notice) -> None:
        """Check the caller, run the command (or show the notice), answer ephemerally."""
        user = interaction.user.id
        if not self.is_admin(interaction):
            logger.info("refused /actions from non-admin %s:%s", self.platform, user)
            await _respond(interaction, discord_wording.NOT_ADMIN_DISCORD, [])
            return
        result: AdminResult
        if isinstance(command, AdminCommand):
            result = await self.admin.perform(command, actor=f"{self.platform}:{user}")
        else:
            result = command
        content, embeds = admin_reply(result)
        await _respond(interaction, content, embeds)

    def is_admin(self, interaction: discord.Interaction) -> bool:
        """An id in ACTIONBOT_ADMINS, or a member with Manage Server in the operator's own
        server (ACTIONBOT_DISCORD_GUILD). Action state is global, so managing some other
        server the bot was invited to grants nothing."""
        if self.admins.listed(self.platform, str(interaction.user.id)):
            return True
        home = self.settings.discord_guild
        if home is None or interaction.guild_id != home:
            return False
        perms = interaction.permissions
        return perms.manage_guild or perms.administrator


async def _respond(
    interaction: discord.Interaction, content: str | None, embeds: list[discord.Embed]
) -> None:
    """An ephemeral answer, whether or not the interaction was deferred."""
    kwargs: dict[str, Any] = {"embeds": embeds, "ephemeral": True, "allowed_mentions": NO_PINGS}
    if content:
        kwargs["content"] = content
    send: Callable[..., Awaitable[Any]]
    send = (
        interaction.followup.send
        if interaction.response.is_done()
        else (interaction.response.send_message)
    )
    await send(**kwargs)
