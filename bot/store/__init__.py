"""Storage: what each part of the bot needs from the database, as small Protocols, and the
values they return. `sqlite.py` implements every role in one SQLite file (`queries.py`
holds its SQL and migrations); a second backend implements the same Protocols and passes
the same contract tests (`tests/test_store_contract.py`). Callers depend on the role they
use. May import `bot.types` and `bot.errors` only.

    ActionStateStore   admin toggles of actions          (engine, admin)
    CallLog            recorded webhook calls and stats   (webhook client, admin, metrics)
    ConversationStore  conversation history               (engine, adapters)
    EventInbox         platform event ids seen once       (adapters, via `first_delivery`)
    ModelChecks        what `actionbot doctor` found      (assembly)
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bot.types import ActionResult

logger = logging.getLogger(__name__)


class ActionState(BaseModel):
    """An admin's toggle of an action; it overrides the actions file's initial `active`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    active: bool
    changed_by: str
    changed_at: datetime


class ActionStats(BaseModel):
    """Monitoring numbers for one action. `p95_latency_ms` covers the recent `P95_WINDOW`
    calls; every other number covers all recorded calls."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    calls: int = 0
    successes: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    """Count per non-success `Outcome` value, only outcomes that happened."""
    avg_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    last_call_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


class ActionStateStore(Protocol):
    async def action_states(self) -> dict[str, ActionState]:
        """Every action an admin has toggled, by name."""
        ...

    async def set_active(self, name: str, active: bool, *, actor: str) -> None:
        """Record that `actor` turned action `name` on or off, now."""


class CallLog(Protocol):
    async def record_call(self, result: ActionResult, *, conversation: str | None = None) -> None:
        """Store one webhook call; counts stay exact under concurrency."""

    async def stats(self, name: str | None = None) -> list[ActionStats]:
        """Stats for one action (a zero row if it has none), or every action with calls."""
        ...

    async def call_totals(self) -> list[tuple[str, str, int]]:
        """(action, outcome, calls) for every pair with calls."""
        ...

    async def call_counts(self) -> dict[str, int]:
        """Total calls per action that has any."""
        ...


class ConversationStore(Protocol):
    async def load_messages(self, conversation: str, *, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` messages of a conversation, oldest first."""
        ...

    async def append_messages(
        self, conversation: str, *, platform: str, messages: list[dict[str, Any]]
    ) -> None:
        """Add one turn's messages to a conversation, atomically."""

    async def has_conversation(self, conversation: str) -> bool:
        """Whether the bot has taken part in this conversation (and it was not pruned)."""
        ...

    async def prune_conversations(self, older_than_seconds: float) -> int:
        """Delete conversations idle for longer; returns how many."""
        ...

    async def active_conversations(self, within_seconds: float) -> int:
        """How many conversations had a message within the last `within_seconds`."""
        ...


class EventInbox(Protocol):
    async def mark_seen(self, event_id: str) -> bool:
        """Remember `event_id`; True the first time only. Adapters call it before they
        acknowledge an event, so it must not wait behind other work."""
        ...

    async def prune_seen(self, older_than_seconds: float) -> int:
        """Forget event ids seen longer ago; returns how many."""
        ...


class ModelChecks(Protocol):
    async def record_model_check(self, endpoint: str, model: str, *, native_tools: bool) -> None:
        """Remember whether `model` at `endpoint` calls tools natively."""

    async def native_tools(self, endpoint: str, model: str) -> bool | None:
        """What the last check found; None if never checked."""
        ...


class TurnStore(ActionStateStore, ConversationStore, Protocol):
    """What a turn reads and writes: which actions are on, and the conversation."""


class AdminStore(ActionStateStore, CallLog, Protocol):
    """What `/actions` reads and writes: toggles and the call log."""


class AdapterStore(EventInbox, ConversationStore, Protocol):
    """What a platform adapter asks before it acknowledges an event."""


class Store(TurnStore, CallLog, EventInbox, ModelChecks, Protocol):
    """Every role, plus opening and closing: what the assembly wires together."""

    async def ping(self) -> bool:
        """True when the database answers a query (readiness)."""
        ...

    async def close(self) -> None:
        """Close the connection."""


async def first_delivery(inbox: EventInbox, platform: str, event_id: str | None) -> bool:
    """Whether this is the first delivery of a platform event (every adapter's dedupe): a
    retry or a duplicate delivery of the same id is False, and logged; no id is True."""
    if not event_id:
        return True
    first = await inbox.mark_seen(f"{platform}:{event_id}")
    if not first:
        logger.info("%s event %s already handled; skipping the redelivery", platform, event_id)
    return first
