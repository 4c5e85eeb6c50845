"""Slack AI-app assistant threads (*Agents & AI Apps*): how a customer's question in the
assistant container is answered.

- A new thread (`assistant_thread_started`) gets suggested prompts: `ACTIONBOT_SUGGESTED_PROMPTS`,
  else the display names of the first four active actions.
- The first question becomes the thread's title (`assistant.threads.setTitle`).
- While the bot works, the thread shows a status (`assistant.threads.setStatus`: "Working on
  it…", then "Checking inventory…") instead of a placeholder message.
- The answer is one streamed message (`chat.startStream` / `appendStream` / `stopStream`)
  with a task card per action call (`task_update` chunks: in progress, then complete or
  error with the latency), then the answer's text.

A workspace without the feature (a method answers `unknown_method`, `not_allowed` or
`missing_scope`: an older workspace, Enterprise restrictions, an app without the feature or
the scope) is answered the way channel mentions are (`placeholder`) for the rest of the
process, logged once. Any other failure costs only that answer's streaming: the customer
gets the answer as a normal message, once.

Replays after a crash: the stream's ts is recorded in the inbox route as soon as Slack gives
it (after a `streaming` mark, so an unrecorded stream is found in the thread), and so is
how many pieces of the answer were delivered (`streamed`). A replay appends what is left to
the same stream, or posts it as normal messages when the stream no longer takes text:
nothing is posted twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from adapters.slack.api import Api, Attempt, Method, api_name
from adapters.slack.format import stream_markdown, to_mrkdwn
from adapters.slack.placeholder import Placeholder, bot_messages_after
from bot import wording
from bot.admin.operations import Admin
from bot.chunks import split_message
from bot.delivery import Inbox
from bot.runtime.config import Settings
from bot.runtime.tasks import Turns
from bot.store import AdapterStore, InboxEntry
from bot.types import CallUpdate

logger = logging.getLogger(__name__)

PLATFORM = "slack"
PROMPTS = 4
"""Suggested prompts Slack shows at most."""
TITLE_CHARS = 80
STREAM_PIECE = 1000
"""Characters of the answer per `appendStream`."""
STREAM_TOTAL = 11_000
"""Characters of the answer in the streamed message (Slack takes 12,000 a call); the rest
follows as normal messages."""
TASK_STATUS = {"running": "in_progress", "done": "complete", "failed": "error"}
NOT_STREAMED = "what the stream does not take is posted as normal messages in the thread"
IF_MISSING = (
    "assistant threads are answered as channel mentions are (a placeholder message edited "
    "into the answer) until the bot restarts"
)


def task_chunk(update: CallUpdate) -> dict[str, Any]:
    """The `task_update` chunk of one action call: its card in the streamed message."""
    chunk: dict[str, Any] = {
        "type": "task_update",
        "id": update.id,
        "title": update.display_name or update.action,
        "status": TASK_STATUS[update.state],
    }
    if update.latency_ms is not None:
        took = f"{update.latency_ms:.0f} ms"
        chunk["output"] = took if update.state == "done" else f"Failed after {took}"
    return chunk


def answer_pieces(text: str) -> list[str]:
    """The answer as the pieces it is streamed (or posted) in; the same on every replay."""
    return split_message(text, STREAM_PIECE) or [wording.EMPTY_ANSWER]


def streamable(pieces: list[str]) -> int:
    """How many leading pieces fit in the streamed message."""
    total = 0
    for count, piece in enumerate(pieces):
        total += len(piece)
        if total > STREAM_TOTAL:
            return count
    return len(pieces)


class AssistantThreads:
    """The assistant surface of one adapter: whether this workspace has it, a new thread's
    prompts, and a `StreamTurn` per answer."""

    def __init__(
        self,
        *,
        api: Api,
        settings: Settings,
        admin: Admin,
        store: AdapterStore,
        inbox: Inbox,
        turns: Turns,
    ) -> None:
        self.api = api
        self.settings = settings
        self.admin = admin
        self.store = store
        self.inbox = inbox
        self.turns = turns
        self.available = True
        """False once a method said the workspace or the app lacks the feature."""

    async def attempt(
        self, method: Method, *, then: str = "the thread goes on without it", **kwargs: Any
    ) -> Attempt:
        """An assistant method; one that says the feature is missing turns it off."""
        result = await self.api.attempt(method, then=then, if_missing=IF_MISSING, **kwargs)
        if result.feature_missing and self.available:
            self.available = False
            logger.info("assistant threads off: %s answered %s", api_name(method), result.error)
        return result

    # --- a new thread -------------------------------------------------------------------

    async def on_thread_started(self, event: dict[str, Any]) -> None:
        """`assistant_thread_started`: suggest prompts (after the acknowledgement)."""
        thread = event.get("assistant_thread") or {}
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if channel and thread_ts and self.available:
            work = self.suggest(str(channel), str(thread_ts))
            self.turns.spawn(work, name=f"slack prompts {channel}:{thread_ts}", queued=False)

    async def on_context_changed(self, event: dict[str, Any]) -> None:
        """`assistant_thread_context_changed`: the customer looks at another channel. The
        answers come from the actions, not from the channel, so nothing changes."""

    async def suggest(self, channel: str, thread_ts: str) -> None:
        prompts = await self.prompts()
        if not prompts:
            return
        await self.attempt(
            self.api.client.assistant_threads_setSuggestedPrompts,
            channel_id=channel,
            thread_ts=thread_ts,
            prompts=[{"title": p[:TITLE_CHARS], "message": p} for p in prompts],
        )

    async def prompts(self) -> list[str]:
        """`ACTIONBOT_SUGGESTED_PROMPTS`, else the first active actions' display names."""
        configured = self.settings.suggested_prompt_list
        if configured:
            return configured[:PROMPTS]
        flags = await self.admin.active_flags()
        names = [a.display_name for a in self.admin.actions if flags.get(a.name)]
        return names[:PROMPTS]

    def turn(self, entry: InboxEntry, placeholder: Placeholder, *, bot_user_id: str) -> StreamTurn:
        return StreamTurn(self, entry, placeholder, bot_user_id=bot_user_id)


class StreamTurn:
    """One answer in an assistant thread: a status while working, a task card per call,
    the answer streamed; `placeholder` takes over when the thread cannot have that."""

    def __init__(
        self,
        threads: AssistantThreads,
        entry: InboxEntry,
        placeholder: Placeholder,
        *,
        bot_user_id: str,
    ) -> None:
        self._threads = threads
        self._api = threads.api
        self._entry = entry
        self._placeholder = placeholder
        self._bot_user_id = bot_user_id
        route = entry.route
        self.channel = str(route["channel"])
        self.thread_ts = str(route["thread_ts"])
        self.ts: str | None = route.get("stream")
        self.streamed = int(route.get("streamed") or 0)
        self.broken = False
        """The stream stopped taking text in this attempt: the rest is posted normally."""
        earlier_fallback = route.get("placeholder") or route.get("posting")
        self.fallback: Placeholder | None = placeholder if earlier_fallback else None
        self._lock = asyncio.Lock()
        self._status_shown = False

    # --- the surface the adapter drives -----------------------------------------------------

    async def open(self) -> bool:
        """Show "Working on it…" (and title a new thread); False when nothing can be posted."""
        if self.fallback is not None:
            return await self.fallback.open()
        if self.ts is None and self._entry.route.get("streaming"):
            self.ts = await self._find_stream()
        if not await self._status(wording.WORKING) and self.ts is None:
            return await self._fall_back()
        message = self._entry.message
        if not await self._threads.store.has_conversation(f"{PLATFORM}:{message.conversation}"):
            await self._threads.attempt(
                self._api.client.assistant_threads_setTitle,
                channel_id=self.channel,
                thread_ts=self.thread_ts,
                title=" ".join(message.text.split())[:TITLE_CHARS],
            )
        return True

    async def progress(self, status: str) -> None:
        if self.fallback is not None:
            await self.fallback.progress(status)
        else:
            await self._status(status)

    async def call(self, update: CallUpdate) -> None:
        """A call started or ended: its card, in the stream (started by the first card)."""
        async with self._lock:
            if self.fallback is not None or self.broken:
                return
            chunk = task_chunk(update)
            if self.ts is not None:
                await self._append(chunks=[chunk])  # a card that does not show stops nothing
            elif not await self._start(chunks=[chunk], task_display_mode="timeline"):
                await self._fall_back()
                if self.fallback is not None and update.state == "running":
                    await self.fallback.progress(wording.progress_text(update.display_name))

    async def waiting(self, text: str) -> None:
        """The turn waits for a confirmation card. The card says so itself (and posting it
        clears the thread's status), so only a placeholder needs the line."""
        if self.fallback is not None:
            await self.fallback.waiting(text)

    async def deliver(self, text: str) -> bool:
        """The answer, piece by piece, into the stream (then stopped); what the stream does
        not take is posted as normal messages. False when the answer could not be
        delivered (the inbox tries again, from the pieces not yet delivered)."""
        if self.fallback is not None:
            return await self.fallback.deliver(text)
        async with self._lock:
            pieces = answer_pieces(text)
            fits = streamable(pieces)
            for index in range(self.streamed, len(pieces)):
                piece = pieces[index]
                if index >= fits or self.broken or not await self._stream(piece):
                    self.broken = True
                    if self.ts is None:  # nothing of it is in Slack: answer the usual way
                        return await self._fall_back() and await self._placeholder.deliver(text)
                    if await self._placeholder.post(to_mrkdwn(piece)) is None:
                        return False
                self.streamed = index + 1
                await self._threads.inbox.update_route(self._entry, {"streamed": self.streamed})
            await self._stop()
            return True

    # --- steps ----------------------------------------------------------------------------

    async def _fall_back(self) -> bool:
        self.fallback = self._placeholder
        return await self._placeholder.open()

    async def _status(self, status: str) -> bool:
        if not self._threads.available:
            return False
        result = await self._threads.attempt(
            self._api.client.assistant_threads_setStatus,
            channel_id=self.channel,
            thread_ts=self.thread_ts,
            status=status,
        )
        self._status_shown = result.ok and bool(status)
        return result.ok

    async def _stream(self, piece: str) -> bool:
        text = stream_markdown(piece)
        if self.ts is None:
            return await self._start(markdown_text=text)
        return await self._append(markdown_text=text)

    async def _start(self, **content: Any) -> bool:
        """Start the streamed message; its ts is recorded before anything else happens."""
        if not self._threads.available:
            return False
        message = self._entry.message
        await self._threads.inbox.update_route(self._entry, {"streaming": True})
        result = await self._threads.attempt(
            self._api.client.chat_startStream,
            then=NOT_STREAMED,
            channel=self.channel,
            thread_ts=self.thread_ts,
            recipient_user_id=message.user_id or None,
            recipient_team_id=message.team_id or None,
            **content,
        )
        if result.response is None or not result.response.get("ts"):
            return False
        self.ts = str(result.response["ts"])
        await self._threads.inbox.update_route(self._entry, {"stream": self.ts})
        return True

    async def _append(self, **content: Any) -> bool:
        result = await self._threads.attempt(
            self._api.client.chat_appendStream,
            then=NOT_STREAMED,
            channel=self.channel,
            ts=self.ts,
            **content,
        )
        return result.ok

    async def _stop(self) -> None:
        """Finish the streamed message (a stream an earlier attempt stopped says so, which
        is fine), and clear a status shown after it started."""
        if self.ts is not None:
            await self._threads.attempt(
                self._api.client.chat_stopStream,
                then="the answer is in the thread all the same",
                channel=self.channel,
                ts=self.ts,
            )
        if self._status_shown:
            await self._status("")

    async def _find_stream(self) -> str | None:
        """The stream an earlier attempt started without recording it: the bot's first
        message in the thread after the question that is not one of this turn's
        confirmation cards (later turns of the thread wait for this one, so it can only be
        this turn's)."""
        route = self._entry.route
        cards = set((route.get("cards") or {}).values())
        mine = await bot_messages_after(
            self._api, self._bot_user_id, self.channel, self.thread_ts, route.get("ts")
        )
        found = min((str(m["ts"]) for m in mine if m["ts"] not in cards), default=None, key=float)
        if found is not None:
            await self._threads.inbox.update_route(self._entry, {"stream": found})
        return found
