"""The PostgreSQL store's rows of durable turns: the inbox, confirmations and the turn journal
(roles `EventInbox`, `Confirmations` and `TurnJournal` of `bot.store`).

Several replicas share these rows. A lease changes hands only through an `UPDATE … WHERE
lease_until <= now`, which PostgreSQL re-checks after waiting for a concurrent update of the
same row, so exactly one replica takes over an expired message; claims skip rows another
replica is claiming (`FOR UPDATE SKIP LOCKED`)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import asyncpg

from bot.store import InboxEntry
from bot.store.rows import SELECT_CONFIRMATION, SELECT_INBOX, confirmation, event_key, to_json
from bot.store.rows import entry as inbox_entry
from bot.types import ActionResult, Confirmation, IncomingMessage, Reply

INBOX_INSERT = """
INSERT INTO inbox (event_key, platform, conversation, user_id, user_name, team_id,
                   channel_id, is_admin, text, route, received_at, state, attempts,
                   lease_owner, lease_until)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14)
ON CONFLICT (event_key) DO NOTHING
RETURNING seq, (
    SELECT COUNT(*) FROM inbox AS earlier
    WHERE earlier.conversation = $3 AND earlier.platform = $2
      AND earlier.state = 'pending' AND earlier.seq < inbox.seq
      AND COALESCE(earlier.lease_owner, '') != 'confirmation'
)
"""

# Both return the columns `rows.entry` reads, in its order.
INBOX_TAKE_OVER = """
UPDATE inbox SET lease_owner = $2, lease_until = $3, attempts = attempts + 1
WHERE event_key = $1 AND state = 'pending' AND lease_until <= $4
RETURNING event_key, seq, platform, conversation, user_id, user_name, text, route, attempts,
          progress, reply, team_id, channel_id, is_admin
"""

INBOX_CLAIM = """
UPDATE inbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
WHERE seq IN (
    SELECT seq FROM inbox
    WHERE state = 'pending'
      AND (lease_until <= $3 OR lease_owner = ANY($4::text[]))
      AND platform = ANY($5::text[])
    ORDER BY seq LIMIT $6
    FOR UPDATE SKIP LOCKED
)
RETURNING event_key, seq, platform, conversation, user_id, user_name, text, route, attempts,
          progress, reply, team_id, channel_id, is_admin
"""

FINISH_TURN = """
WITH conversation AS (
    INSERT INTO conversations (key, platform, created_at, updated_at) VALUES ($1, $2, $3, $3)
    ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING key
), appended AS (
    INSERT INTO messages (conversation, created_at, payload)
    SELECT conversation.key, $3, payload
    FROM conversation, unnest($4::text[]) WITH ORDINALITY AS m(payload, n) ORDER BY n
)
UPDATE inbox SET reply = $5, progress = NULL WHERE event_key = $6 AND state = 'pending'
"""

START_CALL = """
WITH started AS (
    INSERT INTO journal (event_key, idempotency_key, ordinal, action, arguments, started_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (event_key, idempotency_key) DO NOTHING
)
SELECT result FROM journal WHERE event_key = $1 AND idempotency_key = $2
"""

REQUEST_CONFIRMATION = """
INSERT INTO confirmations (token, event_key, idempotency_key, action, arguments, requester,
                           state, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)
ON CONFLICT (event_key, idempotency_key) DO NOTHING
"""


_RELEASE = """
UPDATE inbox SET lease_owner = NULL, lease_until = 0
WHERE event_key = $1 AND state = 'pending' AND ($2::text IS NULL OR lease_owner = $2)
"""


def numbered(sql: str) -> str:
    """A query written with `?` placeholders (shared with SQLite) with `$1, $2, …`."""
    count = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


class PostgresTurnRows:
    """Inbox, confirmations and journal over the store's pool."""

    def __init__(
        self, pool: asyncpg.Pool, *, clock: Callable[[], float], inbox: asyncpg.Pool
    ) -> None:
        self._pool = pool
        self._inbox = inbox
        """Connections for `receive` alone (see `postgres.INBOX_CONNECTIONS`)."""
        self._clock = clock

    # -- inbox ---------------------------------------------------------------------------

    async def receive(
        self, message: IncomingMessage, *, route: dict[str, Any], owner: str, lease_seconds: float
    ) -> InboxEntry | None:
        """Write a new message pending (see `bot.store.EventInbox.receive`): one statement
        for a new message, a second only for a redelivery."""
        now = self._clock()
        key = event_key(message)
        leased = lease_seconds > 0
        until = now + lease_seconds if leased else 0.0
        written = await self._inbox.fetchrow(
            INBOX_INSERT,
            key,
            message.platform,
            message.conversation,
            message.user_id,
            message.user_name,
            message.team_id,
            message.channel_id,
            message.is_admin,
            message.text,
            to_json(route),
            now,
            1 if leased else 0,
            owner if leased else None,
            until,
        )
        if not leased:
            return None
        if written is not None:
            seq, earlier = written
            return InboxEntry(
                key=key,
                seq=int(seq),
                message=message,
                route=route,
                attempts=1,
                first_in_line=earlier == 0,
            )
        row = await self._inbox.fetchrow(INBOX_TAKE_OVER, key, owner, until, now)
        return None if row is None else inbox_entry(tuple(row))

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
        rows = await self._pool.fetch(
            INBOX_CLAIM, owner, now + lease_seconds, now, previous or [], platforms, limit
        )
        return sorted((inbox_entry(tuple(row)) for row in rows), key=lambda found: found.seq)

    async def lease_owners(self, prefix: str) -> list[str]:
        """Owners named `prefix…` that hold pending messages."""
        rows = await self._pool.fetch(
            "SELECT DISTINCT lease_owner FROM inbox WHERE state = 'pending' "
            "AND starts_with(lease_owner, $1)",
            prefix,
        )
        return sorted(str(row[0]) for row in rows)

    async def entry(self, key: str) -> InboxEntry | None:
        """The message `key` as it is kept now."""
        row = await self._pool.fetchrow(SELECT_INBOX + " WHERE event_key = $1", key)
        return None if row is None else inbox_entry(tuple(row))

    async def renew(self, owner: str, keys: list[str], lease_seconds: float) -> int:
        """Extend `owner`'s leases on the pending messages `keys`; returns how many."""
        status = await self._pool.execute(
            "UPDATE inbox SET lease_until = $1 WHERE lease_owner = $2 AND state = 'pending' "
            "AND event_key = ANY($3::text[])",
            self._clock() + lease_seconds,
            owner,
            keys,
        )
        return row_count(status)

    async def update_route(self, key: str, changes: dict[str, Any]) -> None:
        """Merge `changes` into where the answer goes (top-level keys replace)."""
        await self._pool.execute(
            "UPDATE inbox SET route = (route::jsonb || $1::jsonb)::text WHERE event_key = $2",
            to_json(changes),
            key,
        )

    async def release(self, key: str, *, owner: str | None = None) -> None:
        """Leave a pending message for the next process to take (with `owner`, only while
        that process holds it)."""
        await self._pool.execute(_RELEASE, key, owner)

    async def park(self, key: str, *, until: float) -> None:
        """Keep a pending message out of replays until `until`: it waits for a click."""
        await self._pool.execute(
            "UPDATE inbox SET lease_owner = 'confirmation', lease_until = $1, attempts = 0 "
            "WHERE event_key = $2 AND state = 'pending'",
            until,
            key,
        )

    async def wake(self, key: str) -> bool:
        """A parked message is ready again; False if it was not parked."""
        status = await self._pool.execute(
            "UPDATE inbox SET lease_owner = NULL, lease_until = 0 WHERE event_key = $1 "
            "AND state = 'pending' AND lease_owner = 'confirmation'",
            key,
        )
        return row_count(status) == 1

    async def settle(self, key: str, *, failed: bool) -> None:
        """The message is answered, or failed for good; later deliveries are dropped."""
        await self._pool.execute(
            "UPDATE inbox SET state = $1, finished_at = $2, lease_owner = NULL, "
            "progress = NULL WHERE event_key = $3",
            "failed" if failed else "done",
            self._clock(),
            key,
        )

    async def prune_inbox(self, older_than_seconds: float) -> int:
        """Delete messages received longer ago; returns how many."""
        status = await self._pool.execute(
            "DELETE FROM inbox WHERE received_at < $1", self._clock() - older_than_seconds
        )
        return row_count(status)

    async def inbox_counts(self) -> dict[str, int]:
        """Messages per state."""
        rows = await self._pool.fetch("SELECT state, COUNT(*) FROM inbox GROUP BY state")
        counts = {"pending": 0, "done": 0, "failed": 0}
        counts.update({str(state): int(n) for state, n in rows})
        return counts

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
        await self._pool.execute(
            REQUEST_CONFIRMATION,
            secrets.token_urlsafe(18),
            event_key,
            idempotency_key,
            action,
            to_json(arguments),
            requester,
            now,
            now + ttl,
        )
        found = await self.confirmation(event_key, idempotency_key)
        if found is None:  # pragma: no cover - written just above, never deleted so soon
            raise RuntimeError(f"the confirmation of {idempotency_key} was not kept")
        return found

    async def confirmation(self, event_key: str, idempotency_key: str) -> Confirmation | None:
        """The confirmation of this call, if one was asked for."""
        row = await self._pool.fetchrow(
            SELECT_CONFIRMATION + " WHERE event_key = $1 AND idempotency_key = $2",
            event_key,
            idempotency_key,
        )
        return None if row is None else confirmation(tuple(row))

    async def confirmation_by_token(self, token: str) -> Confirmation | None:
        """The confirmation a card's button names."""
        row = await self._pool.fetchrow(SELECT_CONFIRMATION + " WHERE token = $1", token)
        return None if row is None else confirmation(tuple(row))

    async def decide(self, token: str, *, confirmed: bool, by: str) -> bool:
        """Record the answer once, before expiry; True when this call recorded it."""
        now = self._clock()
        status = await self._pool.execute(
            "UPDATE confirmations SET state = $1, decided_by = $2, decided_at = $3 "
            "WHERE token = $4 AND state = 'pending' AND expires_at > $3",
            "confirmed" if confirmed else "cancelled",
            by,
            now,
            token,
        )
        return row_count(status) == 1

    # -- turn journal --------------------------------------------------------------------

    async def instance_key(self) -> bytes:
        """This installation's random key, created on first use by whichever replica asks
        first (the others read it)."""
        await self._pool.execute(
            "INSERT INTO instance (name, value) VALUES ('call_key', $1) ON CONFLICT DO NOTHING",
            secrets.token_bytes(32),
        )
        value = await self._pool.fetchval("SELECT value FROM instance WHERE name = 'call_key'")
        return bytes(value)

    async def start_call(
        self, event_key: str, idempotency_key: str, *, ordinal: int, action: str, arguments: str
    ) -> ActionResult | None:
        """Journal a call before it is sent (one statement); its recorded result if any."""
        recorded = await self._pool.fetchval(
            START_CALL, event_key, idempotency_key, ordinal, action, arguments, self._clock()
        )
        return None if recorded is None else ActionResult.model_validate_json(recorded)

    async def save_progress(self, event_key: str, messages: list[dict[str, Any]]) -> None:
        """Keep a cancelled turn's messages so far in its inbox entry."""
        await self._pool.execute(
            "UPDATE inbox SET progress = $1 WHERE event_key = $2 AND state = 'pending'",
            to_json(messages),
            event_key,
        )

    async def finish_turn(
        self,
        conversation: str,
        *,
        platform: str,
        messages: list[dict[str, Any]],
        event_key: str,
        reply: Reply,
    ) -> None:
        """Append the turn and keep its reply in the inbox entry: one statement."""
        payloads = [to_json(m) for m in messages]
        await self._pool.execute(
            FINISH_TURN,
            conversation,
            platform,
            self._clock(),
            payloads,
            reply.model_dump_json(),
            event_key,
        )

    async def prune_journal(self, older_than_seconds: float) -> int:
        """Delete journal rows (and confirmations) started longer ago; returns how many
        journal rows."""
        cutoff = self._clock() - older_than_seconds
        async with self._pool.acquire() as db, db.transaction():
            await db.execute("DELETE FROM confirmations WHERE created_at < $1", cutoff)
            status = await db.execute("DELETE FROM journal WHERE started_at < $1", cutoff)
        return row_count(status)


def row_count(status: str) -> int:
    """The row count of a command status such as `UPDATE 3`."""
    return int(status.rsplit(" ", 1)[-1])
