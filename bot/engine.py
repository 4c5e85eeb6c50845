"""The conversation engine: one customer message in, one reply out, via the LLM's tool loop.

Each turn loads the conversation's history, offers the currently active actions as tools,
and lets the model call them (validated, concurrently, bounded in rounds and in calls per
round) until it answers. Messages of one conversation are handled in order; different
conversations run in parallel. Whatever goes wrong, the customer gets a short friendly answer
and the operator a log line.

A message with an event id (every message that came through the inbox) runs as a journaled
turn: each call gets a stable `Idempotency-Key` (`idempotency_key`), is written to the journal
before it is sent, and its result after; replaying the turn reuses recorded results instead of
calling again and resends an unfinished call with the same key. The finished turn is saved
with its reply in one transaction; a cancelled one keeps its messages so far to resume from.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import openai

from bot import wording
from bot.actions.models import Action, ActionSet, ContextSource, parse_arguments, tool_schema
from bot.errors import ArgumentError, LLMRejectedError, LLMResponseError
from bot.handoff import HANDOFF_SCHEMA, HANDOFF_TOOL
from bot.llm.client import ChatModel, ModelTurn
from bot.llm.history import Message, size_of, window
from bot.llm.turn_messages import answered_only, assistant_message, unanswered_round
from bot.outbound.webhooks import WebhookClient, canonical_json
from bot.runtime.locks import KeyedLock
from bot.runtime.logs import turn_scope
from bot.runtime.metrics import Metrics
from bot.store import ActionState, TurnStore
from bot.tool_calls import EngineLimits, ToolCalls, Turn
from bot.types import IncomingMessage, Reply, ToolCall
from bot.watchers import CallWatcher, Progress, Watchers

__all__ = ["HANDOFF_TOOL", "CallWatcher", "Engine", "EngineLimits", "Progress"]

logger = logging.getLogger(__name__)


class Engine:
    """Runs customer turns against the LLM with the active actions as tools."""

    def __init__(
        self,
        *,
        actions: ActionSet,
        store: TurnStore,
        webhooks: WebhookClient,
        model: ChatModel,
        limits: EngineLimits,
        system_prompt: str = "",
        metrics: Metrics | None = None,
        instance_key: bytes | None = None,
        handoff_platforms: frozenset[str] = frozenset(),
    ) -> None:
        self.actions = actions
        self.store = store
        self.webhooks = webhooks
        self.model = model
        self.limits = limits
        self.metrics = metrics or Metrics()
        self.system_message: Message = {
            "role": "system",
            "content": wording.system_prompt(system_prompt),
        }
        self._schemas: dict[str, dict[str, Any]] = {}
        self._schemas_version = -1
        self._locks: dict[str, KeyedLock] = {}
        self.instance_key = instance_key or secrets.token_bytes(32)
        self.handoff_platforms = handoff_platforms
        """Platforms with a handoff channel: there the model may call `handoff_to_human`."""
        self.tool_calls = ToolCalls(
            actions=actions,
            store=store,
            webhooks=webhooks,
            limits=limits,
            instance_key=self.instance_key,
        )

    async def handle(
        self,
        message: IncomingMessage,
        *,
        progress: Progress | None = None,
        resume: list[Message] | None = None,
        calls: CallWatcher | None = None,
    ) -> Reply:
        """Answer one customer message; never raises for LLM or webhook failures. `resume`
        is a cancelled attempt's messages so far (from its inbox entry); `calls` hears of
        each action call as it starts and ends."""
        key = f"{message.platform}:{message.conversation}"
        watch = Watchers(progress, calls)
        with turn_scope(message.platform, message.conversation):
            async with self._lock(key):
                reply = await self._handle(key, message, watch, resume)
        self.metrics.messages.labels(message.platform).inc()
        return reply

    async def _handle(
        self,
        key: str,
        message: IncomingMessage,
        progress: Watchers,
        resume: list[Message] | None,
    ) -> Reply:
        try:
            history, states, modes = await self.store.turn_inputs(
                key, limit=self.limits.history_messages
            )
            offered = self._active(message, states)
        except Exception:
            logger.exception("could not load conversation %s", key)
            return Reply(text=wording.UNEXPECTED, failed=True)
        event_key = f"{message.platform}:{message.event_id}" if message.event_id else None
        turn = Turn(key, [{"role": "user", "content": message.text}], offered, event_key)
        turn.caller, turn.context = message.caller, verified_context(message)
        turn.user, turn.question = message.user_id, message.text
        turn.handoff_offered = message.platform in self.handoff_platforms
        turn.dry_run = modes
        if resume and resume[0].get("content") == message.text:
            turn.new = list(resume)
            self._count_resumed(turn)
        failed = True
        try:
            text = await self._loop(history, turn, progress)
            failed = False
        except asyncio.CancelledError:
            await self._keep_progress(turn)
            raise
        except _AwaitingConfirmation:
            return await self._wait_for_confirmation(turn)
        except _HandedOff:
            text, failed = wording.HANDED_OFF, False
            turn.new.append({"role": "assistant", "content": text})
        except _RoundLimitError as exc:
            logger.warning("turn in %s stopped: %s", key, exc)
            text = wording.ROUND_LIMIT
        except LLMRejectedError:
            text = wording.LLM_REJECTED  # the model client logged the cause once
        except (openai.OpenAIError, LLMResponseError) as exc:
            logger.warning("turn in %s failed: %s", key, _describe_failure(exc))
            text = wording.LLM_DOWN
        except Exception:
            logger.exception("turn in %s failed unexpectedly", key)
            text = wording.UNEXPECTED
        if failed:
            turn.new = answered_only(turn.new)
            turn.new.append({"role": "assistant", "content": text})
        reply = Reply(
            text=text, actions_called=turn.actions_called, failed=failed, handoff=turn.handoff
        )
        await self._save(turn, message.platform, reply)
        return reply

    async def _save(self, turn: Turn, platform: str, reply: Reply) -> None:
        """Keep the turn in the history (with its reply in the inbox entry, for a journaled
        turn); if the database fails, the customer still gets the answer and the operator a
        log line."""
        key, messages = turn.conversation, turn.new
        try:
            if turn.event_key is None:
                await self.store.append_messages(key, platform=platform, messages=messages)
            else:
                await self.store.finish_turn(
                    key, platform=platform, messages=messages, event_key=turn.event_key, reply=reply
                )
        except Exception:
            logger.exception("could not save the turn in %s", key)

    async def _wait_for_confirmation(self, turn: Turn) -> Reply:
        """Park the turn: its messages so far (ending with the round that waits) are kept,
        and the adapter shows a card per call; answering one resumes the turn."""
        assert turn.event_key is not None  # only journaled turns ask
        try:
            await self.store.save_progress(turn.event_key, turn.new)
        except Exception:
            logger.exception(
                "could not keep the turn in %s for its confirmation", turn.conversation
            )
            return Reply(text=wording.UNEXPECTED, failed=True)
        return Reply(text=wording.AWAITING_CONFIRMATION, confirmations=turn.awaiting)

    async def _keep_progress(self, turn: Turn) -> None:
        """A cancelled turn keeps what it has said and received so far, to resume from."""
        if turn.event_key is None:
            return
        try:
            await self.store.save_progress(turn.event_key, answered_only(turn.new))
        except Exception:
            logger.exception("could not keep the progress of the turn in %s", turn.conversation)

    def _count_resumed(self, turn: Turn) -> None:
        """Count the calls a resumed turn already made, exactly as `ToolCalls._plan` counted them
        (calls past `max_tool_calls` were refused, not counted), so the next keys continue
        where the earlier attempt's keys left off. A last round without results (it waited
        for a confirmation) is planned again, so it is not counted here."""
        done = turn.new[:-1] if unanswered_round(turn.new) else turn.new
        for message in done:
            for call in (message.get("tool_calls") or [])[: self.limits.max_tool_calls]:
                action = turn.offered.get(call["function"]["name"])
                if action is None:
                    continue
                try:
                    arguments = parse_arguments(
                        action, call["function"]["arguments"], context=turn.context
                    )
                except ArgumentError:
                    continue
                turn.identical[(action.name, canonical_json(arguments))] += 1
                turn.ordinal += 1

    def _active(
        self, message: IncomingMessage, states: Mapping[str, ActionState]
    ) -> dict[str, Action]:
        """The actions on now (admin toggles over the file) and offered in this message's
        channel to this user (`channels`, `audience`)."""
        return {
            a.name: a
            for a in self.actions
            if (states[a.name].active if a.name in states else a.active)
            and a.offered_to(message.platform, message.channel_id, admin=message.is_admin)
        }

    async def _loop(self, history: list[Message], turn: Turn, progress: Watchers) -> str:
        schemas = self._tool_schemas()
        tools = [
            schemas[name] if name in schemas else tool_schema(turn.offered[name])
            for name in turn.offered
        ]
        if turn.handoff_offered:
            tools.append(HANDOFF_SCHEMA)
        waiting = unanswered_round(turn.new)
        if waiting:  # resumed after a confirmation: finish that round first
            await self._round(waiting, turn, progress)
        for round_number in range(self.limits.max_tool_rounds + 1):
            prompt = self._prompt(history, turn.new)
            answer = await self._complete(prompt, tools)
            if not answer.tool_calls:
                turn.new.append({"role": "assistant", "content": answer.text})
                return answer.text or wording.EMPTY_ANSWER
            if round_number == self.limits.max_tool_rounds:
                raise _RoundLimitError(round_number)
            turn.new.append(assistant_message(answer))
            await self._round(answer.tool_calls, turn, progress)
        raise _RoundLimitError(self.limits.max_tool_rounds)  # pragma: no cover - loop returns

    async def _round(self, calls: list[ToolCall], turn: Turn, progress: Watchers) -> None:
        """One round of calls; its results join the turn unless one waits for a click. A
        handoff ends the turn: a person answers next, not the model."""
        results = await self.tool_calls.run(calls, turn, progress)
        if turn.awaiting:
            raise _AwaitingConfirmation
        turn.new += results
        if turn.handoff is not None:
            raise _HandedOff

    async def _complete(self, prompt: list[Message], tools: list[dict[str, Any]]) -> ModelTurn:
        """One model request, counted: requests, errors by kind, tokens by kind."""
        metrics = self.metrics
        metrics.llm_requests.inc()
        try:
            answer = await self.model.complete(prompt, tools)
        except Exception as exc:
            metrics.llm_errors.labels(type(exc).__name__).inc()
            raise
        metrics.llm_tokens.labels("prompt").inc(answer.usage.prompt_tokens)
        metrics.llm_tokens.labels("completion").inc(answer.usage.completion_tokens)
        return answer

    def _prompt(self, history: list[Message], new: list[Message]) -> list[Message]:
        """System prompt, as much past history as the limits leave room for, this turn whole."""
        kept = window(
            history,
            max_messages=self.limits.history_messages - len(new),
            max_chars=self.limits.history_chars - sum(size_of(m) for m in new),
        )
        return [self.system_message, *kept, *new]

    def _tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Each action's tool, built once per version of the action set."""
        if self._schemas_version != self.actions.version:
            self._schemas = {a.name: tool_schema(a) for a in self.actions}
            self._schemas_version = self.actions.version
        return self._schemas

    def conversations_in_progress(self) -> int:
        """Conversations with a turn running or waiting (their locks are in the table)."""
        return len(self._locks)

    def _lock(self, key: str) -> KeyedLock:
        return KeyedLock.of(key, self._locks)


class _HandedOff(Exception):
    """The model handed the conversation to a person; the turn ends with a fixed line."""


class _AwaitingConfirmation(Exception):
    """A round has calls waiting for the user's click; the turn is parked until then."""


class _RoundLimitError(Exception):
    def __init__(self, rounds: int) -> None:
        super().__init__(f"the model still wanted tools after {rounds} rounds")


def verified_context(message: IncomingMessage) -> dict[ContextSource, str]:
    """What context parameters may be filled with: the platform-verified facts of the
    message, never anything the model or the customer's text said."""
    return {
        ContextSource.USER_ID: message.user_id,
        ContextSource.USER_NAME: message.user_name,
        ContextSource.USER_EMAIL: message.user_email,
        ContextSource.PLATFORM: message.platform,
        ContextSource.TEAM_ID: message.team_id,
        ContextSource.CHANNEL_ID: message.channel_id,
        ContextSource.CONVERSATION_ID: message.conversation,
        ContextSource.MESSAGE_ID: message.event_id or "",
    }


def _describe_failure(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    detail = f" (HTTP {status})" if status else ""
    return f"{type(exc).__name__}{detail}: {exc}"
