"""The SQLite store's rows of durable turns: the inbox, confirmations and the turn journal
(roles `EventInbox`, `Confirmations` and `TurnJournal` of `bot.store`)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from bot.store import InboxEntry
from bot.store.queries import (
    DEFER,
    EARLIER_PENDING,
    HOLD_LEASE,
    INBOX_CLAIM,
    INBOX_FINISH_TURN,
    INBOX_INSERT,
    INBOX_TAKE_OVER,
    JOURNAL_START,
    RELEASE,
)
from bot.store.rows import SELECT_CONFIRMATION, SELECT_INBOX, confirmation, event_key, to_json
from bot.store.rows import entry as inbox_entry
from bot.store.sqlite_base import Connection
from bot.types import ActionResult, Confirmation, IncomingMessage, Reply


class TurnRows(Connection):
    """Inbox, confirmations and journal over the store's connection."""

    # -- inbox ---------------------------------------------------------------------------

    async def receive(
        self, message: IncomingMessage, *, route: dict[str, Any], owner: str, lease_seconds: float
    ) -> InboxEntry | None:
        """Write a new message pending (see `bot.store.EventInbox.receive`); one statement
        for a new message, so the acknowledgement that follows waits on nothing else."""
        now = self._clock()
        key = event_key(message)
        params = {
            "key": key,
            "platform": message.platform,
            "conversation": message.conversation,
            "user_id": message.user_id,
            "user_name": message.user_name,
            "team_id": message.team_id,
            "channel_id": message.channel_id,
            "is_admin": int(message.is_admin),
            "text": message.text,
            "route": to_json(route),
            "now": now,
            "attempts": 1 if lease_seconds > 0 else 0,
            "owner": owner if lease_seconds > 0 else None,
            "until": now + lease_seconds if lease_seconds > 0 else 0.0,
        }
        written = self._db.execute(INBOX_INSERT, params).fetchall()
        if written:
            if lease_seconds <= 0:
                return None
            seq, earlier = written[0]
            return InboxEntry(
                key=key,
                seq=int(seq),
                message=message,
                route=route,
                attempts=1,
                first_in_line=earlier == 0,
            )
        if lease_seconds <= 0:
            return None
        rows = self._db.execute(INBOX_TAKE_OVER, params).fetchall()
        return inbox_entry(rows[0]) if rows else None

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
        `previous` owners), oldest first, leased to `owner` with one more attempt each."""
        now = self._clock()
        params = {
            "owner": owner,
            "until": now + lease_seconds,
            "now": now,
            "platforms": json.dumps(platforms),
            "limit": limit,
            "previous": json.dumps(previous or []),
        }
        with self._transaction(write=True) as db:
            rows = db.execute(INBOX_CLAIM, params).fetchall()
        return sorted((inbox_entry(row) for row in rows), key=lambda found: found.seq)

    async def lease_owners(self, prefix: str) -> list[str]:
        """Owners named `prefix…` that hold pending messages."""
        sql = (
            "SELECT DISTINCT lease_owner FROM inbox WHERE state = 'pending' "
            "AND substr(lease_owner, 1, length(?)) = ?"
        )
        return sorted(str(row[0]) for row in self._read(sql, (prefix, prefix)))

    async def entry(self, key: str) -> InboxEntry | None:
        """The message `key` as it is kept now."""
        sql = SELECT_INBOX + " WHERE event_key = ?"
        rows = self._read(sql, (key,))
        return inbox_entry(rows[0]) if rows else None

    async def renew(self, owner: str, keys: list[str], lease_seconds: float) -> int:
        """Extend `owner`'s leases on the pending messages `keys`; returns how many."""
        sql = (
            "UPDATE inbox SET lease_until = ? WHERE lease_owner = ? AND state = 'pending' "
            "AND event_key IN (SELECT value FROM json_each(?))"
        )
        params = (self._clock() + lease_seconds, owner, json.dumps(keys))
        return self._db.execute(sql, params).rowcount

    async def update_route(self, key: str, changes: dict[str, Any]) -> None:
        """Merge `changes` into where the answer goes (e.g. the placeholder just posted)."""
        sql = "UPDATE inbox SET route = json_patch(route, ?) WHERE event_key = ?"
        self._db.execute(sql, (to_json(changes), key))

    async def release(self, key: str, *, owner: str | None = None) -> None:
        """Leave a pending message for the next process to take (with `owner`, only while
        that process holds it)."""
        self._db.execute(RELEASE, (key, owner, owner))

    async def park(self, key: str, *, until: float) -> None:
        """Keep a pending message out of replays until `until`: it waits for a click."""
        sql = (
            "UPDATE inbox SET lease_owner = 'confirmation', lease_until = ?, attempts = 0 "
            "WHERE event_key = ? AND state = 'pending'"
        )
        self._db.execute(sql, (until, key))

    async def wake(self, key: str) -> bool:
        """A parked message (waiting for a click) is ready again; False if it was not parked
        (its turn is running, or it is answered)."""
        sql = (
            "UPDATE inbox SET lease_owner = NULL, lease_until = 0 "
            "WHERE event_key = ? AND state = 'pending' AND lease_owner = 'confirmation'"
        )
        return self._db.execute(sql, (key,)).rowcount == 1

    async def settle(self, key: str, *, failed: bool) -> None:
        """The message is answered, or failed for good; later deliveries are dropped."""
        sql = (
            "UPDATE inbox SET state = ?, finished_at = ?, lease_owner = NULL, progress = NULL "
            "WHERE event_key = ?"
        )
        self._db.execute(sql, ("failed" if failed else "done", self._clock(), key))

    async def prune_inbox(self, older_than_seconds: float) -> int:
        """Delete messages received more than `older_than_seconds` ago; returns how many."""
        sql = "DELETE FROM inbox WHERE received_at < ?"
        with self._transaction(write=True) as db:
            return db.execute(sql, (self._clock() - older_than_seconds,)).rowcount

    async def inbox_counts(self) -> dict[str, int]:
        """Messages per state."""
        rows = self._read("SELECT state, COUNT(*) FROM inbox GROUP BY state")
        counts = {"pending": 0, "done": 0, "failed": 0}
        counts.update({str(state): int(n) for state, n in rows})
        return counts

    async def earlier_pending(self, key: str) -> list[tuple[str, str | None]]:
        """Earlier pending messages of `key`'s conversation, not waiting for a click."""
        rows = self._read(EARLIER_PENDING, (self._clock(), key))
        return [(str(found), None if holder is None else str(holder)) for found, holder in rows]

    async def defer(self, key: str, *, owner: str) -> None:
        """Leave a pending message `owner` holds for a moment without using up an attempt."""
        self._db.execute(DEFER, (key, owner))

    # -- leases --------------------------------------------------------------------------

    async def hold_lease(self, name: str, *, owner: str, seconds: float) -> bool:
        """Take or extend lease `name`; False while another owner holds it."""
        now = self._clock()
        rows = self._db.execute(HOLD_LEASE, (name, owner, now + seconds, now)).fetchall()
        return bool(rows)

    async def drop_lease(self, name: str, *, owner: str) -> None:
        """Give up lease `name` if `owner` holds it."""
        self._db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    async def lease_holder(self, name: str) -> str | None:
        """Who holds lease `name` now; None if nobody."""
        sql = "SELECT owner FROM leases WHERE name = ? AND until > ?"
        rows = self._read(sql, (name, self._clock()))
        return str(rows[0][0]) if rows else None

    async def prune_leases(self, older_than_seconds: float) -> int:
        """Delete leases that expired longer ago; returns how many."""
        sql = "DELETE FROM leases WHERE until < ?"
        with self._transaction(write=True) as db:
            return db.execute(sql, (self._clock() - older_than_seconds,)).rowcount

    # -- confirmations -------------------------------------------------------------------

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
        """The confirmation of this call, created pending unless it exists."""
        now = self._clock()
        with self._transaction(write=True) as db:
            db.execute(
                "INSERT INTO confirmations (token, event_key, idempotency_key, action, arguments,"
                " requester, state, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 'pending',"
                " ?, ?) ON CONFLICT (event_key, idempotency_key) DO NOTHING",
                (
                    secrets.token_urlsafe(18),
                    event_key,
                    idempotency_key,
                    action,
                    to_json(arguments),
                    requester,
                    now,
                    now + ttl,
                ),
            )
            rows = db.execute(
                SELECT_CONFIRMATION + " WHERE event_key = ? AND idempotency_key = ?",
                (event_key, idempotency_key),
            ).fetchall()
        return confirmation(rows[0])

    async def confirmation(self, event_key: str, idempotency_key: str) -> Confirmation | None:
        """The confirmation of this call, if one was asked for."""
        sql = SELECT_CONFIRMATION + " WHERE event_key = ? AND idempotency_key = ?"
        rows = self._read(sql, (event_key, idempotency_key))
        return confirmation(rows[0]) if rows else None

    async def confirmation_by_token(self, token: str) -> Confirmation | None:
        """The confirmation a card's button names."""
        rows = self._read(SELECT_CONFIRMATION + " WHERE token = ?", (token,))
        return confirmation(rows[0]) if rows else None

    async def decide(self, token: str, *, confirmed: bool, by: str) -> bool:
        """Record the answer once, before expiry; True when this call recorded it."""
        now = self._clock()
        sql = (
            "UPDATE confirmations SET state = ?, decided_by = ?, decided_at = ? "
            "WHERE token = ? AND state = 'pending' AND expires_at > ?"
        )
        state = "confirmed" if confirmed else "cancelled"
        return self._db.execute(sql, (state, by, now, token, now)).rowcount == 1

    # -- turn journal --------------------------------------------------------------------

    async def instance_key(self) -> bytes:
        """This installation's random key, created on first use."""
        self._db.execute(
            "INSERT INTO instance (name, value) VALUES ('call_key', ?) ON CONFLICT DO NOTHING",
            (secrets.token_bytes(32),),
        )
        rows = self._read("SELECT value FROM instance WHERE name = 'call_key'")
        return bytes(rows[0][0])

    async def start_call(
        self, event_key: str, idempotency_key: str, *, ordinal: int, action: str, arguments: str
    ) -> ActionResult | None:
        """Journal a call before it is sent (one statement); its recorded result if it has
        one."""
        params = (event_key, idempotency_key, ordinal, action, arguments, self._clock())
        rows = self._db.execute(JOURNAL_START, params).fetchall()
        recorded = rows[0][0] if rows else None
        return None if recorded is None else ActionResult.model_validate_json(recorded)

    async def save_progress(self, event_key: str, messages: list[dict[str, Any]]) -> None:
        """Keep a cancelled turn's messages so far in its inbox entry."""
        sql = "UPDATE inbox SET progress = ? WHERE event_key = ? AND state = 'pending'"
        self._db.execute(sql, (to_json(messages), event_key))

    async def finish_turn(
        self,
        conversation: str,
        *,
        platform: str,
        messages: list[dict[str, Any]],
        event_key: str,
        reply: Reply,
    ) -> None:
        """Append the turn and keep its reply in the inbox entry, in one transaction."""
        with self._transaction(write=True) as db:
            self._append(db, conversation, platform, messages)
            db.execute(INBOX_FINISH_TURN, (reply.model_dump_json(), event_key))

    async def prune_journal(self, older_than_seconds: float) -> int:
        """Delete journal rows (and confirmations) started more than `older_than_seconds`
        ago; returns how many journal rows."""
        cutoff = self._clock() - older_than_seconds
        with self._transaction(write=True) as db:
            db.execute("DELETE FROM confirmations WHERE created_at < ?", (cutoff,))
            return db.execute("DELETE FROM journal WHERE started_at < ?", (cutoff,)).rowcount
