"""The Discord adapter: discord.py messages in, engine turns and `/actions` results out.

Conversations as a Discord server expects: a mention in a channel opens a thread on that
message and answers there, so the thread is the conversation and follow-ups in it need no
mention (if the bot may not create threads, it answers in the channel as a reply instead).
A mention inside an existing thread continues in that thread; a DM is one conversation.
Each message id runs once, even when the gateway replays it after a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.discord.format import admin_reply, to_discord_markdown
from bot import wording
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
from bot.chunks import split_message
from bot.engine import Engine
from bot.errors import AdminUsageError, ConfigError
from bot.runtime.config import Settings
from bot.runtime.logs import turn_scope
from bot.runtime.tasks import Turns
from bot.store import AdapterStore, first_delivery
from bot.types import IncomingMessage

logger = logging.getLogger(__name__)

PLATFORM = "discord"
MESSAGE_LIMIT = 2000
THREAD_NAME_LIMIT = 90
PROGRESS_DELAY = 1.5
"""Seconds an answer may take before a "Checking inventory…" note is posted."""
NO_PINGS = discord.AllowedMentions.none()
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
)
Sendable = discord.abc.Messageable


class DiscordAdapter:
    """Connects one Discord bot account to the engine and the admin operations."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        admin: Admin,
        store: AdapterStore,
        turns: Turns,
        progress_delay: float = PROGRESS_DELAY,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        if settings.discord_token is None:
            raise ConfigError("DISCORD_TOKEN is not set.")
        self.settings = settings
        self.engine = engine
        self.admin = admin
        self.store = store
        self.turns = turns
        self.progress_delay = progress_delay
        intents = discord.Intents.default()
        intents.message_content = True
        self.client = discord.Client(
            intents=intents, allowed_mentions=NO_PINGS, guild_ready_timeout=guild_ready_timeout
        )
        self.tree = app_commands.CommandTree(self.client)
        self.tree.add_command(self._actions_group())
        self.client.setup_hook = self._sync_commands  # type: ignore[method-assign]
        self.client.event(self.on_message)
        self._connection: asyncio.Task[None] | None = None
        self.receiving = True
        self.admins = AdminCheck(settings.admin_ids)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, connect to the gateway and wait for READY; `ConfigError` says what to fix."""
        await self._login()
        self._connection = asyncio.create_task(self.client.connect(), name="discord gateway")
        ready = asyncio.create_task(self.client.wait_until_ready(), name="discord ready")
        await asyncio.wait({self._connection, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await self._failed_to_connect()
        logger.info("Discord connected as %s; invite: %s", self.client.user, self.invite_url())

    async def check(self) -> None:
        """The token, checked with Discord as `start` does, without connecting."""
        await self._login()
        await self.client.close()

    async def _login(self) -> None:
        token = self.settings.discord_token
        assert token is not None  # checked in __init__
        try:
            await self.client.login(token.get_secret_value())
        except discord.LoginFailure:
            await self.client.close()
            raise ConfigError(wording.DISCORD_LOGIN_REJECTED) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self.client.close()
            where = discord.http.Route.BASE
            raise ConfigError(wording.unreachable("Discord", where, exc)) from None

    async def _failed_to_connect(self) -> None:
        assert self._connection is not None
        error = self._connection.exception()
        await self.client.close()
        if isinstance(error, discord.PrivilegedIntentsRequired):
            raise ConfigError(wording.DISCORD_INTENT_MISSING) from None
        raise ConfigError(f"Could not connect to Discord: {error}") from None

    def invite_url(self) -> str:
        """The invite link with exactly the permissions and scopes the bot needs."""
        app_id = self.client.application_id or (self.client.user.id if self.client.user else 0)
        return discord.utils.oauth_url(
            app_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
        )

    async def stop_receiving(self) -> None:
        """Discord has no pause: from now on messages are ignored and readiness is off."""
        self.receiving = False

    async def close(self) -> None:
        await self.client.close()
        if self._connection is not None:
            await asyncio.gather(self._connection, return_exceptions=True)
            self._connection = None

    async def ready(self) -> bool:
        return self.receiving and self.client.is_ready() and not self.client.is_closed()

    async def _sync_commands(self) -> None:
        guild_id = self.settings.discord_guild
        try:
            if guild_id:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
            else:
                await self.tree.sync()
        except discord.HTTPException as exc:
            logger.warning(
                "could not register /actions (%s): invite the bot with the "
                "applications.commands scope (see the invite URL)",
                exc,
            )

    # --- messages -----------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """Decide whether a message is for the bot; if so, start its turn once."""
        if message.author.bot or not self.receiving:
            return
        conversation = await self._conversation_of(message)
        if conversation is None or not await first_delivery(self.store, PLATFORM, str(message.id)):
            return
        self.turns.spawn(self._answer(message, conversation), name=f"discord turn {message.id}")

    async def _conversation_of(self, message: discord.Message) -> str | None:
        """`dm:…` or `thread:…` for a message to answer, `new` for a mention in a channel."""
        channel = message.channel
        if message.guild is None:
            return f"dm:{channel.id}"
        in_thread = isinstance(channel, discord.Thread)
        if self._mentions_me(message):
            return f"thread:{channel.id}" if in_thread else "new"
        if in_thread and await self.store.has_conversation(f"{PLATFORM}:thread:{channel.id}"):
            return f"thread:{channel.id}"
        return None

    def _mentions_me(self, message: discord.Message) -> bool:
        me = self.client.user
        return me is not None and any(user.id == me.id for user in message.mentions)

    def _text_of(self, message: discord.Message) -> str:
        me = self.client.user
        text = message.content
        if me is not None:
            text = re.sub(rf"<@!?{me.id}>", "", text)
        return text.strip()

    async def _answer(self, message: discord.Message, conversation: str) -> None:
        text = self._text_of(message)
        if not text:
            polite = wording.TEXT_ONLY if message.attachments else wording.EMPTY_MESSAGE
            await self._send(message.channel, polite, reply_to=message)
            return
        where, reply_to = message.channel, None
        if conversation == "new":
            thread = await self._open_thread(message, text)
            where = thread or message.channel
            reply_to = None if thread else message
            conversation = f"thread:{thread.id}" if thread else f"message:{message.id}"
        incoming = IncomingMessage(
            platform=PLATFORM,
            conversation=conversation,
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            text=text,
            event_id=str(message.id),
        )
        await self._run_turn(incoming, where, reply_to)

    async def _run_turn(
        self, incoming: IncomingMessage, where: Sendable, reply_to: discord.Message | None
    ) -> None:
        with turn_scope(PLATFORM, incoming.conversation):
            await self._reply(incoming, where, reply_to)

    async def _reply(
        self, incoming: IncomingMessage, where: Sendable, reply_to: discord.Message | None
    ) -> None:
        note = _ProgressNote(self, where, delay=self.progress_delay)
        try:
            async with where.typing():
                reply = await self.engine.handle(incoming, progress=note.show)
        except discord.HTTPException as exc:  # typing refused: answer anyway
            logger.warning("typing indicator failed in %s: %s", _name(where), exc)
            reply = await self.engine.handle(incoming, progress=note.show)
        pieces = split_message(to_discord_markdown(reply.text), MESSAGE_LIMIT)
        pieces = pieces or [wording.EMPTY_ANSWER]
        first = await note.finish(pieces[0])
        if not first:
            await self._send(where, pieces[0], reply_to=reply_to)
        for piece in pieces[1:]:
            await self._send(where, piece)

    async def _open_thread(self, message: discord.Message, text: str) -> discord.Thread | None:
        name = text if len(text) <= THREAD_NAME_LIMIT else text[: THREAD_NAME_LIMIT - 1] + "…"
        try:
            return await message.create_thread(name=name)
        except discord.HTTPException as exc:
            logger.warning(
                "could not open a thread in %s (%s): grant ActionBot 'Create Public Threads' "
                "and 'Send Messages in Threads'; answering in the channel instead",
                _name(message.channel),
                exc,
            )
            return None

    async def _send(
        self, where: Sendable, text: str, *, reply_to: discord.Message | None = None
    ) -> discord.Message | None:
        """Post without pinging anyone; a refusal is logged with the permission to grant."""
        options: dict[str, Any] = {"allowed_mentions": NO_PINGS}
        if reply_to is not None:
            options.update(reference=reply_to, mention_author=False)
        try:
            return await where.send(text, **options)
        except discord.Forbidden as exc:
            logger.warning(
                "cannot post in %s (%s): grant ActionBot 'View Channel', 'Send Messages' and "
                "'Send Messages in Threads' there",
                _name(where),
                exc.text,
            )
        except discord.HTTPException as exc:
            logger.warning("posting in %s failed: %s", _name(where), exc)
        return None

    # --- /actions -----------------------------------------------------------------------

    def _actions_group(self) -> app_commands.Group:
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
                await self._admin(interaction, AdminCommand(verb, name))

            command: app_commands.Command[Any, ..., None] = app_commands.Command(
                name=verb, description=description, callback=callback
            )
            command.autocomplete("name")(names)
            group.add_command(command)

        @group.command(name="list", description="Every action with its state and call count")
        async def list_(interaction: discord.Interaction) -> None:
            await self._admin(interaction, AdminCommand("list"))

        simple("show", "One action's definition (secrets masked)")
        simple("enable", "Offer the action to the AI again")
        simple("disable", "Stop offering the action to the AI (nothing is deleted)")

        @group.command(name="stats", description="Calls, failures, latency and last error")
        @app_commands.autocomplete(name=names)
        async def stats(interaction: discord.Interaction, name: str | None = None) -> None:
            await self._admin(interaction, AdminCommand("stats", name))

        @group.command(name="test", description="Call the endpoint once with key=value arguments")
        @app_commands.autocomplete(name=names)
        async def test(interaction: discord.Interaction, name: str, arguments: str = "") -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                pairs = parse_key_values(arguments)
            except AdminUsageError as exc:
                await self._admin(interaction, Notice(f"{exc}\n\n{USAGE}", error=True))
                return
            await self._admin(interaction, AdminCommand("test", name, pairs))

        return group

    async def _admin(
        self, interaction: discord.Interaction, command: AdminCommand | Notice
    ) -> None:
        """Check the caller, run the command (or show the notice), answer ephemerally."""
        user = interaction.user.id
        if not self.is_admin(interaction):
            logger.info("refused /actions from non-admin discord:%s", user)
            await _respond(interaction, wording.NOT_ADMIN_DISCORD, [])
            return
        result: AdminResult
        if isinstance(command, AdminCommand):
            result = await self.admin.perform(command, actor=f"{PLATFORM}:{user}")
        else:
            result = command
        content, embeds = admin_reply(result)
        await _respond(interaction, content, embeds)

    def is_admin(self, interaction: discord.Interaction) -> bool:
        """An id in ACTIONBOT_ADMINS, or a member with Manage Server in the operator's own
        server (ACTIONBOT_DISCORD_GUILD). Action state is global, so managing some other
        server the bot was invited to grants nothing."""
        if self.admins.listed(PLATFORM, str(interaction.user.id)):
            return True
        home = self.settings.discord_guild
        if home is None or interaction.guild_id != home:
            return False
        perms = interaction.permissions
        return perms.manage_guild or perms.administrator


class _ProgressNote:
    """A "Checking inventory…" note, posted only if the answer takes longer than `delay`.

    When posted, the note is edited into the first piece of the answer.
    """

    def __init__(self, adapter: DiscordAdapter, where: Sendable, *, delay: float) -> None:
        self.adapter = adapter
        self.where = where
        self.delay = delay
        self.message: discord.Message | None = None
        self.pending: asyncio.Task[None] | None = None
        self.status = ""

    async def show(self, status: str) -> None:
        self.status = status
        if self.message is not None:
            await _edit(self.message, f"*{status}*")
        elif self.delay <= 0:
            await self._post()
        elif self.pending is None:
            self.pending = asyncio.create_task(self._post_later(), name="discord progress")

    async def _post_later(self) -> None:
        await asyncio.sleep(self.delay)
        await self._post()

    async def _post(self) -> None:
        self.message = await self.adapter._send(self.where, f"*{self.status}*")

    async def finish(self, text: str) -> bool:
        """Turn the note into `text`; False when no note was posted (send `text` instead)."""
        if self.pending is not None:
            self.pending.cancel()
            await asyncio.gather(self.pending, return_exceptions=True)
        if self.message is None:
            return False
        return await _edit(self.message, text)


async def _edit(message: discord.Message, text: str) -> bool:
    try:
        await message.edit(content=text, allowed_mentions=NO_PINGS)
        return True
    except discord.HTTPException as exc:
        logger.warning("could not edit a message: %s", exc)
        return False


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


def _name(where: object) -> str:
    return f"#{getattr(where, 'name', None) or getattr(where, 'id', '?')}"
