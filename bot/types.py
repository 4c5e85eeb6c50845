"""Value types shared by the core and the adapters."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JSONValue = Any
"""A value as parsed by `json.loads` (dict, list, str, int, float, bool or None)."""


class Outcome(StrEnum):
    """How one webhook call ended. Every call is recorded with exactly one of these."""

    SUCCESS = "success"
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    BLOCKED = "blocked"
    INVALID_RESPONSE = "invalid_response"
    ERROR = "error"
    BUSY = "busy"
    """Never sent: the action's (or the pool's) slots stayed full for the queue timeout."""
    DRY_RUN = "dry_run"
    """Never sent: the action is in dry-run mode; the model saw what would have been sent."""
    SHORT_CIRCUITED = "short_circuited"
    """Never sent: the action's circuit breaker is open after consecutive failures."""
    RATE_LIMITED = "rate_limited"
    """Never sent: the action's own `rate` was used up."""


TRUNCATION_MARKER = "…[truncated {omitted} characters]"


class ActionResult(BaseModel):
    """The result of one webhook call: never an exception, always a recorded outcome."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    call_id: str
    outcome: Outcome
    latency_ms: float
    status: int | None = None
    data: JSONValue = None
    """Parsed JSON body (success, or an http_error whose body was JSON)."""
    text: str | None = None
    """Capped raw body text when the body was not JSON."""
    error: str | None = None
    """Short readable message for failures: safe to show an admin and to give the model."""
    attempts: int = 1
    """Tries of this call: more than one when the action retried it."""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    def body_text(self) -> str:
        """The body as compact text: JSON re-serialised, raw text as is, or empty."""
        if self.data is not None:
            return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return self.text or ""

    def for_model(self, budget: int, shown: Callable[[JSONValue], JSONValue] | None = None) -> str:
        """What the LLM sees: outcome, status, error, and the endpoint's JSON as `data` when
        it fits `budget` characters, else the body text cut to the budget with a marker.
        `shown` narrows the JSON first (the action's `response_fields`). A dry run shows
        what would have been sent, as it is."""
        if self.outcome is Outcome.DRY_RUN:
            return json.dumps(self.data, ensure_ascii=False)
        result = self
        if shown is not None:  # only named JSON fields: a text body shows nothing
            update = {"data": shown(self.data)} if self.data is not None else {"text": None}
            result = self.model_copy(update=update)
        payload: dict[str, JSONValue] = {"ok": result.ok}
        if result.status is not None:
            payload["status"] = result.status
        if result.error is not None:
            payload["error"] = result.error
        body = result.body_text()
        if result.data is not None and len(body) <= budget:
            payload["data"] = result.data
        elif body:
            payload["body"] = trim(body, budget)
        return json.dumps(payload, ensure_ascii=False)


def trim(text: str, budget: int) -> str:
    """Cut `text` to at most `budget` characters plus an explicit truncation marker."""
    if len(text) <= budget:
        return text
    omitted = len(text) - budget
    return text[:budget] + TRUNCATION_MARKER.format(omitted=omitted)


class IncomingMessage(BaseModel):
    """One customer message, as any adapter maps it for the engine. The ids come from the
    platform's verified event (a signed Slack request, the Discord gateway), never from the
    message text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    conversation: str
    """Stable key of the conversation (thread, DM, console session) within the platform."""
    user_id: str
    user_name: str = ""
    text: str
    event_id: str | None = None
    team_id: str = ""
    """Slack workspace or Discord server ("" for DMs on Discord and the console)."""
    channel_id: str = ""
    user_email: str = ""
    """Looked up by the adapter for actions that need it (Slack only); not kept."""
    is_admin: bool = False
    """Whether the user is an admin, as the adapter found (for `audience = "admins"`)."""

    @property
    def caller(self) -> str:
        """The `X-ActionBot-Caller` header value: who is asking, as the platform verified."""
        return caller_header(self.platform, self.team_id, self.user_id, self.channel_id)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.:@-]")


def caller_header(platform: str, team: str, user: str, channel: str) -> str:
    """`platform=…; team=…; user=…; channel=…`, each value limited to id characters."""
    values = {"platform": platform, "team": team, "user": user, "channel": channel}
    return "; ".join(f"{k}={_UNSAFE.sub('', v)[:128]}" for k, v in values.items())


def parse_caller(header: str) -> dict[str, str]:
    """`caller_header`'s fields back (platform, team, user, channel; "" when absent): the
    verified asker the audit trail records with each call."""
    fields = dict.fromkeys(("platform", "team", "user", "channel"), "")
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key in fields:
            fields[key] = value
    return fields


class ToolCall(BaseModel):
    """One tool call requested by the model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    arguments: str
    """The raw JSON string the model produced; validated before any endpoint is called."""


class Confirmation(BaseModel):
    """A call of a `confirm = true` action waiting for (or given) the asking user's answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str
    """Unguessable id carried by the card's buttons."""
    event_key: str
    idempotency_key: str
    action: str
    display_name: str = ""
    arguments: dict[str, Any]
    requester: str
    """The platform user id who asked, the only one who may answer."""
    state: str
    """`pending`, `confirmed` or `cancelled`."""
    expires_at: float

    def expired(self, now: float) -> bool:
        return self.state == "pending" and now >= self.expires_at


class CallUpdate(BaseModel):
    """One action call of a turn as the customer may watch it: started, then finished.
    Adapters show it as a card or a line (the display name, a state, the latency)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """The model's tool call id: the same for the start and the end of one call."""
    action: str
    display_name: str
    state: Literal["running", "done", "failed"]
    latency_ms: float | None = None
    """Set when the call has finished."""


class Handoff(BaseModel):
    """The model asked for a person (`handoff_to_human`): what the team is told."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    conversation: str
    """`platform:conversation` as the turn ran it (the thread a mention opened)."""
    reason: str
    summary: str = ""
    question: str
    """The customer's message that led to the handoff."""
    actions_tried: list[str] = Field(default_factory=list)
    """Display names of the actions called in the turn, in order."""


class Reply(BaseModel):
    """The engine's answer to one message, for the adapter to render."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    actions_called: list[str] = Field(default_factory=list)
    failed: bool = False
    """True when the text is a fallback apology rather than the model's answer."""
    confirmations: list[Confirmation] = Field(default_factory=list)
    """Calls waiting for the user's confirmation: the adapter shows a card for each, and
    the turn goes on once they are answered (`text` is then only a status line)."""
    handoff: Handoff | None = None
    """Set when the turn handed the conversation to a person: the adapter posts the
    summary in the handoff channel, and the bot stays silent in the conversation."""
