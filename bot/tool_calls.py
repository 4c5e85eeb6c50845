"""One round of the model's tool calls: checked, keyed, confirmed, journaled, sent.

Every call of a round is checked against the action's parameters and keyed first, in the
model's order, then all are sent concurrently. A call to an action that asks for confirmation
waits for the user's click; a journaled call is written down before it is sent and reuses a
recorded result instead of calling again. `handoff_to_human` notes what the team is to be told
instead of calling anything.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot import wording
from bot.actions.models import (
    Action,
    ActionSet,
    Arguments,
    ContextSource,
    parse_arguments,
    project,
)
from bot.errors import ArgumentError
from bot.handoff import HANDED_OFF_RESULT, HANDOFF_TOOL, requested_handoff
from bot.llm.history import Message
from bot.llm.turn_messages import tool_error
from bot.outbound.webhooks import WebhookClient, canonical_json, idempotency_key
from bot.store import TurnStore
from bot.types import ActionResult, Confirmation, Handoff, ToolCall
from bot.watchers import Watchers

logger = logging.getLogger("bot.engine")  # these lines are the turn's: logged as the engine's


@dataclass(frozen=True)
class EngineLimits:
    """Bounds on one turn and on the prompt."""

    max_tool_rounds: int
    history_messages: int
    history_chars: int
    result_chars: int
    max_tool_calls: int = 8
    """Calls sent per model round; the model is told to ask for fewer at once."""
    confirm_ttl: float = 600.0
    """Seconds a confirmation card waits for its click (`ACTIONBOT_CONFIRM_TTL`)."""


@dataclass
class Turn:
    """What one turn has said so far; saved to the store when the turn ends."""

    conversation: str
    new: list[Message]
    offered: dict[str, Action]
    event_key: str | None = None
    """`platform:event id` of the message, when the turn is journaled."""
    actions_called: list[str] = field(default_factory=list)
    identical: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Calls so far per (action, canonical arguments): the `n` of the next key."""
    ordinal: int = 0
    caller: str = ""
    """`X-ActionBot-Caller` of every call: the asking user, as the platform verified."""
    context: dict[ContextSource, str] = field(default_factory=dict)
    """Values of context parameters (`from`), from the verified event."""
    user: str = ""
    awaiting: list[Confirmation] = field(default_factory=list)
    """Calls of this round waiting for the user's confirmation."""
    question: str = ""
    handoff: Handoff | None = None
    """Set when the model handed the conversation to a person this round."""
    handoff_offered: bool = False
    dry_run: Mapping[str, bool] = field(default_factory=dict)
    """Admins' dry-run overrides by action (`/actions dryrun`), as the turn began."""


@dataclass(frozen=True)
class _Planned:
    """A tool call checked and keyed, before anything is sent."""

    call: ToolCall
    action: Action | None = None
    arguments: Arguments | None = None
    key: str = ""
    ordinal: int = 0
    refusal: str = ""


class ToolCalls:
    """Runs the rounds of tool calls of the engine's turns."""

    def __init__(
        self,
        *,
        actions: ActionSet,
        store: TurnStore,
        webhooks: WebhookClient,
        limits: EngineLimits,
        instance_key: bytes,
    ) -> None:
        self.actions = actions
        self.store = store
        self.webhooks = webhooks
        self.limits = limits
        self.instance_key = instance_key

    async def run(self, calls: list[ToolCall], turn: Turn, progress: Watchers) -> list[Message]:
        """Run every call of one model turn concurrently; results in the model's order.

        Calls are checked and keyed first, in the model's order (so keys do not depend on
        timing); calls beyond `max_tool_calls` are refused without being sent."""
        planned = [self._plan(call, turn, index) for index, call in enumerate(calls)]
        contents = await asyncio.gather(*(self._run_one(p, turn, progress) for p in planned))
        return [
            {"role": "tool", "tool_call_id": call.id, "content": content}
            for call, content in zip(calls, contents, strict=True)
        ]

    def _plan(self, call: ToolCall, turn: Turn, index: int) -> _Planned:
        limit = self.limits.max_tool_calls
        if index >= limit:
            return _Planned(call, refusal=wording.too_many_calls(limit))
        if call.name == HANDOFF_TOOL and turn.handoff_offered:
            return _Planned(call)
        action = turn.offered.get(call.name)
        if action is None:
            return _Planned(call, refusal=wording.unknown_tool(call.name, list(turn.offered)))
        try:
            arguments = parse_arguments(action, call.arguments, context=turn.context)
        except ArgumentError as exc:
            return _Planned(call, refusal=wording.bad_arguments(exc.problems))
        if turn.event_key is None:
            return _Planned(call, action, arguments, key=uuid.uuid4().hex)
        canonical = canonical_json(arguments)
        n = turn.identical[(action.name, canonical)]
        turn.identical[(action.name, canonical)] += 1
        key = idempotency_key(self.instance_key, turn.event_key, action.name, canonical, n)
        ordinal, turn.ordinal = turn.ordinal, turn.ordinal + 1
        return _Planned(call, action, arguments, key=key, ordinal=ordinal)

    async def _run_one(self, planned: _Planned, turn: Turn, progress: Watchers) -> str:
        action, arguments, name = planned.action, planned.arguments, planned.call.name
        if name == HANDOFF_TOOL and not planned.refusal and turn.handoff_offered:
            return self._hand_off(planned.call, turn)
        if action is None or arguments is None:
            return tool_error(name, planned.refusal)
        if turn.event_key is not None:
            recorded, problem = await self._journal(planned, turn.event_key)
            if problem:
                return tool_error(name, problem)
            if recorded is not None:
                logger.info("webhook %s: result recorded before, not called again", name)
                turn.actions_called.append(action.name)
                await progress.call(planned.call, action, recorded)
                return recorded.for_model(self.limits.result_chars, _shown(action))
        dry_run = turn.dry_run.get(action.name, action.mode == "dry_run")
        if action.confirm and not dry_run:  # a dry run sends nothing: nothing to confirm
            if turn.event_key is None:  # no inbox entry to wait in: never without a card
                return tool_error(action.name, wording.DECLINED)
            answer = await self._confirmed(planned, turn, turn.event_key)
            if answer is not None:
                return answer
        await progress.status(wording.progress_text(action.display_name))
        await progress.call(planned.call, action, None)
        turn.actions_called.append(action.name)
        result = await self.webhooks.call(
            action,
            arguments,
            conversation=turn.conversation,
            call_id=planned.key,
            event_key=turn.event_key,
            caller=turn.caller,
            dry_run=dry_run,
        )
        await progress.call(planned.call, action, result)
        return result.for_model(self.limits.result_chars, _shown(action))

    def _hand_off(self, call: ToolCall, turn: Turn) -> str:
        """The model asked for a person: note what the team is to be told; the turn ends
        after this round (`Engine._round`)."""
        turn.handoff = requested_handoff(
            call,
            conversation=turn.conversation,
            question=turn.question,
            called=turn.actions_called,
            display_names={a.name: a.display_name for a in self.actions},
        )
        logger.info("conversation %s handed to a person", turn.conversation)
        return HANDED_OFF_RESULT

    async def _confirmed(self, planned: _Planned, turn: Turn, event_key: str) -> str | None:
        """None when the user confirmed this call (send it); otherwise what the model gets:
        why it was not sent, or (while the card waits) nothing yet, with the call added to
        the turn's waiting list."""
        assert planned.action is not None
        assert planned.arguments is not None
        action = planned.action
        found = await self.store.confirmation(event_key, planned.key)
        if found is not None and found.state == "confirmed":
            return None
        if found is not None and found.state == "cancelled":
            return tool_error(action.name, wording.DECLINED)
        if found is not None and found.expired(time.time()):
            return tool_error(action.name, wording.NOT_CONFIRMED_IN_TIME)
        asked = found or await self.store.request_confirmation(
            event_key,
            planned.key,
            action=action.name,
            arguments=dict(planned.arguments),
            requester=turn.user,
            ttl=self.limits.confirm_ttl,
        )
        turn.awaiting.append(asked.model_copy(update={"display_name": action.display_name}))
        return tool_error(action.name, wording.DECLINED)  # never seen: the round waits

    async def _journal(self, planned: _Planned, event_key: str) -> tuple[ActionResult | None, str]:
        """Write the call to the journal before it is sent: its recorded result if it has
        one, and a problem when it cannot be written (then it is not sent)."""
        assert planned.action is not None
        try:
            recorded = await self.store.start_call(
                event_key,
                planned.key,
                ordinal=planned.ordinal,
                action=planned.action.name,
                arguments=canonical_json(planned.arguments),
            )
        except Exception:
            logger.exception("could not journal a call of %s; not sending it", planned.call.name)
            return None, wording.NOT_JOURNALED
        return recorded, ""


def _shown(action: Action) -> Callable[[Any], Any] | None:
    """What of a response the model may see: the action's `response_fields`, or all."""
    if not action.response_fields:
        return None
    return functools.partial(project, paths=action.response_fields)
