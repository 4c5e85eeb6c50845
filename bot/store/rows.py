"""What both store backends share: turning rows into the values of `bot.store`, and the
limits on what is kept. A row is any sequence (an `sqlite3` tuple or an asyncpg record)
with the columns in the order the queries select them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.store import ActionStats, AuditRow, InboxEntry
from bot.types import Confirmation, IncomingMessage, Outcome, Reply, parse_caller

P95_WINDOW = 1000
"""p95 latency is computed over this many most recent calls of an action."""
MAX_ERROR_CHARS = 300
"""Stored error messages are cut to this many characters."""

INBOX_COLUMNS = (
    "event_key, seq, platform, conversation, user_id, user_name, text, route, attempts, "
    "progress, reply, team_id, channel_id, is_admin"
)
"""The inbox columns `entry` reads, in its order."""
SELECT_INBOX = (
    "SELECT event_key, seq, platform, conversation, user_id, user_name, text, route, attempts, "
    "progress, reply, team_id, channel_id, is_admin FROM inbox"
)

SELECT_CONFIRMATION = (
    "SELECT token, event_key, idempotency_key, action, arguments, requester, state, expires_at "
    "FROM confirmations"
)
"""The confirmation columns `confirmation` reads, in its order."""


AUDIT_COLUMNS = (
    "id, recorded_at, action, platform, team, user_id, channel, conversation, arguments, "
    "call_id, outcome, status, latency_ms, attempts, error"
)
"""The call columns `audit_row` reads, in its order."""


def caller_fields(caller: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(platform, team, user, channel) of an `X-ActionBot-Caller` header, as the call row
    keeps them: None for a field the header does not give."""
    fields = parse_caller(caller)
    platform, team, user, channel = (
        fields[name] or None for name in ("platform", "team", "user", "channel")
    )
    return platform, team, user, channel


def audit_row(row: Sequence[Any]) -> AuditRow:
    """A call row (`AUDIT_COLUMNS`) as the audit trail shows it."""
    call, at, action, platform, team, user_id, channel, conversation, arguments = row[:9]
    key, outcome, status, latency_ms, attempts, error = row[9:15]
    return AuditRow(
        id=int(call),
        recorded_at=utc(at),
        action=action,
        platform=platform,
        team=team,
        user_id=user_id,
        channel=channel,
        conversation=conversation,
        arguments=arguments,
        idempotency_key=key,
        outcome=outcome,
        status=None if status is None else int(status),
        latency_ms=float(latency_ms),
        attempts=int(attempts),
        error=error,
    )


def event_key(message: IncomingMessage) -> str:
    """`platform:event id`, the inbox's key of a message."""
    if not message.event_id:
        raise ValueError("a message needs an event id to enter the inbox")
    return f"{message.platform}:{message.event_id}"


def entry(row: Sequence[Any]) -> InboxEntry:
    """An inbox row (`INBOX_COLUMNS`) as an entry."""
    key, seq, platform, conversation, user_id, user_name, text, route = row[:8]
    attempts, progress, reply, team_id, channel_id, is_admin = row[8:14]
    message = IncomingMessage(
        platform=platform,
        conversation=conversation,
        user_id=user_id,
        user_name=user_name,
        text=text,
        event_id=key.split(":", 1)[1],
        team_id=team_id,
        channel_id=channel_id,
        is_admin=bool(is_admin),
    )
    return InboxEntry(
        key=key,
        seq=int(seq),
        message=message,
        route=json.loads(route),
        attempts=int(attempts),
        progress=None if progress is None else json.loads(progress),
        reply=None if reply is None else Reply.model_validate_json(reply),
    )


def confirmation(row: Sequence[Any]) -> Confirmation:
    """A confirmations row (`CONFIRMATION_COLUMNS`) as a confirmation."""
    token, key, idempotency_key, action, arguments, requester, state, expires_at = row[:8]
    return Confirmation(
        token=token,
        event_key=key,
        idempotency_key=idempotency_key,
        action=action,
        arguments=json.loads(arguments),
        requester=requester,
        state=state,
        expires_at=float(expires_at),
    )


def build_stats(
    action: str,
    *,
    totals: Sequence[Sequence[Any]],
    activity: Sequence[Sequence[Any]],
    p95: float | None,
) -> ActionStats:
    """One action's stats from its aggregate rows: totals (outcome, calls, latency sum,
    attempts) and activity (last call, last error, last error time)."""
    counts = {str(outcome): int(calls) for outcome, calls, _, _ in totals}
    latency = sum(float(total) for _, _, total, _ in totals)
    attempts = sum(int(tries) for _, _, _, tries in totals)
    calls = sum(counts.values())
    last_call_at, last_error, last_error_at = activity[0] if activity else (None, None, None)
    return ActionStats(
        action=action,
        calls=calls,
        attempts=attempts,
        successes=counts.pop(Outcome.SUCCESS.value, 0),
        failures={outcome: n for outcome, n in sorted(counts.items()) if n > 0},
        avg_latency_ms=latency / calls if calls else None,
        p95_latency_ms=p95,
        last_call_at=utc_or_none(last_call_at),
        last_error=last_error,
        last_error_at=utc_or_none(last_error_at),
    )


def short_error(error: str | None) -> str | None:
    """An error message cut to `MAX_ERROR_CHARS`."""
    if error is None or len(error) <= MAX_ERROR_CHARS:
        return error
    return error[: MAX_ERROR_CHARS - 1] + "…"


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def utc_or_none(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else utc(timestamp)


def to_json(value: Any) -> str:
    """Compact JSON, as the store keeps routes, arguments and messages."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
