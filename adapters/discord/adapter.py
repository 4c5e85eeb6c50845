"""The Discord adapter: discord.py messages in, engine turns and `/actions` results out.

Conversations as a Discord server expects: a mention in a channel opens a thread on that
message and answers there, so the thread is the conversation and follow-ups in it need no
mention (if the bot may not create threads, it answers in the channel as a reply instead).
A mention inside an existing thread continues in that thread; a DM is one conversation.
Every message for the bot is written to the inbox (`bot.delivery`) before anything is posted,
so each message id is answered once, even when the gateway replays it after a reconnect, and
a message whose turn a crash or a restart interrupted is answered after the restart (the
thread it opened and the note it posted are reused). The `/actions` group lives in
`commands` (its console buttons in `console`, the forms of `new` and `edit` in `editor`),
posting in `posting`, the status message with the action calls in `progress`, confirmation
cards in `confirm` and handoffs in `handoff`.
"""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import discord

from adapters.discord import confirm, console, handoff
from adapters.discord import wording as discord_wording
from adapters.discord.commands import ActionsCommands, sync_commands
from adapters.discord.markdown import to_discord_markdown
from adapters.discord.once import OnceTree
from adapters.discord.posting import (
    NO_PINGS,
    EditFailures,
    Sendable,
    channel_name,
    open_thread,
    partial_message,
    send,
)
from adapters.discord.progress import EDIT_INTERVAL, PROGRESS_DELAY, ProgressNote
from bot import wording
from bot.admin.operations import Admin
from bot.chunks import split_message
from bot.delivery import Inbox
from bot.engine import Engine
from bot.errors import ConfigError
from bot.runtime.config import Settings
from bot.runtime.logs import turn_scope
from bot.runtime.tasks import Turns
from bot.store import AdapterStore, InboxEntry
from bot.types import IncomingMessage, Reply

logger = logging.getLogger(__name__)

PLATFORM = "discord"
MESSAGE_LIMIT = 2000
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
        inbox: Inbox,
        progress_delay: float = PROGRESS_DELAY,
        edit_interval: float = EDIT_INTERVAL,
        guild_ready_timeout: float = 2.0,
        shard: tuple[int, int] | None = None,
        register: bool = True,
        commands: bool = True,
    ) -> None:
        if settings.discord_token is None:
            raise ConfigError("DISCORD_TOKEN is not set.")
        self.settings = settings
        self.engine = engine
        self.admin = admin
        self.store = store
        self.turns = turns
        self.inbox = inbox
        self.shard = shard
        """(shard id, shard count) of the one gateway shard this client connects, or None
        for an unsharded client."""
        if register:  # else `shards.DiscordShards` answers for all of its clients
            inbox.register(PLATFORM, self.answer)
        self._received: dict[str, discord.Message] = {}
        """Messages received by this process and not yet answered (a replay fetches them)."""
        self.progress_delay = progress_delay
        self.edit_interval = edit_interval
        self.edit_failures = EditFailures()
        intents = discord.Intents.default()
        intents.message_content = True
        self.client = discord.Client(
            intents=intents,
            allowed_mentions=NO_PINGS,
            guild_ready_timeout=guild_ready_timeout,
            shard_id=None if shard is None else shard[0],
            shard_count=None if shard is None else shard[1],
        )
        self.actions = ActionsCommands(
            settings=settings, admin=admin, platform=PLATFORM, leases=store
        )
        self.tree = OnceTree(self.client, store=store)
        self.tree.add_command(self.actions.group())
        if commands:  # once per deployment: `shards.DiscordShards` lets shard 0's client do it
            self.client.setup_hook = self._sync_commands  # type: ignore[method-assign]
        self.cards = confirm.Cards(inbox=inbox, leases=store, display_name=self._display_name)
        confirm.register(self.client, self.cards.on_click)
        console.register(self.client, self.actions.toggle)
        self.actions.editor.register(self.client)
        self.handoffs = handoff.HandoffPoster(
            settings=settings, inbox=inbox, find_channel=self._channel
        )
        self.client.event(self.on_message)
        self._connection: asyncio.Task[None] | None = None
        self.receiving = True

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, connect to the gateway and wait for READY; `ConfigError` says what to fix."""
        await self._login(check=True)
        self._connection = asyncio.create_task(self.client.connect(), name="discord gateway")
        ready = asyncio.create_task(self.client.wait_until_ready(), name="discord ready")
        await asyncio.wait({self._connection, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await self._failed_to_connect()
        logger.info("Discord connected as %s; invite: %s", self.client.user, self.invite_url())

    async def check(self) -> None:
        """The token and the handoff channel, checked as `start` does, without connecting."""
        await self._login(check=True)
        await self.client.close()

    async def login(self) -> None:
        """Log in for the REST API only (no gateway): to answer taken-over messages."""
        await self._login()

    async def _login(self, *, check: bool = False) -> None:
        """Log in for the REST API; with `check`, also check the handoff channel."""
        token = self.settings.discord_token
        assert token is not None  # checked in __init__
        try:
            await self.client.login(token.get_secret_value())
            if check:
                await handoff.check_channel(self.client, self.settings)
        except discord.LoginFailure:
            await self.client.close()
            raise ConfigError(discord_wording.DISCORD_LOGIN_REJECTED) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self.client.close()
            where = discord.http.Route.BASE
            raise ConfigError(wording.unreachable("Discord", where, exc)) from None
        except ConfigError:
            await self.client.close()
            raise

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

    async def _sync_commands(self) -> None:
        await sync_commands(self.tree, self.settings.discord_guild)

    async def stop_receiving(self) -> None:
        """Discord has no pause: readiness is off, and messages go on being written to the
        inbox (by then only written down, for the next start) until the gateway closes."""
        self.receiving = False

    async def close(self) -> None:
        await self.client.close()
        if self._connection is not None:
            await asyncio.gather(self._connection, return_exceptions=True)
            self._connection = None

    async def ready(self) -> bool:
        return self.receiving and self.client.is_ready() and not self.client.is_closed()

    # --- messages -----------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """Decide whether a message is for the bot; if so, hand it to the inbox."""
        if message.author.bot:
            return
        conversation = await self._conversation_of(message)
        if conversation is None:
            return
        if conversation == "new":
            conversation = f"new:{message.id}"
        incoming = IncomingMessage(
            platform=PLATFORM,
            conversation=conversation,
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            text=self._text_of(message),
            event_id=str(message.id),
            team_id=str(message.guild.id) if message.guild else "",
            # In a thread, the channel it belongs to: where `channels` scoping looks.
            channel_id=str(getattr(message.channel, "parent_id", None) or message.channel.id),
            is_admin=self._is_admin(message),
        )
        route = {
            "channel": message.channel.id,
            "message": message.id,
            "attachments": bool(message.attachments),
        }
        key = f"{PLATFORM}:{message.id}"
        held = key in self._received  # a duplicate delivery while its turn waits
        self._received.setdefault(key, message)
        if not await self.inbox.receive(incoming, route) and not held:
            self._received.pop(key, None)

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

    def received(self, key: str) -> bool:
        """Whether this client received the message `key` and has not answered it yet."""
        return key in self._received

    async def answer(self, entry: InboxEntry) -> Reply | None:
        """One inbox entry's turn: where to answer (opening the thread for a new mention,
        unless an earlier attempt did), then the turn, then the answer posted."""
        route = entry.route
        original = self._received.pop(entry.key, None)
        channel = original.channel if original else await self._channel(route["channel"])
        if channel is None:
            return None
        source = original or partial_message(channel, int(route["message"]))
        incoming = entry.message
        if not incoming.text:
            polite = wording.TEXT_ONLY if route.get("attachments") else wording.EMPTY_MESSAGE
            return Reply(text=polite) if await send(channel, polite, reply_to=source) else None
        where: Sendable = channel
        reply_to: discord.Message | discord.PartialMessage | None = None
        if incoming.conversation.startswith("new:"):
            thread = None if source is None else await self._thread_for(entry, source)
            where = thread or channel
            reply_to = None if thread else source
            conversation = f"thread:{thread.id}" if thread else f"message:{route['message']}"
            incoming = incoming.model_copy(update={"conversation": conversation})
        with turn_scope(PLATFORM, incoming.conversation):
            return await self._reply(entry, incoming, where, reply_to)

    def _is_admin(self, message: discord.Message) -> bool:
        """For `audience = "admins"` actions: an id in ACTIONBOT_ADMINS, or a member with
        Manage Server in the operator's own server. Judged when the message arrives and kept
        with it, so a replay or a resumed turn sees the same answer."""
        if self.actions.admins.listed(PLATFORM, str(message.author.id)):
            return True
        home = self.settings.discord_guild
        if message.guild is None or message.guild.id != home:
            return False
        author = message.author
        perms = author.guild_permissions if isinstance(author, discord.Member) else None
        return bool(perms and (perms.manage_guild or perms.administrator))

    async def _channel(self, channel_id: object) -> Sendable | None:
        """A channel, thread or DM by id: from the cache, else asked of Discord."""
        ident = int(str(channel_id))
        found = self.client.get_channel(ident)
        if found is None:
            try:
                found = await self.client.fetch_channel(ident)
            except discord.HTTPException as exc:
                logger.warning("cannot answer in channel %s: %s", ident, exc)
                return None
        return found if isinstance(found, discord.abc.Messageable) else None

    async def _thread_for(
        self, entry: InboxEntry, source: discord.Message | discord.PartialMessage
    ) -> discord.Thread | None:
        """The thread an earlier attempt opened for this mention, or a new one."""
        opened = entry.route.get("thread")
        if opened is not None:
            found = await self._channel(opened)
            return found if isinstance(found, discord.Thread) else None
        thread = await open_thread(source, entry.message.text)
        if thread is not None:
            await self.inbox.update_route(entry, {"thread": thread.id})
        return thread

    async def _reply(
        self,
        entry: InboxEntry,
        incoming: IncomingMessage,
        where: Sendable,
        reply_to: discord.Message | discord.PartialMessage | None,
    ) -> Reply | None:
        async def remember(posted: discord.Message) -> None:
            await self.inbox.update_route(entry, {"note": posted.id})

        earlier = entry.route.get("note")
        note = ProgressNote(
            where,
            delay=self.progress_delay,
            interval=self.edit_interval,
            failures=self.edit_failures,
            on_post=remember,
        )
        if earlier is not None:
            note.message = partial_message(where, int(earlier))
        reply = entry.reply or await self._run_engine(incoming, where, note, entry.progress)
        if reply.confirmations:
            return reply if await self.cards.show(entry, reply, where, note) else None
        await self.cards.close(entry, where)
        if reply.handoff is not None:
            link = _link(where, int(entry.route["message"]))
            if not await self.handoffs.post_once(entry, reply.handoff, link=link):
                return None  # the team was not told: the inbox tries again (the reply is kept)
        pieces = split_message(to_discord_markdown(reply.text), MESSAGE_LIMIT)
        pieces = pieces or [wording.EMPTY_ANSWER]
        if not await note.finish(pieces[0]):
            posted = await send(where, pieces[0], reply_to=reply_to)
            if posted is None:
                return None  # not delivered: the inbox tries again (the reply is kept)
            await remember(posted)
        for piece in pieces[1:]:
            await send(where, piece)
        return reply

    def _display_name(self, action: str) -> str:
        return next((a.display_name for a in self.engine.actions if a.name == action), action)

    async def _run_engine(
        self,
        incoming: IncomingMessage,
        where: Sendable,
        note: ProgressNote,
        resume: list[dict[str, object]] | None,
    ) -> Reply:
        async def turn() -> Reply:
            return await self.engine.handle(
                incoming, progress=note.show, calls=note.call, resume=resume
            )

        try:
            async with where.typing():
                return await turn()
        except discord.HTTPException as exc:  # typing refused: answer anyway
            logger.warning("typing indicator failed in %s: %s", channel_name(where), exc)
            return await turn()
        finally:
            await note.stop()  # no status edit may land after the answer


def _link(where: Sendable, message_id: int) -> str:
    """Where a person takes over: the thread, else the customer's message."""
    if isinstance(where, discord.Thread):
        return where.jump_url
    message = partial_message(where, message_id)
    return message.jump_url if message is not None else ""
