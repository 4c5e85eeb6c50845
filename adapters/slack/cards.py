"""Confirmation cards on Slack: a Block Kit message with Confirm / Cancel for each call of a
`confirm = true` action, its outcome shown in place of the buttons once answered, and the
clicks (only the requester, once, before expiry: `Inbox.decide`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import MAX_FIELD_TEXT, Block, button, clip, context, fields, section
from adapters.slack.format import escape
from bot import wording
from bot.actions.models import ActionSet
from bot.delivery import Inbox
from bot.store import InboxEntry
from bot.types import Confirmation, Reply

logger = logging.getLogger(__name__)

CONFIRM_ACTION = "actionbot_confirm"
CANCEL_ACTION = "actionbot_cancel"

ApiCall = Callable[..., Awaitable[dict[str, Any] | None]]
"""The adapter's Web API call: a failure is logged with what to do, and None."""


class Cards:
    """The cards of one Slack adapter."""

    def __init__(
        self,
        *,
        call: ApiCall,
        client: AsyncWebClient,
        inbox: Inbox,
        actions: ActionSet,
        team: Callable[[], str],
    ) -> None:
        self._call = call
        self._client = client
        self._inbox = inbox
        self._actions = actions
        """The live set: an action added by a reload has its display name on its cards."""
        self._team = team

    async def show(self, entry: InboxEntry, reply: Reply, cards: dict[str, str]) -> bool:
        """A card per call waiting for confirmation, unless an earlier attempt posted it;
        the cards' ts are remembered so they can show the outcome later."""
        channel, thread_ts = str(entry.route["channel"]), entry.route.get("thread_ts")
        for confirmation in reply.confirmations:
            if confirmation.token in cards:
                continue
            response = await self._call(
                self._client.chat_postMessage,
                channel=channel,
                thread_ts=thread_ts,
                text=wording.confirm_text(confirmation.display_name, confirmation.arguments),
                blocks=confirmation_blocks(confirmation),
            )
            if response is None:
                return False
            cards[confirmation.token] = str(response.get("ts"))
            await self._inbox.update_route(entry, {"cards": cards})
        return True

    async def close(self, channel: str, cards: dict[str, str]) -> None:
        """Show each card's outcome in place of its buttons (confirmed, cancelled, expired)."""
        for token, ts in cards.items():
            found = await self._inbox.store.confirmation_by_token(token)
            if found is None:
                continue
            outcome = wording.card_outcome(found.state, found.requester)
            name = (
                self._actions.get(found.action).display_name
                if found.action in self._actions
                else ""
            )
            found = found.model_copy(update={"display_name": name})
            await self._call(
                self._client.chat_update,
                channel=channel,
                ts=ts,
                text=outcome,
                blocks=confirmation_outcome_blocks(found, outcome),
            )

    async def on_confirm(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Any
    ) -> None:
        await self._on_button(ack, body, respond, confirmed=True)

    async def on_cancel(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Any
    ) -> None:
        await self._on_button(ack, body, respond, confirmed=False)

    async def _on_button(
        self,
        ack: Callable[..., Awaitable[None]],
        body: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
        *,
        confirmed: bool,
    ) -> None:
        """A click on a card: only the user who asked may answer, once, before it expires;
        anyone else is told so privately. The waiting turn then goes on in the thread."""
        await ack()
        user = str(body.get("user", {}).get("id", ""))
        team = str(body.get("team", {}).get("id", "") or body.get("user", {}).get("team_id", ""))
        token = str((body.get("actions") or [{}])[0].get("value", ""))
        if team != self._team():
            logger.warning("refused a confirmation click from slack:%s of team %s", user, team)
            return
        outcome, found = await self._inbox.decide(token, confirmed=confirmed, user=user)
        if outcome == "decided":
            return
        text = wording.click_refusal(outcome, found.requester if found else None)
        await respond(text=text, response_type="ephemeral", replace_original=False)


def confirmation_blocks(confirmation: Confirmation) -> list[Block]:
    """The card: the action, every value the AI chose, Confirm and Cancel (the token in
    both buttons)."""
    values = [
        f"*{escape(str(k))}*\n{escape(clip(str(v), MAX_FIELD_TEXT - 40))}"
        for k, v in confirmation.arguments.items()
    ]
    title = f"*Confirm {escape(confirmation.display_name or confirmation.action)}?*"
    blocks: list[Block] = [section(title)]
    if values:
        blocks.append(fields(values))
    blocks.append(
        {
            "type": "actions",
            "block_id": "actionbot_confirmation",
            "elements": [
                button("Confirm", CONFIRM_ACTION, confirmation.token, "primary"),
                button("Cancel", CANCEL_ACTION, confirmation.token, "danger"),
            ],
        }
    )
    return blocks


def confirmation_outcome_blocks(confirmation: Confirmation, outcome: str) -> list[Block]:
    """The card once answered (or expired): the same details, the outcome, no buttons."""
    return [*confirmation_blocks(confirmation)[:-1], context(escape(outcome))]
