"""The audit trail exported (`actionbot actions audit`): every recorded call with who asked,
the arguments sent (secrets masked when recorded), the idempotency key and how it went, as
JSON lines or CSV.

The export streams: it reads the call log one keyset page at a time (`AuditLog.audit_page`)
and writes each page before reading the next, so memory stays the same over a million rows.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TextIO

from bot.errors import AdminUsageError
from bot.store import AuditLog, AuditRow

AuditFormat = Literal["jsonl", "csv"]

COLUMNS = (
    "id",
    "recorded_at",
    "action",
    "platform",
    "team",
    "user_id",
    "channel",
    "conversation",
    "arguments",
    "idempotency_key",
    "outcome",
    "status",
    "latency_ms",
    "attempts",
    "error",
)
"""The fields of each exported row, in order (the CSV header)."""

SINCE_FORMS = "2026-01-01, 2026-01-01T09:30, 2026-01-01T09:30:00Z, or 30m / 24h / 7d"
"""What `--since` accepts, as the error names it."""
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")
_RELATIVE = re.compile(r"(\d{1,6})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, *, now: datetime) -> datetime:
    """The moment `--since` names, in UTC: a date (midnight UTC), a date and time (UTC unless
    it gives an offset), or a time ago from `now` (`30m`, `24h`, `7d`). `AdminUsageError`
    naming the accepted forms otherwise."""
    value = text.strip()
    if match := _RELATIVE.fullmatch(value):
        amount, unit = match.groups()
        return now.astimezone(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
    if _DATE.fullmatch(value) or _DATETIME.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass  # e.g. month 13: said below like any other misspelling
        else:
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    raise AdminUsageError(f"--since {json.dumps(text)} is not a date: use {SINCE_FORMS}")


async def export(
    store: AuditLog,
    out: TextIO,
    *,
    fmt: AuditFormat,
    since: datetime | None,
    action: str | None,
    page: int = 1000,
) -> int:
    """Write every call row recorded at or after `since` (of `action` alone, if given) to
    `out` in `fmt`, oldest first, one page of rows in memory at a time; returns how many."""
    write = _csv_writer(out) if fmt == "csv" else _jsonl_writer(out)
    after, written = 0, 0
    start = None if since is None else since.timestamp()
    while rows := await store.audit_page(after_id=after, since=start, action=action, limit=page):
        for row in rows:
            write(row)
        after, written = rows[-1].id, written + len(rows)
        del rows  # the next page is read without this one still held
    return written


def exported(row: AuditRow) -> dict[str, Any]:
    """One row as the JSON lines export writes it: the arguments as JSON, times in UTC."""
    at = row.recorded_at.astimezone(UTC).isoformat(timespec="milliseconds")
    return {
        "id": row.id,
        "recorded_at": at.replace("+00:00", "Z"),
        "action": row.action,
        "platform": row.platform,
        "team": row.team,
        "user_id": row.user_id,
        "channel": row.channel,
        "conversation": row.conversation,
        "arguments": _arguments(row.arguments),
        "idempotency_key": row.idempotency_key,
        "outcome": row.outcome,
        "status": row.status,
        "latency_ms": row.latency_ms,
        "attempts": row.attempts,
        "error": row.error,
    }


def _arguments(text: str | None) -> Any:
    """The recorded JSON text parsed; a text that is not JSON (never written by the bot)
    is kept as the string it is."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _jsonl_writer(out: TextIO) -> Callable[[AuditRow], None]:
    def write(row: AuditRow) -> None:
        out.write(_compact(exported(row)) + "\n")

    return write


def _csv_writer(out: TextIO) -> Callable[[AuditRow], None]:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)

    def write(row: AuditRow) -> None:
        fields = exported(row)
        if fields["arguments"] is not None:  # compact JSON text in its one cell
            fields["arguments"] = _compact(fields["arguments"])
        writer.writerow(["" if value is None else value for value in fields.values()])

    return write
