"""`/actions` on Discord: the app-command group, who may use it, and its ephemeral replies.

Discord hides the group from members without Manage Server (`default_permissions`), but a
server's owner can change that, so every call is checked again here (`is_admin`) before it
runs, and so is every click on a console button (`toggle`) and every step of a form
(`editor`). Action names autocomplete (`edit` and `delete` offer only the actions made in
chat); results are rendered by `format.admin_reply` (the console with its buttons by
`console`) and shown only to the caller; `new` and `edit` answer with a form (`editor`).
`/actions console` is Discord's spelling of a bare `/actions` (Discord cannot invoke a
command group without a subcommand); `/actions resume` runs where it is typed (the thread
or DM), or in the conversation it names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from adapters.discord import wording as discord_wording
from adapters.discord.console import console_message
from adapters.discord.editor import ActionEditor
from adapters.discord.format import admin_reply
from adapters.discord.once import first_delivery
from adapters.discord.posting import NO_PINGS
from bot.admin.access import AdminCheck
from bot.admin.console import Console
from bot.admin.operations import (
    USAGE,
    ActionForm,
    Admin,
    AdminCommand,
    AdminResult,
    Notice,
    Verb,
    parse_key_values,
)
from bot.errors import AdminUsageError
from bot.runtime.config import Settings
from bot.store import Leases

logger = logging.getLogger(__name__)

ON_OFF = [app_commands.Choice(name="on", value="on"), app_commands.Choice(name="off", value="off")]


class ActionsCommands:
    """The `/actions` group of one Discord bot account, running the admin operations."""

    def __init__(
        self, *, settings: Settings, admin: Admin, platform: str, leases: Leases | None = None
    ) -> None:
        self.settings = settings
        self.admin = admin
        self.platform = platform
        self.admins = AdminCheck(settings.admin_ids)
        self.leases = leases
        """Where console clicks are deduplicated (`once`); None: every delivery runs."""
        self.editor = ActionEditor(
            admin=admin, platform=platform, is_admin=self.is_admin, leases=leases
        )

    def group(self) -> app_commands.Group:
        """`/actions list|show|enable|disable|stats|test|dryrun|audit|console|resume|reload|new|
        edit|delete`, for the tree."""
        group = app_commands.Group(
            name="actions",
            description="Inspect, toggle and test Custom Actions (admins only)",
            default_permissions=discord.Permissions(manage_guild=True),
        )

        async def names(_: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            matches = [n for n in self.admin.actions.names() if current.lower() in n.lower()]
            return [app_commands.Choice(name=n, value=n) for n in matches[:25]]

        async def chat_names(
            _: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            made = [a.name for a in self.admin.actions if a.origin == "chat"]
            matches = [n for n in made if current.lower() in n.lower()]
            return [app_commands.Choice(name=n, value=n) for n in matches[:25]]

        def simple(verb: Verb, description: str, *, chat_only: bool = False) -> None:
            async def callback(interaction: discord.Interaction, name: str) -> None:
                await self._run(interaction, AdminCommand(verb, name))

            command: app_commands.Command[Any, ..., None] = app_commands.Command(
                name=verb, description=description, callback=callback
            )
            command.autocomplete("name")(chat_names if chat_only else names)
            group.add_command(command)

        @group.command(name="list", description="Every action with its state and call count")
        async def list_(interaction: discord.Interaction) -> None:
            await self._run(interaction, AdminCommand("list"))

        simple("show", "One action's definition (secrets masked)")
        simple("enable", "Offer the action to the AI again")
        simple("disable", "Stop offering the action to the AI (nothing is deleted)")
        simple("edit", "Change an action made in chat, in a form", chat_only=True)
        simple(
            "delete", "Delete an action made in chat (its calls stay in the stats)", chat_only=True
        )

        simple("audit", "Its last 10 calls: who asked, with what, and how it went")

        @group.command(name="dryrun", description="Send nothing: show the AI what would be sent")
        @app_commands.describe(mode="on: nothing is sent; off: live again")
        @app_commands.choices(mode=ON_OFF)
        @app_commands.autocomplete(name=names)
        async def dryrun(
            interaction: discord.Interaction, name: str, mode: app_commands.Choice[str]
        ) -> None:
            await self._run(interaction, AdminCommand("dryrun", name, {"mode": mode.value}))

        @group.command(name="new", description="Make an action in a form")
        async def new(interaction: discord.Interaction) -> None:
            await self._run(interaction, AdminCommand("new"))

        @group.command(name="reload", description="Read the actions file again now")
        async def reload(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await self._run(interaction, AdminCommand("reload"))

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

        @group.command(name="console", description="Every action with an Enable/Disable button")
        async def console(interaction: discord.Interaction) -> None:
            await self._run(interaction, AdminCommand("console"))

        @group.command(name="resume", description="Answer again where a person took over")
        @app_commands.describe(
            conversation="A thread (link, id or mention) or dm:<id>; here if empty"
        )
        async def resume(interaction: discord.Interaction, conversation: str | None = None) -> None:
            named = conversation_named(conversation) if conversation else None
            await self._run(interaction, AdminCommand("resume", named))

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
            actor, where = f"{self.platform}:{user}", conversation_here(interaction)
            result = await self.admin.perform(command, actor=actor, where=where)
        else:
            result = command
        if isinstance(result, ActionForm):
            await self.editor.open(interaction, result)
            return
        if isinstance(result, Console):
            embeds, view = console_message(result, chat=self._made_in_chat())
            await _respond(interaction, None, embeds, view)
            return
        content, embeds = admin_reply(result)
        await _respond(interaction, content, embeds)

    async def toggle(self, interaction: discord.Interaction, name: str, active: bool) -> None:
        """A console button: once per click, only for an admin (the same rule as the
        commands, judged again now); the console is then redrawn in place."""
        if self.leases is not None and not await first_delivery(self.leases, interaction):
            return
        user = interaction.user.id
        if not self.is_admin(interaction):
            logger.info("refused a console click from non-admin %s:%s", self.platform, user)
            await _respond(interaction, discord_wording.NOT_ADMIN_DISCORD, [])
            return
        actor = f"{self.platform}:{user}"
        console = await self.admin.toggle_from_console(name, active, actor=actor)
        embeds, view = console_message(console, chat=self._made_in_chat())
        await interaction.response.edit_message(embeds=embeds, view=view)

    def _made_in_chat(self) -> frozenset[str]:
        return frozenset(a.name for a in self.admin.actions if a.origin == "chat")

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


async def sync_commands(tree: app_commands.CommandTree[Any], guild_id: int | None) -> None:
    """Register `/actions` with Discord: in the operator's server at once, else globally."""
    try:
        if guild_id:
            guild = discord.Object(id=guild_id)
            tree.copy_global_to(guild=guild)
            await tree.sync(guild=guild)
        else:
            await tree.sync()
    except discord.HTTPException as exc:
        logger.warning(
            "could not register /actions (%s): invite the bot with the "
            "applications.commands scope (see the invite URL)",
            exc,
        )


def conversation_here(interaction: discord.Interaction) -> str:
    """The conversation a command runs in: `discord:thread:<id>` in a thread,
    `discord:dm:<id>` in a DM, "" in a channel (whose threads are conversations of their own)."""
    if isinstance(interaction.channel, discord.Thread):
        return f"discord:thread:{interaction.channel.id}"
    if interaction.guild_id is None and interaction.channel_id is not None:
        return f"discord:dm:{interaction.channel_id}"
    return ""


_NAMED = re.compile(r"(?:discord:)?(?P<kind>thread|dm|message):(?P<id>\d+)")
_LINK = re.compile(
    r"(?:<#(?P<mention>\d+)>|channels/(?P<guild>\d+|@me)/(?P<channel>\d+)|(?P<id>\d+))"
)


def conversation_named(text: str) -> str:
    """`/actions resume`'s argument as a conversation key: `discord:thread:<id>` for a
    thread's link, mention or id, `discord:dm:<id>` for `dm:<id>` or a DM's link. Anything
    else is passed on as written (and resumes nothing, which the answer says)."""
    text = text.strip()
    if named := _NAMED.fullmatch(text):
        return f"discord:{named['kind']}:{named['id']}"
    if text.startswith("discord:") or (found := _LINK.search(text)) is None:
        return text
    if found["channel"]:
        kind = "dm" if found["guild"] == "@me" else "thread"
        return f"discord:{kind}:{found['channel']}"
    return f"discord:thread:{found['mention'] or found['id']}"


async def _respond(
    interaction: discord.Interaction,
    content: str | None,
    embeds: list[discord.Embed],
    view: discord.ui.View | None = None,
) -> None:
    """An ephemeral answer, whether or not the interaction was deferred."""
    kwargs: dict[str, Any] = {"embeds": embeds, "ephemeral": True, "allowed_mentions": NO_PINGS}
    if content:
        kwargs["content"] = content
    if view is not None:
        kwargs["view"] = view
    send: Callable[..., Awaitable[Any]]
    send = (
        interaction.followup.send
        if interaction.response.is_done()
        else (interaction.response.send_message)
    )
    await send(**kwargs)
