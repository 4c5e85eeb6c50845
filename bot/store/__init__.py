"""Storage: what each part of the bot needs from the database, as small Protocols, and the
values they return. `sqlite.py` implements every role in one SQLite file (`queries.py`
holds its SQL and migrations); a second backend implements the same Protocols and passes
the same contract tests (`tests/test_store_contract.py`). Callers depend on the role they
use. May import `bot.types` and `bot.errors` only. The guardrails' roles and values
(`AuditLog`, `ActionModes`, `AuditRow`, `BreakerRecord`) are in `audit_roles.py`, re-exported
here; both backends implement them in `guardrails.py`. The durable turn's roles and values
(`EventInbox`, `InboxEntry`, `TurnJournal`, `Confirmations`) are in `turn_roles.py`,
re-exported here too.

    ActionStateStore   admin toggles of actions          (engine, admin)
    CallLog            recorded webhook calls and stats   (webhook client, admin, metrics)
    ConversationStore  conversation history               (engine, adapters)
    EventInbox         every incoming message until it is answered   (bot.delivery)
    TurnJournal        webhook calls of a turn, the finished turn    (engine)
    ModelChecks        what `actionbot doctor` found      (assembly)
    Leases             work one process of several does   (Discord shards, retention)
    Handoffs           conversations handed to a person   (bot.delivery, admin)
    RecentCalls        the last hours of calls, per hour  (admin console, stats)
    ChatActions        actions made with `/actions new`   (the catalogue, admin)
    AuditLog           who triggered which call, with what   (`actions audit`, admin)
    ActionModes        dry-run overrides, breaker states  (engine, admin)

`sqlite.py` is the embedded default; `postgres.py` (asyncpg) serves several replicas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bot.store.audit_roles import ActionModes as ActionModes
from bot.store.audit_roles import AuditLog as AuditLog
from bot.store.audit_roles import AuditRow as AuditRow
from bot.store.audit_roles import BreakerRecord as BreakerRecord
from bot.store.audit_roles import BreakerState as BreakerState
from bot.store.turn_roles import Confirmations as Confirmations
from bot.store.turn_roles import EventInbox as EventInbox
from bot.store.turn_roles import InboxEntry as InboxEntry
from bot.store.turn_roles import TurnJournal as TurnJournal
from bot.types import ActionResult


class ActionState(BaseModel):
    """An admin's toggle of an action; it overrides the actions file's initial `active`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    active: bool
    changed_by: str
    changed_at: datetime


class ActionStats(BaseModel):
    """Monitoring numbers for one action. `p95_latency_ms` covers the recent `P95_WINDOW`
    calls among those still kept (`ACTIONBOT_CALL_LOG_DAYS`); every other number covers
    all calls ever recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    calls: int = 0
    attempts: int = 0
    """Requests sent for those calls: more than `calls` when retries happened."""
    successes: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    """Count per non-success `Outcome` value, only outcomes that happened."""
    avg_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    last_call_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


class RecentActivity(BaseModel):
    """One action's calls over the last hours (`RecentCalls.recent_activity`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    hourly: list[int]
    """Calls per hour, oldest hour first; the last is the current hour so far."""
    outcomes: dict[str, int] = Field(default_factory=dict)
    """Calls per `Outcome` value over the whole window, only outcomes that happened."""
    p95_latency_ms: float | None = None

    @property
    def calls(self) -> int:
        return sum(self.outcomes.values())

    @property
    def success_rate(self) -> float | None:
        """Share of the window's calls that succeeded; None without calls."""
        return self.outcomes.get("success", 0) / self.calls if self.calls else None


class ActionStateStore(Protocol):
    async def action_states(self) -> dict[str, ActionState]:
        """Every action an admin has toggled, by name."""
        ...

    async def set_active(self, name: str, active: bool, *, actor: str) -> None:
        """Record that `actor` turned action `name` on or off, now."""


class CallLog(Protocol):
    async def record_call(
        self,
        result: ActionResult,
        *,
        conversation: str | None = None,
        event_key: str | None = None,
        caller: str = "",
        arguments: str | None = None,
    ) -> None:
        """Store one webhook call; counts stay exact under concurrency. With `event_key`,
        the turn journal's row of the call (`result.call_id` is its idempotency key) gets
        the result in the same transaction. For the audit trail: `caller` is the call's
        `X-ActionBot-Caller` header (`platform=…; team=…; user=…; channel=…`), kept split
        into its fields, and `arguments` the JSON text sent, secrets already masked."""

    async def prune_calls(self, older_than_seconds: float) -> int:
        """Delete call rows recorded longer ago (the totals keep counting them)."""
        ...

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


class Leases(Protocol):
    """Work that one process of several does at a time: a Discord shard's connection, the
    retention sweep. A lease is held until it expires; its holder renews it while working."""

    async def hold_lease(self, name: str, *, owner: str, seconds: float) -> bool:
        """Take lease `name` for `seconds` (or extend it, when `owner` holds it already);
        False while another owner holds it unexpired."""
        ...

    async def drop_lease(self, name: str, *, owner: str) -> None:
        """Give up lease `name` if `owner` holds it, for another process to take at once."""

    async def lease_holder(self, name: str) -> str | None:
        """Who holds lease `name` now (unexpired); None if nobody."""
        ...

    async def prune_leases(self, older_than_seconds: float) -> int:
        """Delete leases that expired longer ago; returns how many."""
        ...


class Handoffs(Protocol):
    """Conversations the model handed to a person: the bot stays silent in them until an
    admin resumes it or the handoff expires."""

    async def start_handoff(
        self, event_key: str, *, conversation: str, platform: str, seconds: float
    ) -> bool:
        """Silence `conversation` for `seconds` from now; False when this turn (`event_key`)
        started it already (a replay)."""
        ...

    async def handed_off(self, conversation: str) -> float | None:
        """Until when (Unix seconds) the conversation is with a person; None if it is not."""
        ...

    async def end_handoffs(self, where: str, *, by: str) -> list[str]:
        """Resume the bot in the conversation `where`, or in every conversation under it
        (`where:` and more, e.g. the threads of a Slack channel); returns those resumed."""
        ...

    async def handoff_counts(self) -> tuple[int, int]:
        """(handoffs ever, conversations with a person now)."""
        ...


class ChatAction(BaseModel):
    """An action made in chat, as kept: the JSON of one `[[actions]]` table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    definition: dict[str, Any]
    updated_by: str
    updated_at: float


class ChatActions(Protocol):
    async def chat_actions(self) -> list[ChatAction]:
        """Every action made in chat, by name."""
        ...

    async def save_chat_action(
        self, name: str, definition: dict[str, Any], *, actor: str, previous: str | None = None
    ) -> None:
        """Create or replace action `name` (replacing `previous` when it was renamed)."""

    async def delete_chat_action(self, name: str) -> bool:
        """Delete action `name`; False when no action of that name was made in chat."""
        ...


class RecentCalls(Protocol):
    async def recent_activity(
        self, *, hours: int = 24, name: str | None = None
    ) -> dict[str, RecentActivity]:
        """Calls of the last `hours` (from the call rows still kept) by action, or of action
        `name` alone; only actions with calls."""
        ...


class ModelChecks(Protocol):
    async def record_model_check(self, endpoint: str, model: str, *, native_tools: bool) -> None:
        """Remember whether `model` at `endpoint` calls tools natively."""

    async def native_tools(self, endpoint: str, model: str) -> bool | None:
        """What the last check found; None if never checked."""
        ...


class TurnStore(ActionStateStore, ConversationStore, TurnJournal, Confirmations, Protocol):
    """What a turn reads and writes: which actions are on, the conversation, the journal."""

    async def turn_inputs(
        self, conversation: str, *, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, ActionState], dict[str, bool]]:
        """What a turn starts from, read together (one round trip where the database is
        across a network): the newest `limit` messages of the conversation, oldest first,
        every admin toggle and every dry-run override (`ActionModes.action_modes`), read on
        every turn so a change holds from the next one."""
        ...


class DeliveryStore(EventInbox, Confirmations, Handoffs, Protocol):
    """What the inbox at work (`bot.delivery`) reads and writes."""


class AdminStore(
    ActionStateStore,
    CallLog,
    Handoffs,
    RecentCalls,
    ChatActions,
    AuditLog,
    ActionModes,
    Protocol,
):
    """What `/actions` reads and writes: toggles and modes, the call log and its audit
    trail, breaker states, how messages fared."""

    async def inbox_counts(self) -> dict[str, int]:
        """Messages per state (pending, done, failed)."""
        ...


class AdapterStore(ConversationStore, Leases, Protocol):
    """What a platform adapter asks before it hands a message to the inbox; leases dedupe
    interactions (a click or a command delivered twice is handled once)."""


class Store(
    TurnStore,
    CallLog,
    EventInbox,
    ModelChecks,
    Leases,
    Handoffs,
    RecentCalls,
    ChatActions,
    AuditLog,
    ActionModes,
    Protocol,
):
    """Every role, plus opening and closing: what the assembly wires together."""

    async def ping(self) -> bool:
        """True when the database answers a query (readiness)."""
        ...

    async def close(self) -> None:
        """Close the connection."""
