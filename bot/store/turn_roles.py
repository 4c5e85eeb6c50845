"""The durable turn's roles of the store and the values they return: the inbox that keeps
every incoming message until it is answered (`EventInbox`, `InboxEntry`), the journal that
makes a replayed turn safe (`TurnJournal`), and the calls waiting for a user's click
(`Confirmations`). Re-exported by `bot.store`; imports `bot.types` only."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from bot.types import ActionResult, Confirmation, IncomingMessage, Reply


class InboxEntry(BaseModel):
    """One incoming message as the inbox keeps it until it is answered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    """`platform:event id`: the same for every delivery of one platform event."""
    seq: int
    """Arrival order."""
    message: IncomingMessage
    route: dict[str, Any]
    """Where the adapter answers (channel, thread, placeholder message), as it recorded it."""
    attempts: int
    """How many times a turn has been started for it, this one included."""
    progress: list[dict[str, Any]] | None = None
    """The turn's messages so far, saved when it was cancelled; it resumes from them."""
    reply: Reply | None = None
    """The engine's answer, once the turn has one: a replay only delivers it."""
    first_in_line: bool = False
    """Written just now with no earlier message of its conversation pending (the same
    statement looked): its turn need not look again before it runs."""


class EventInbox(Protocol):
    """Every incoming message from before it is acknowledged until it is answered. A lease
    (owner and expiry) says which process is handling a pending message; a message whose
    lease expired is taken over by the next process that sees it."""

    async def receive(
        self, message: IncomingMessage, *, route: dict[str, Any], owner: str, lease_seconds: float
    ) -> InboxEntry | None:
        """Write a new message as pending, leased to `owner` for `lease_seconds` (0: not
        leased, for whoever replays it next). Returns the entry to run now: the new one, or
        a pending one whose lease expired (taken over, one more attempt); None for a
        delivery of a message that is answered, failed, or being handled. Adapters call it
        before they acknowledge, so it must not wait behind other work."""
        ...

    async def claim(
        self,
        *,
        owner: str,
        lease_seconds: float,
        platforms: list[str],
        limit: int,
        previous: list[str] | None = None,
    ) -> list[InboxEntry]:
        """Pending messages of `platforms` whose lease expired (or is held by one of the
        `previous` owners: processes known to be gone), oldest first, now leased to `owner`
        with one more attempt each."""
        ...

    async def lease_owners(self, prefix: str) -> list[str]:
        """The owners whose names start with `prefix` that hold pending messages."""
        ...

    async def entry(self, key: str) -> InboxEntry | None:
        """The message `key` as it is kept now (route, progress and reply included)."""
        ...

    async def renew(self, owner: str, keys: list[str], lease_seconds: float) -> int:
        """Extend `owner`'s leases on the pending messages `keys`; returns how many."""
        ...

    async def update_route(self, key: str, changes: dict[str, Any]) -> None:
        """Merge `changes` into where the answer goes (e.g. the placeholder just posted)."""

    async def release(self, key: str, *, owner: str | None = None) -> None:
        """Leave a pending message for the next process (shutdown cancelled its turn); with
        `owner`, only while that process holds it (not after another took it over)."""

    async def park(self, key: str, *, until: float) -> None:
        """Keep a pending message out of replays until `until` (Unix seconds): its turn
        waits for a confirmation; deciding it releases the message."""

    async def wake(self, key: str) -> bool:
        """A parked message is ready again (its confirmation was answered); False if it was
        not parked."""
        ...

    async def settle(self, key: str, *, failed: bool) -> None:
        """The message is answered (or failed for good): later deliveries are dropped."""

    async def prune_inbox(self, older_than_seconds: float) -> int:
        """Delete messages received longer ago (pending ones included); returns how many."""
        ...

    async def inbox_counts(self) -> dict[str, int]:
        """Messages per state (pending, done, failed)."""
        ...

    async def earlier_pending(self, key: str) -> list[tuple[str, str | None]]:
        """(key, holder) of each message of the same conversation that arrived before `key`
        and is still pending, oldest first, not counting those waiting for a confirmation;
        `holder` is the owner of an unexpired lease, None when nobody holds it. A turn
        goes after them, so a conversation is answered in arrival order by one process at a
        time."""
        ...

    async def defer(self, key: str, *, owner: str) -> None:
        """Leave a pending message `owner` holds for a moment without using up an attempt:
        its turn found an earlier message of its conversation to answer first."""


class TurnJournal(Protocol):
    """What makes a replayed turn safe: each webhook call is written before it is sent, and
    its result after; the finished turn is saved with the conversation at once."""

    async def instance_key(self) -> bytes:
        """This installation's random key (created on first use, kept in the database)."""
        ...

    async def start_call(
        self, event_key: str, idempotency_key: str, *, ordinal: int, action: str, arguments: str
    ) -> ActionResult | None:
        """Write that a call is about to be sent, unless it was written before; returns its
        recorded result if it has one (then it must not be sent again)."""
        ...

    async def save_progress(self, event_key: str, messages: list[dict[str, Any]]) -> None:
        """Keep a cancelled turn's messages so far in its inbox entry."""

    async def finish_turn(
        self,
        conversation: str,
        *,
        platform: str,
        messages: list[dict[str, Any]],
        event_key: str,
        reply: Reply,
    ) -> None:
        """Append the turn to the conversation and keep `reply` in its inbox entry, in one
        transaction: a replay then delivers the answer instead of running the turn again."""

    async def prune_journal(self, older_than_seconds: float) -> int:
        """Delete journal rows started longer ago; returns how many."""
        ...


class Confirmations(Protocol):
    """Calls of `confirm = true` actions waiting for the asking user's click."""

    async def request_confirmation(
        self,
        event_key: str,
        idempotency_key: str,
        *,
        action: str,
        arguments: dict[str, Any],
        requester: str,
        ttl: float,
    ) -> Confirmation:
        """The confirmation of this call, created pending (expiring in `ttl` seconds)
        unless it exists."""
        ...

    async def confirmation(self, event_key: str, idempotency_key: str) -> Confirmation | None:
        """The confirmation of this call, if one was asked for."""
        ...

    async def confirmation_by_token(self, token: str) -> Confirmation | None:
        """The confirmation a card's button names."""
        ...

    async def decide(self, token: str, *, confirmed: bool, by: str) -> bool:
        """Record the answer, once: True only for the first answer before it expired."""
        ...
