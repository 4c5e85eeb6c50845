"""Answering with a placeholder: "Working on it…" is posted first, edited to show the action
in progress ("Checking inventory…"), then edited into the answer (split over more messages
when long). Channel mentions and top-level DMs are answered this way, and so is every
message when the workspace has no assistant threads (`assistant`).

The placeholder's ts is recorded in the inbox route, so a replay after a crash edits the
message an earlier attempt posted instead of posting another; if the process died between
posting and recording, the next attempt finds it in the conversation.
"""

from __future__ import annotations

from adapters.slack.api import Api
from adapters.slack.format import to_mrkdwn
from bot import wording
from bot.chunks import split_message
from bot.delivery import Inbox
from bot.store import InboxEntry
from bot.types import CallUpdate

MESSAGE_LIMIT = 3900
"""Characters per posted message: Slack truncates `text` beyond 4000."""
PLACEHOLDER = f"_{wording.WORKING}_"


class Placeholder:
    """One turn's placeholder message, from "Working on it…" to the answer."""

    def __init__(self, *, api: Api, inbox: Inbox, entry: InboxEntry, bot_user_id: str) -> None:
        self._api = api
        self._inbox = inbox
        self._entry = entry
        self._bot_user_id = bot_user_id
        self.channel = str(entry.route["channel"])
        self.thread_ts: str | None = entry.route.get("thread_ts")
        self.ts: str | None = entry.route.get("placeholder")

    async def open(self) -> bool:
        """Post the placeholder unless an earlier attempt did; False when it cannot be
        posted here at all (running the engine would then help nobody)."""
        if self.ts is None and self._entry.route.get("posting"):
            self.ts = await self._find()
        if self.ts is None:
            # Marked first: if the process dies before the placeholder's ts is recorded,
            # the next attempt looks for it instead of posting a second one.
            await self._inbox.update_route(self._entry, {"posting": True})
            self.ts = await self.post(PLACEHOLDER)
            if self.ts is None:
                return False
            await self._inbox.update_route(self._entry, {"placeholder": self.ts})
        return True

    async def progress(self, status: str) -> None:
        if self.ts is not None:
            await self._update(f"_{status}_")  # a missed status is fine

    async def call(self, update: CallUpdate) -> None:
        """Calls show as the progress line only (`progress`)."""

    async def waiting(self, text: str) -> None:
        """The turn waits for a confirmation card: the placeholder says so."""
        if self.ts is not None:
            await self._update(f"_{text}_")

    async def deliver(self, text: str) -> bool:
        """Edit the placeholder into the answer (more messages when long); False when the
        answer could not be delivered (the inbox tries again; the reply is kept)."""
        pieces = split_message(to_mrkdwn(text), MESSAGE_LIMIT) or [wording.EMPTY_ANSWER]
        if self.ts is None or not await self._update(pieces[0]):
            return False
        for piece in pieces[1:]:
            await self.post(piece)
        return True

    async def post(self, text: str) -> str | None:
        """Post `text` in the conversation (in its thread, if any); its ts, or None."""
        response = await self._api.call(
            self._api.client.chat_postMessage,
            channel=self.channel,
            thread_ts=self.thread_ts,
            text=text,
        )
        return None if response is None else str(response.get("ts"))

    async def _update(self, text: str) -> bool:
        response = await self._api.call(
            self._api.client.chat_update, channel=self.channel, ts=self.ts, text=text
        )
        return response is not None

    async def _find(self) -> str | None:
        """The placeholder an earlier attempt posted without recording it: the bot's first
        "Working on it…" after the customer's message in this conversation (later turns of
        the conversation wait for this one, so it can only be this turn's)."""
        mine = await bot_messages_after(
            self._api, self._bot_user_id, self.channel, self.thread_ts, self._entry.route.get("ts")
        )
        return min(
            (str(m["ts"]) for m in mine if m.get("text") == PLACEHOLDER), default=None, key=float
        )


async def bot_messages_after(
    api: Api, bot_user_id: str, channel: str, thread_ts: str | None, after: str | None
) -> list[dict[str, object]]:
    """The bot's messages in the conversation (the thread, or the channel's top level) after
    the message `after`."""
    if thread_ts:
        found = await api.call(
            api.client.conversations_replies, channel=channel, ts=thread_ts, oldest=after
        )
    else:
        found = await api.call(api.client.conversations_history, channel=channel, oldest=after)
    messages = (found or {}).get("messages", [])
    return [m for m in messages if isinstance(m, dict) and m.get("user") == bot_user_id]
