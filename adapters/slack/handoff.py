"""Handing a Slack conversation to a person: the summary the team gets in the handoff
channel (`ACTIONBOT_HANDOFF_CHANNEL=slack:C…`, pinging `ACTIONBOT_HANDOFF_MENTION`), and the
startup check that the bot can post there.

The summary is posted once per handoff: its ts is recorded in the inbox route (after a
`handoff_posting` mark, and the message carries the event's key in its metadata, so one
posted by an attempt that died before recording it is found in the channel). After the
customer is told, `bot.delivery` keeps the bot silent in the conversation until an admin
runs `/actions resume` there.
"""

from __future__ import annotations

from typing import Any

from adapters.slack.api import Api
from adapters.slack.blocks import clip
from adapters.slack.format import escape
from bot.delivery import Inbox
from bot.errors import ConfigError
from bot.runtime.config import Settings
from bot.store import InboxEntry
from bot.types import Handoff

PLATFORM = "slack"
EVENT_TYPE = "actionbot_handoff"
QUESTION_CHARS = 1000
SUMMARY_CHARS = 2000
_CHECK_HINTS = {
    "channel_not_found": (
        "check the id (channel details → bottom of About), and for a private channel "
        "invite the bot first (/invite @ActionBot)"
    ),
    "missing_scope": (
        "add the channels:read scope (groups:read for a private channel) and reinstall the app"
    ),
}


def mention(target: str) -> str:
    """`ACTIONBOT_HANDOFF_MENTION`'s Slack part as Slack writes it: a user group (`S…`), a
    member (`U…`/`W…`) or `here`; "" when unset."""
    if not target:
        return ""
    if target.lower() in {"here", "channel"}:
        return f"<!{target.lower()}>"
    if target.startswith("S"):
        return f"<!subteam^{escape(target)}>"
    return f"<@{escape(target)}>"


def summary_text(handoff: Handoff, *, customer: str, link: str, ping: str) -> str:
    """What the team reads: who, what they asked, why the bot handed over, what it tried,
    where to answer and how to bring the bot back. Everything the customer or the model
    wrote is escaped. A DM with the bot is private to the customer: the team writes to
    them directly instead of following a link."""
    tried = ", ".join(handoff.actions_tried) or "none"
    question = escape(clip(" ".join(handoff.question.split()), QUESTION_CHARS))
    lines = [
        f"{ping} :raising_hand: A customer needs a person.".strip(),
        f"*Customer:* <@{escape(customer)}>",
        f"*Question:* {question}",
        f"*Why:* {escape(handoff.reason)}",
    ]
    if handoff.summary:
        lines.append(f"*Summary:* {escape(clip(handoff.summary, SUMMARY_CHARS))}")
    lines.append(f"*Actions tried:* {escape(tried)}")
    in_dm = handoff.conversation.startswith(f"{PLATFORM}:D")
    if in_dm:
        lines.append(f"It was a direct message with the bot: write to <@{escape(customer)}>.")
    elif link:
        lines.append(f"<{escape(link)}|Open the conversation> · answer there in the thread")
    lines.append(
        "The bot stays quiet there until an admin runs "
        f"`/actions resume {escape(handoff.conversation)}`."
    )
    return "\n".join(lines)


class HandoffChannel:
    """Where this adapter's handoffs go."""

    @classmethod
    def configured(cls, settings: Settings, *, api: Api, inbox: Inbox) -> HandoffChannel | None:
        """The Slack handoff channel of `ACTIONBOT_HANDOFF_CHANNEL`, if it names one."""
        channel = settings.handoff_channels.get(PLATFORM)
        if not channel:
            return None
        target = settings.handoff_mentions.get(PLATFORM, "")
        return cls(api=api, inbox=inbox, channel=channel, mention_target=target)

    def __init__(self, *, api: Api, inbox: Inbox, channel: str, mention_target: str) -> None:
        self._api = api
        self._inbox = inbox
        self.channel = channel
        self._ping = mention(mention_target)

    async def check(self) -> None:
        """Fail startup with one line when the bot cannot post in the channel."""
        result = await self._api.attempt(
            self._api.client.conversations_info,
            then="the handoff channel cannot be checked",
            channel=self.channel,
        )
        info: dict[str, Any] = (result.response or {}).get("channel") or {}
        problem = ""
        if not result.ok:
            problem = f"Slack answered {result.error}; " + _CHECK_HINTS.get(
                result.error, "check the id and the bot's scopes"
            )
        elif info.get("is_archived"):
            problem = "it is archived; unarchive it or pick another channel"
        elif not info.get("is_member", True):
            problem = "the bot is not a member; run /invite @ActionBot in that channel"
        if problem:
            raise ConfigError(
                f"ACTIONBOT_HANDOFF_CHANNEL slack:{self.channel}: the bot cannot post there: "
                f"{problem}."
            )

    async def post(self, entry: InboxEntry, handoff: Handoff) -> bool:
        """Post the summary unless an earlier attempt did; False when it could not be
        posted (the turn is tried again; its reply is kept)."""
        route = entry.route
        if route.get("handoff") or (route.get("handoff_posting") and await self._find(entry)):
            return True
        await self._inbox.update_route(entry, {"handoff_posting": True})
        text = summary_text(
            handoff, customer=entry.message.user_id, link=await self._link(entry), ping=self._ping
        )
        posted = await self._api.call(
            self._api.client.chat_postMessage,
            channel=self.channel,
            text=text,
            unfurl_links=False,
            metadata={"event_type": EVENT_TYPE, "event_payload": {"event": entry.key}},
        )
        if posted is None:
            return False
        await self._inbox.update_route(entry, {"handoff": str(posted.get("ts"))})
        return True

    async def _link(self, entry: InboxEntry) -> str:
        """A link to the thread; "" in a DM, or if Slack gives none (the summary names the
        customer all the same)."""
        route = entry.route
        message_ts = route.get("thread_ts") or route.get("ts")
        if not message_ts or str(route["channel"]).startswith("D"):
            return ""  # a DM is the customer's and the bot's alone: no link would open
        result = await self._api.attempt(
            self._api.client.chat_getPermalink,
            then="handoff summaries go without a link to the conversation",
            channel=str(route["channel"]),
            message_ts=str(message_ts),
        )
        return str((result.response or {}).get("permalink") or "")

    async def _find(self, entry: InboxEntry) -> bool:
        """Whether an earlier attempt posted this handoff's summary (its metadata names the
        event) after the customer's message, without recording it."""
        found = await self._api.call(
            self._api.client.conversations_history,
            channel=self.channel,
            oldest=entry.route.get("ts"),
            include_all_metadata=True,
        )
        for message in (found or {}).get("messages", []):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("event") == entry.key:
                await self._inbox.update_route(entry, {"handoff": str(message.get("ts"))})
                return True
        return False
