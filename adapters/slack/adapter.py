"""The Slack adapter: slack-bolt events in, engine turns and `/actions` results out.

Socket Mode when `SLACK_APP_TOKEN` is set, otherwise HTTP mode on `POST /slack/events` of the
bot's HTTP server (signed requests only). The listeners run before the event is
acknowledged (`process_before_response`), and they only check the event and write it to the inbox
(`bot.delivery`), which deduplicates it and starts its turn in the background: Slack gets its
acknowledgement within its 3 seconds only once the event is written down, and every event id
is answered once, also across a crash (a replay edits the placeholder it had posted).

Messages and mentions become inbox entries in `callbacks`, which also acknowledges them
without bolt's dispatch in HTTP mode. Answers in assistant threads are streamed
(`assistant`); everywhere else, and where the workspace lacks the feature, a placeholder is
edited into the answer (`placeholder`). Handoffs to a person go to `handoff`, the `/actions`
console's buttons to `console`, confirmation cards to `cards`.
"""

from __future__ import annotations

import logging
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
from adapters.slack.api import Api
from adapters.slack.assistant import AssistantThreads, StreamTurn
from adapters.slack.callbacks import EventCallbacks
from adapters.slack.cards import CANCEL_ACTION, CONFIRM_ACTION, Cards
from adapters.slack.console import TOGGLE_ACTION, ConsoleButtons
from adapters.slack.form_view import CALLBACK_ID
from adapters.slack.forms import ActionForms
from adapters.slack.handoff import HandoffChannel
from adapters.slack.people import People
from adapters.slack.placeholder import MESSAGE_LIMIT, Placeholder
from adapters.slack.results import admin_blocks, fallback_text
from bot import wording
from bot.admin.operations import Admin
from bot.admin.results import ActionForm
from bot.delivery import Inbox
from bot.engine import Engine
from bot.errors import ConfigError
from bot.runtime.config import Settings
from bot.runtime.logs import turn_scope
from bot.runtime.tasks import Turns
from bot.store import AdapterStore, InboxEntry
from bot.types import Reply

logger = logging.getLogger(__name__)

__all__ = ["MESSAGE_LIMIT", "SlackAdapter"]

PLATFORM = "slack"


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
        self._signing_secret = signing.get_secret_value() if signing else None
        # The app builds its own client from the token: given a client too, bolt warns that
        # the token (which it also reads from SLACK_BOT_TOKEN) is unused.
        self.app = AsyncApp(
            token=settings.slack_bot_token.get_secret_value(),
            signing_secret=self._signing_secret,
            process_before_response=True,
            request_verification_enabled=settings.slack_app_token is None,
        )
        self.client = self.app.client
        self.client.base_url = self.api_url
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        self.api = Api(self.client)
        self.people = People(
            api=self.api, admin_ids=settings.admin_ids, actions=engine.actions, clock=clock
        )
        self.assistant = AssistantThreads(
            api=self.api, settings=settings, admin=admin, store=store, inbox=inbox, turns=turns
        )
        self.handoff = HandoffChannel.configured(settings, api=self.api, inbox=inbox)
        self.cards = Cards(
            call=self.api.call,
            client=self.client,
            inbox=inbox,
            actions=engine.actions,
            team=lambda: self.team_id,
        )
        self.console = ConsoleButtons(
            admin=admin, is_admin=self.is_admin, team=lambda: self.team_id, turns=turns
        )
        self.forms = ActionForms(
            admin=admin,
            api=self.api,
            is_admin=self.is_admin,
            team=lambda: self.team_id,
            turns=turns,
        )
        self.callbacks = EventCallbacks(
            store=store,
            inbox=inbox,
            signing_secret=self._signing_secret,
            bot_user_id=lambda: self.bot_user_id,
        )
        self._listen()
        self._socket: AsyncSocketModeHandler | None = None

    @property
    def socket_mode(self) -> bool:
        return self.settings.slack_app_token is not None

    @property
    def api_url(self) -> str:
        return self.settings.slack_api_url or AsyncWebClient.BASE_URL

    def _listen(self) -> None:
        for name, listener in self.callbacks.listeners.items():
            self.app.event(name)(listener)
        self.app.event("assistant_thread_started")(self.assistant.on_thread_started)
        self.app.event("assistant_thread_context_changed")(self.assistant.on_context_changed)
        self.app.command("/actions")(self._on_actions)
        self.app.action(CONFIRM_ACTION)(self.cards.on_confirm)
        self.app.action(CANCEL_ACTION)(self.cards.on_cancel)
        self.app.action(TOGGLE_ACTION)(self.console.on_toggle)
        self.app.view(CALLBACK_ID)(self.forms.on_submit)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Check the tokens (and the handoff channel) with Slack, then connect (Socket Mode)
        or wait for HTTP events."""
        await self._check_bot_token()
        if self.handoff is not None:
            await self.handoff.check()
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
        """The tokens and the handoff channel, checked with Slack as `start` does, without
        connecting."""
        await self._check_bot_token()
        if self.handoff is not None:
            await self.handoff.check()
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
        """`POST /slack/events` in HTTP mode: signed messages and mentions are taken by
        `callbacks`, everything else by bolt, which answers a bad signature 401.

        While shutting down, events are still written to the inbox and acknowledged, and
        answered after the restart. The time to answer is observed as
        `actionbot_slack_ack_seconds`.
        """
        started = time.perf_counter()
        answer = await self.callbacks.answer(request.headers, await request.read())
        if answer is None:
            response = await self.app.async_dispatch(await to_bolt_request(request))
            answer = await to_aiohttp_response(response)
        self.engine.metrics.slack_ack.observe(time.perf_counter() - started)
        return answer

    async def _answer(self, entry: InboxEntry) -> Reply | None:
        with turn_scope(PLATFORM, entry.message.conversation):
            return await self._reply(entry)

    async def _reply(self, entry: InboxEntry) -> Reply | None:
        """Show that the bot is working (unless an earlier attempt did), run the turn
        (unless it already has its reply), hand over to a person if the model asked, and
        deliver the answer; None when it could not be delivered (the inbox tries again)."""
        message = entry.message
        if not message.text:
            reply = Reply(text=wording.EMPTY_MESSAGE)
            placeholder = self._placeholder(entry)
            return reply if await placeholder.post(reply.text) else None
        surface = self._surface(entry)
        if not await surface.open():
            return None  # could not post here at all: running the engine would help nobody
        if entry.reply is None:
            message = await self.people.with_facts(message)
        reply = entry.reply or await self.engine.handle(
            message, progress=surface.progress, resume=entry.progress, calls=surface.call
        )
        handoff, desk = reply.handoff, self.handoff
        if handoff is not None and desk is not None and not await desk.post(entry, handoff):
            return None  # the team was not told: tried again (the reply is kept)
        cards: dict[str, str] = dict(entry.route.get("cards") or {})
        if reply.confirmations:
            await surface.waiting(reply.text)
            return reply if await self.cards.show(entry, reply, cards) else None
        await self.cards.close(str(entry.route["channel"]), cards)
        return reply if await surface.deliver(reply.text) else None

    def _placeholder(self, entry: InboxEntry) -> Placeholder:
        return Placeholder(
            api=self.api, inbox=self.inbox, entry=entry, bot_user_id=self.bot_user_id
        )

    def _surface(self, entry: InboxEntry) -> Placeholder | StreamTurn:
        """How this turn answers: streamed in an assistant thread (also when an earlier
        attempt started a stream), else with a placeholder edited into the answer."""
        route = entry.route
        if route.get("assistant") and (self.assistant.available or route.get("stream")):
            return self.assistant.turn(
                entry, self._placeholder(entry), bot_user_id=self.bot_user_id
            )
        return self._placeholder(entry)

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
        where = f"{PLATFORM}:{command.get('channel_id', '')}"
        trigger = str(command.get("trigger_id", ""))
        work = self._run_admin(user, text, respond, team=team, where=where, trigger_id=trigger)
        self.turns.spawn(work, name=f"slack /actions by {user}", queued=False)

    async def _run_admin(
        self,
        user: str,
        text: str,
        respond: Callable[..., Awaitable[Any]],
        *,
        team: str,
        where: str,
        trigger_id: str = "",
    ) -> None:
        """`/actions TEXT` run in `where` (`slack:<channel>`: what `resume` resumes);
        `new` and `edit NAME` open the form with the command's `trigger_id`."""
        if team != self.team_id:
            logger.warning("refused /actions %r from slack:%s of another team %s", text, user, team)
            await respond(text=wording.NOT_ADMIN, response_type="ephemeral")
            return
        if not await self.is_admin(user):
            logger.info("refused /actions %r from non-admin slack:%s", text, user)
            await respond(text=wording.NOT_ADMIN, response_type="ephemeral")
            return
        result = await self.admin.execute(text, actor=f"{PLATFORM}:{user}", where=where)
        if isinstance(result, ActionForm) and trigger_id:
            channel = where.partition(":")[2]
            if await self.forms.open(trigger_id, result, channel=channel):
                return
            await respond(text=slack_wording.FORM_NOT_OPENED, response_type="ephemeral")
            return
        await respond(
            text=fallback_text(result), blocks=admin_blocks(result), response_type="ephemeral"
        )

    async def is_admin(self, user: str) -> bool:
        """An id in ACTIONBOT_ADMINS, or a workspace admin or owner (cached for 5 minutes)."""
        return await self.people.is_admin(user)
