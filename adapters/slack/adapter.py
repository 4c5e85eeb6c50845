"""The Slack adapter: slack-bolt events in, engine turns and `/actions` results out.

Socket Mode when `SLACK_APP_TOKEN` is set, otherwise HTTP mode on `POST /slack/events` of the
bot's HTTP server (signed requests only). Bolt runs our listeners before it acknowledges
(`process_before_response`), and they only check the event and write it to the inbox
(`bot.delivery`), which deduplicates it and starts its turn in the background: Slack gets its
acknowledgement within its 3 seconds only once the event is written down, and every event id
is answered once, also across a crash (a replay edits the placeholder it had posted).

Conversations as Slack users expect: a mention in a channel is answered in a thread, and the
thread is the conversation; later messages in that thread continue it without a mention;
a direct message channel is one conversation.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import wording as slack_wording
from adapters.slack.cards import CANCEL_ACTION, CONFIRM_ACTION, Cards
from adapters.slack.format import admin_blocks, fallback_text, to_mrkdwn
from bot import wording
from bot.actions.models import Audience, ContextSource
from bot.admin.access import AdminCheck
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

PLATFORM = "slack"
MESSAGE_LIMIT = 3900
"""Characters per posted message: Slack truncates `text` beyond 4000."""
HANDLED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
CONVERSATION_CHANNELS = frozenset({"channel", "group", "mpim"})
EMAIL_TTL_SECONDS = 3600.0
"""How long a user's Slack profile is reused for `from = "user.email"` / `"user.name"`."""
_HINTS = {
    "not_in_channel": "invite the bot to the channel (/invite @ActionBot)",
    "channel_not_found": "invite the bot to the channel, or check it still exists",
    "missing_scope": "add the missing scope in the app settings and reinstall the app",
    "invalid_auth": "check SLACK_BOT_TOKEN",
}


class SlackAdapter:
    """Connects one Slack workspace to the engine and the admin operations."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        admin: Admin,
        store: AdapterStore,
        turns: Turns,
        inbox: Inbox,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set.")
        self.settings = settings
        self.engine = engine
        self.admin = admin
        self.store = store
        self.turns = turns
        self.inbox = inbox
        inbox.register(PLATFORM, self._answer)
        self.clock = clock
        self.bot_user_id = ""
        self.team_id = ""
        self.connected = False
        signing = settings.slack_signing_secret
        # The app builds its own client from the token: given a client too, bolt warns that
        # the token (which it also reads from SLACK_BOT_TOKEN) is unused.
        self.app = AsyncApp(
            token=settings.slack_bot_token.get_secret_value(),
            signing_secret=signing.get_secret_value() if signing else None,
            process_before_response=True,
            request_verification_enabled=settings.slack_app_token is None,
        )
        self.client = self.app.client
        self.client.base_url = self.api_url
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.command("/actions")(self._on_actions)
        self.cards = Cards(
            call=self._call,
            client=self.client,
            inbox=inbox,
            display_names={a.name: a.display_name for a in engine.actions},
            team=lambda: self.team_id,
        )
        self.app.action(CONFIRM_ACTION)(self.cards.on_confirm)
        self.app.action(CANCEL_ACTION)(self.cards.on_cancel)
        self._socket: AsyncSocketModeHandler | None = None
        self.admins = AdminCheck(settings.admin_ids, clock=clock)
        self._needs_email = any(
            p.source is ContextSource.USER_EMAIL for a in engine.actions for p in a.parameters
        )
        self._needs_name = any(
            p.source is ContextSource.USER_NAME for a in engine.actions for p in a.parameters
        )
        self._needs_admin = any(a.audience is Audience.ADMINS for a in engine.actions)
        self._profiles: dict[str, tuple[str, str, float]] = {}

    @property
    def socket_mode(self) -> bool:
        return self.settings.slack_app_token is not None

    @property
    def api_url(self) -> str:
        return self.settings.slack_api_url or AsyncWebClient.BASE_URL

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Check the tokens with Slack, then connect (Socket Mode) or wait for HTTP events."""
        await self._check_bot_token()
        if self.socket_mode:
            await self._connect_socket()
        self.connected = True
        mode = "Socket Mode" if self.socket_mode else "HTTP mode (POST /slack/events)"
        logger.info("Slack connected as %s in %s", self.bot_user_id, mode)

    async def stop_receiving(self) -> None:
        """Stop taking new events (Socket Mode disconnects; HTTP mode is closed by the server)."""
        self.connected = False
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None

    async def close(self) -> None:
        await self.stop_receiving()

    async def ready(self) -> bool:
        """Started and, in Socket Mode, connected right now (the client reconnects by
        itself, with backoff, after a lost connection)."""
        if not self.connected:
            return False
        return self._socket is None or bool(await self._socket.client.is_connected())

    async def _check_bot_token(self) -> None:
        identity = await self._checked("auth_test", "SLACK_BOT_TOKEN")
        self.bot_user_id = str(identity.get("user_id", ""))
        self.team_id = str(identity.get("team_id", ""))

    async def check(self) -> None:
        """The tokens, checked with Slack as `start` does, without connecting."""
        await self._check_bot_token()
        if self.socket_mode:
            await self._check_app_token()

    async def _check_app_token(self) -> str:
        token = self.settings.slack_app_token
        assert token is not None  # checked by socket_mode
        app_token = token.get_secret_value()
        await self._checked("apps_connections_open", "SLACK_APP_TOKEN", app_token=app_token)
        return app_token

    async def _connect_socket(self) -> None:
        # Checked first: the Socket Mode client retries a rejected token forever.
        app_token = await self._check_app_token()
        self._socket = AsyncSocketModeHandler(self.app, app_token)
        try:
            await self._socket.connect_async()
        except BaseException:
            await self._socket.close_async()
            self._socket = None
            raise

    async def _checked(self, method: str, variable: str, **arguments: str) -> Any:
        """Call a Web API method at startup; a rejection or an unreachable Slack becomes a
        `ConfigError` that says what to fix."""
        try:
            return await getattr(self.client, method)(**arguments)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            raise ConfigError(slack_wording.slack_token_rejected(variable, error)) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ConfigError(wording.unreachable("Slack", self.api_url, exc)) from None

    async def handle_http(self, request: web.Request) -> web.Response:
        """`POST /slack/events` in HTTP mode: bolt verifies the signature (401 otherwise).

        While shutting down, events are still written to the inbox and acknowledged, and
        answered after the restart. The time to answer is observed as
        `actionbot_slack_ack_seconds`.
        """
        started = time.perf_counter()
        response = await self.app.async_dispatch(await to_bolt_request(request))
        answer = await to_aiohttp_response(response)
        self.engine.metrics.slack_ack.observe(time.perf_counter() - started)
        return answer

    # --- events -------------------------------------------------------------------------

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        if event.get("bot_id"):
            return
        text = self._without_mention(event.get("text", ""))
        conversation = f"{channel}:{thread_ts}"
        await self._receive(event, body, conversation=conversation, thread_ts=thread_ts, text=text)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("bot_id") or event.get("subtype") not in HANDLED_SUBTYPES:
            return
        text = event.get("text") or ""
        channel, kind = event.get("channel", ""), event.get("channel_type")
        thread_ts = event.get("thread_ts")
        if kind == "im":
            conversation = channel
        elif kind in CONVERSATION_CHANNELS and thread_ts and not self._mentions_me(text):
            conversation = f"{channel}:{thread_ts}"
            if not await self.store.has_conversation(f"{PLATFORM}:{conversation}"):
                return
        else:
            return
        if not text.strip():
            return
        await self._receive(event, body, conversation=conversation, thread_ts=thread_ts, text=text)

    def _mentions_me(self, text: str) -> bool:
        return bool(self.bot_user_id) and f"<@{self.bot_user_id}>" in text

    def _without_mention(self, text: str) -> str:
        return re.sub(rf"<@{re.escape(self.bot_user_id)}(\|[^>]*)?>", "", text).strip()

    async def _receive(
        self,
        event: dict[str, Any],
        body: dict[str, Any],
        *,
        conversation: str,
        thread_ts: str | None,
        text: str,
    ) -> None:
        """Write the event to the inbox (before bolt acknowledges it); the inbox starts its
        turn. Slack's `event_id` is the same on every retry of one event."""
        event_id = body.get("event_id") or event.get("client_msg_id") or event.get("ts")
        message = IncomingMessage(
            platform=PLATFORM,
            conversation=conversation,
            user_id=str(event.get("user", "")),
            text=text,
            event_id=str(event_id),
            team_id=str(body.get("team_id") or event.get("team") or ""),
            channel_id=str(event["channel"]),
        )
        route = {"channel": event["channel"], "thread_ts": thread_ts, "ts": event.get("ts")}
        await self.inbox.receive(message, route)

    async def _answer(self, entry: InboxEntry) -> Reply | None:
        with turn_scope(PLATFORM, entry.message.conversation):
            return await self._reply(entry)

    async def _reply(self, entry: InboxEntry) -> Reply | None:
        """Post the placeholder (unless an earlier attempt did), run the turn (unless it
        already has its reply) and edit the placeholder into the answer."""
        message, route = entry.message, entry.route
        channel, thread_ts = str(route["channel"]), route.get("thread_ts")
        if not message.text:
            reply = Reply(text=wording.EMPTY_MESSAGE)
            return reply if await self._post(channel, thread_ts, reply.text) else None
        placeholder = route.get("placeholder")
        if placeholder is None and route.get("posting"):
            placeholder = await self._find_placeholder(channel, thread_ts, route.get("ts"))
        if placeholder is None:
            # Marked first: if the process dies before the placeholder's ts is recorded,
            # the next attempt looks for it instead of posting a second one.
            await self.inbox.update_route(entry, {"posting": True})
            placeholder = await self._post(channel, thread_ts, f"_{wording.WORKING}_")
            if placeholder is None:
                return None  # could not post here at all: running the engine would help nobody
            await self.inbox.update_route(entry, {"placeholder": placeholder})

        async def progress(status: str) -> None:
            await self._update(channel, placeholder, f"_{status}_")  # a missed status is fine

        if entry.reply is None:
            message = await self._with_user_facts(message)
        reply = entry.reply or await self.engine.handle(
            message, progress=progress, resume=entry.progress
        )
        cards: dict[str, str] = dict(route.get("cards") or {})
        if reply.confirmations:
            await self._update(channel, placeholder, f"_{reply.text}_")
            return reply if await self.cards.show(entry, reply, cards) else None
        await self.cards.close(channel, cards)
        pieces = split_message(to_mrkdwn(reply.text), MESSAGE_LIMIT) or [wording.EMPTY_ANSWER]
        if not await self._update(channel, placeholder, pieces[0]):
            return None  # not delivered: the inbox tries again (the reply is kept)
        for piece in pieces[1:]:
            await self._post(channel, thread_ts, piece)
        return reply

    async def _with_user_facts(self, message: IncomingMessage) -> IncomingMessage:
        """The message with what some actions need to know about its user and Slack must
        be asked for: the email (`from = "user.email"`), admin or not (`audience`)."""
        facts: dict[str, object] = {}
        if self._needs_email or self._needs_name:
            email, name = await self._profile(message.user_id)
            facts.update(user_email=email, user_name=message.user_name or name)
        if self._needs_admin:
            facts["is_admin"] = await self.is_admin(message.user_id)
        return message.model_copy(update=facts) if facts else message

    async def _profile(self, user: str) -> tuple[str, str]:
        """The user's email (`users:read.email`) and display name from their Slack profile,
        cached for an hour; "" for what Slack does not say (an action needing it then gets
        a tool error, not a guess)."""
        known = self._profiles.get(user)
        if known is not None and known[2] > self.clock():
            return known[0], known[1]
        info = await self._call(self.client.users_info, user=user)
        profile = (info or {}).get("user", {}).get("profile", {})
        email = str(profile.get("email") or "")
        name = str(profile.get("display_name") or profile.get("real_name") or "")
        if info is not None:
            self._profiles[user] = (email, name, self.clock() + EMAIL_TTL_SECONDS)
        return email, name

    async def _find_placeholder(
        self, channel: str, thread_ts: str | None, after: str | None
    ) -> str | None:
        """The placeholder an earlier attempt posted without recording it: the bot's first
        "Working on it…" after the customer's message in this conversation (later turns of
        the conversation wait for this one, so it can only be this turn's)."""
        if thread_ts:
            found = await self._call(
                self.client.conversations_replies, channel=channel, ts=thread_ts, oldest=after
            )
        else:
            found = await self._call(
                self.client.conversations_history, channel=channel, oldest=after
            )
        mine = [
            m
            for m in (found or {}).get("messages", [])
            if m.get("user") == self.bot_user_id and m.get("text") == f"_{wording.WORKING}_"
        ]
        return min((str(m["ts"]) for m in mine), key=float, default=None)

    async def _post(self, channel: str, thread_ts: str | None, text: str) -> str | None:
        response = await self._call(
            self.client.chat_postMessage, channel=channel, thread_ts=thread_ts, text=text
        )
        return None if response is None else str(response.get("ts"))

    async def _update(self, channel: str, ts: str, text: str) -> bool:
        response = await self._call(self.client.chat_update, channel=channel, ts=ts, text=text)
        return response is not None

    async def _call(
        self, method: Callable[..., Awaitable[Any]], **kwargs: Any
    ) -> dict[str, Any] | None:
        """A Web API call whose failure is logged with what to do, not raised."""
        try:
            response = await method(**{k: v for k, v in kwargs.items() if v is not None})
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            hint = _HINTS.get(error, "see Slack's documentation for this error")
            logger.warning(
                "Slack %s failed in %s: %s; %s", method.__name__, kwargs.get("channel"), error, hint
            )
            return None
        return dict(response.data) if isinstance(response.data, dict) else {}

    # --- /actions -----------------------------------------------------------------------

    async def _on_actions(
        self,
        ack: Callable[..., Awaitable[None]],
        command: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        await ack()
        user = str(command.get("user_id", ""))
        text = str(command.get("text", ""))
        team = str(command.get("team_id", ""))
        work = self._run_admin(user, text, respond, team=team)
        self.turns.spawn(work, name=f"slack /actions by {user}", queued=False)

    async def _run_admin(
        self, user: str, text: str, respond: Callable[..., Awaitable[Any]], *, team: str
    ) -> None:
        if team != self.team_id:
            logger.warning("refused /actions %r from slack:%s of another team %s", text, user, team)
            await respond(text=wording.NOT_ADMIN, response_type="ephemeral")
            return
        if not await self.is_admin(user):
            logger.info("refused /actions %r from non-admin slack:%s", text, user)
            await respond(text=wording.NOT_ADMIN, response_type="ephemeral")
            return
        result = await self.admin.execute(text, actor=f"{PLATFORM}:{user}")
        await respond(
            text=fallback_text(result), blocks=admin_blocks(result), response_type="ephemeral"
        )

    async def is_admin(self, user: str) -> bool:
        """An id in ACTIONBOT_ADMINS, or a workspace admin or owner (cached for 5 minutes).
        The caller has checked that the command comes from the bot's own workspace."""
        return await self.admins.allowed(PLATFORM, user, lambda: self._workspace_admin(user))

    async def _workspace_admin(self, user: str) -> bool | None:
        info = await self._call(self.client.users_info, user=user)
        if info is None:
            return None  # Slack could not say: no, and asked again next time
        profile = info.get("user", {})
        return bool(
            profile.get("is_admin") or profile.get("is_owner") or profile.get("is_primary_owner")
        )
