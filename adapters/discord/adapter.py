"""The Discord adapter: discord.py messages in, engine turns and `/actions` results out.

Conversations as a Discord server expects: a mention in a channel opens a thread on that
message and answers there, so the thread is the conversation and follow-ups in it need no
mention (if the bot may not create threads, it answers in the channel as a reply instead).
A mention inside an existing thread continues in that thread; a DM is one conversation.
Each message id runs once, even when the gateway replays it after a reconnect. The `/actions`
group lives in `commands`, posting in `posting` and the slow-answer note in `progress`.
"""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import discord
from discord import app_commands

from adapters.discord import wording as discord_wording
from adapters.discord.commands import ActionsCommands
from adapters.discord.markdown import to_discord_markdown
from adapters.discord.posting import NO_PINGS, Sendable, channel_name, send
from adapters.discord.progress import PROGRESS_DELAY, ProgressNote
from bot import wording
from bot.admin.operations import Admin
from bot.chunks import split_message
from bot.engine import Engine
from bot.errors import ConfigError
from bot.runtime.config import Settings
from bot.runtime.logs import turn_scope
from bot.runtime.tasks import Turns
from bot.store import AdapterStore, first_delivery
from bot.types import IncomingMessage

logger = logging.getLogger(__name__)

PLATFORM = "discord"
MESSAGE_LIMIT = 2000
THREAD_NAME_LIMIT = 90
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
)


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
        self.actions = ActionsCommands(settings=settings, admin=admin, platform=PLATFORM)
        self.tree = app_commands.CommandTree(self.client)
        self.tree.add_command(self.actions.group())
        self.client.setup_hook = self._sync_commands  # type: ignore[method-assign]
        self.client.event(self.on_message)
        self._connection: asyncio.Task[None] | None = None
        self.receiving = True

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
            raise ConfigError(discord_wording.DISCORD_LOGIN_REJECTED) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self.client.close()
            where = discord.http.Route.BASE
            raise ConfigError(wording.unreachable("Discord", where, exc)) from None

    async def _failed_to_connect(self) -> None:
        assert self._connection is not None
        error = self._connection.exception()
        await self.client.close()
        if isinstance(error, discord.PrivilegedIntentsRequired):
            raise ConfigError(discord_wording.DISCORD_INTENT_MISSING) from None
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
            await send(message.channel, polite, reply_to=message)
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
        note = ProgressNote(where, delay=self.progress_delay)
        try:
            async with where.typing():
                reply = await self.engine.handle(incoming, progress=note.show)
        except discord.HTTPException as exc:  # typing refused: answer anyway
            logger.warning("typing indicator failed in %s: %s", channel_name(where), exc)
            reply = await self.engine.handle(incoming, progress=note.show)
        pieces = split_message(to_discord_markdown(reply.text), MESSAGE_LIMIT)
        pieces = pieces or [wording.EMPTY_ANSWER]
        first = await note.finish(pieces[0])
        if not first:
            await send(where, pieces[0], reply_to=reply_to)
        for piece in pieces[1:]:
            await send(where, piece)

    async def _open_thread(self, message: discord.Message, text: str) -> discord.Thread | None:
        name = text if len(text) <= THREAD_NAME_LIMIT else text[: THREAD_NAME_LIMIT - 1] + "…"
        try:
            return await message.create_thread(name=name)
        except discord.HTTPException as exc:
            logger.warning(
                "could not open a thread in %s (%s): grant ActionBot 'Create Public Threads' "
                "and 'Send Messages in Threads'; answering in the channel instead",
                channel_name(message.channel),
                exc,
            )
            return None
