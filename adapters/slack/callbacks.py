"""Slack messages and mentions into the inbox, and their fast acknowledgement in HTTP mode.

Conversations as Slack users expect: a mention in a channel is answered in a thread, and the
thread is the conversation; later messages in that thread continue it without a mention;
a top-level direct message belongs to the DM's one conversation, and each thread of the DM
(an AI-app assistant thread) is its own. Slack's `event_id` is the same on every retry of
one event, and the inbox deduplicates by it.

In HTTP mode, most of what Slack posts to `POST /slack/events` is `message` and
`app_mention` callbacks, and all the bot does before acknowledging one is write it to the
inbox. Bolt's dispatch (its request object, middleware chain, authorization and listener
runner) costs several times that, on the one event loop that also acknowledges the next
event, so a burst of simultaneous events queues behind it; its authorization also calls
`auth.test` on the first requests after a start, making those acknowledgements wait on
Slack's Web API.

So `answer` takes these two callbacks itself: it verifies them with slack_sdk's
`SignatureVerifier` (the check bolt runs, with the same five-minute window), drops the bot's
own messages as bolt does, and calls the same listeners bolt calls (in Socket Mode, and for
anything `answer` does not take) with the same `(event, body)`. Everything else goes
through bolt: a bad signature (bolt answers 401 and logs it), commands, interactivity, URL
verification and other events.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.delivery import Inbox
from bot.store import AdapterStore
from bot.types import IncomingMessage

logger = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]]

PLATFORM = "slack"
HANDLED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
CONVERSATION_CHANNELS = frozenset({"channel", "group", "mpim"})


class EventCallbacks:
    """The `message` and `app_mention` listeners, and the acknowledgement of their signed
    callbacks; `bot_user_id` gives the bot's user id once known."""

    def __init__(
        self,
        *,
        store: AdapterStore,
        inbox: Inbox,
        signing_secret: str | None,
        bot_user_id: Callable[[], str],
    ) -> None:
        self.store = store
        self.inbox = inbox
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._bot_user_id = bot_user_id
        self.listeners: dict[str, Listener] = {
            "app_mention": self.on_mention,
            "message": self.on_message,
        }

    async def answer(self, headers: Mapping[str, str], body: bytes) -> web.Response | None:
        """The acknowledgement of a signed callback of a listened event type, once its
        listener returned (500 if it raised, so Slack sends the event again); None for any
        other request, which is bolt's."""
        taken = self._take(headers, body)
        if taken is None:
            return None
        listener, event, payload = taken
        user = self._bot_user_id()
        if user and event.get("user") == user:
            return web.Response(status=200)
        try:
            await listener(event, payload)
        except Exception:
            logger.exception(
                "Slack event %s could not be taken; Slack will send it again",
                payload.get("event_id"),
            )
            return web.Response(status=500)
        return web.Response(status=200)

    def _take(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[Listener, dict[str, Any], dict[str, Any]] | None:
        if self._verifier is None or not body.startswith(b"{"):
            return None
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp or not timestamp.isdigit():
            return None
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict) or payload.get("type") != "event_callback":
            return None
        event = payload.get("event")
        if not isinstance(event, dict):
            return None
        listener = self.listeners.get(str(event.get("type")))
        return None if listener is None else (listener, event, payload)

    async def on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        if event.get("bot_id"):
            return
        text = self._without_mention(event.get("text", ""))
        conversation = f"{channel}:{thread_ts}"
        await self._receive(event, body, conversation=conversation, thread_ts=thread_ts, text=text)

    async def on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("bot_id") or event.get("subtype") not in HANDLED_SUBTYPES:
            return
        text = event.get("text") or ""
        channel, kind = event.get("channel", ""), event.get("channel_type")
        thread_ts = event.get("thread_ts")
        if kind == "im":  # a DM thread (an assistant thread) is a conversation of its own
            conversation = f"{channel}:{thread_ts}" if thread_ts else channel
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
        return bool(self._bot_user_id()) and f"<@{self._bot_user_id()}>" in text

    def _without_mention(self, text: str) -> str:
        return re.sub(rf"<@{re.escape(self._bot_user_id())}(\|[^>]*)?>", "", text).strip()

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
        if event.get("channel_type") == "im" and thread_ts:
            route["assistant"] = True
        await self.inbox.receive(message, route)
