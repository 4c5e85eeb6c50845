"""The audit trail exported (`bot.audit`, `actionbot actions audit`) from a real SQLite file:
`--since` forms and their error, JSON lines and CSV as recorded (masked arguments included),
and an export of 100,000 rows in bounded memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_cli import base_env, invoke_cli

from bot.audit import COLUMNS, SINCE_FORMS, export, parse_since
from bot.errors import AdminUsageError
from bot.store.sqlite import SQLiteStore
from bot.types import ActionResult, Outcome, caller_header

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
MASKED = '{"card_number":"***","part_name":"screen","notes":"é ✓, \\"quoted\\""}'
BULK_ROWS = 100_000
PEAK_LIMIT = 4 * 2**20


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Discard(io.StringIO):
    """A text sink that keeps only counts: characters, lines and masked tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0
        self.lines = 0
        self.masked = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        self.lines += text.count("\n")
        self.masked += text.count('"token":"***"')
        return len(text)


def call(action: str, call_id: str, outcome: Outcome = Outcome.SUCCESS) -> ActionResult:
    ok = outcome is Outcome.SUCCESS
    return ActionResult(
        action=action,
        call_id=call_id,
        outcome=outcome,
        latency_ms=12.5,
        status=200 if ok else 503,
        attempts=1 if ok else 3,
        error=None if ok else "HTTP 503",
    )


@pytest.fixture
async def recorded(tmp_path: Path) -> Path:
    """A database with three calls: a masked refund by a Slack user on the first of January,
    an order status of a Discord user a day later, and one recorded before the audit trail
    (no asker, no arguments) two days later."""
    clock = Clock()
    path = tmp_path / "actionbot.db"
    async with await SQLiteStore.open(path, clock=clock) as store:
        await store.record_call(
            call("refund", "idem-1"),
            conversation="slack:C7:1.0",
            caller=caller_header("slack", "T1", "U42", "C7"),
            arguments=MASKED,
        )
        clock.now += 86400
        await store.record_call(
            call("order_status", "idem-2", Outcome.HTTP_ERROR),
            conversation="discord:9",
            caller=caller_header("discord", "G1", "1234", "9"),
            arguments='{"order":"A1"}',
        )
        clock.now += 86400
        await store.record_call(call("refund", "idem-3"))
    return path


# --- --since ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T09:30", datetime(2026, 1, 1, 9, 30, tzinfo=UTC)),
        ("2026-01-01T09:30:15", datetime(2026, 1, 1, 9, 30, 15, tzinfo=UTC)),
        ("2026-01-01T09:30:00Z", datetime(2026, 1, 1, 9, 30, tzinfo=UTC)),
        ("2026-01-01T09:30:00+02:00", datetime(2026, 1, 1, 7, 30, tzinfo=UTC)),
        ("2026-01-01T09:30-05:00", datetime(2026, 1, 1, 14, 30, tzinfo=UTC)),
        ("30m", datetime(2026, 3, 15, 11, 30, tzinfo=UTC)),
        ("24h", datetime(2026, 3, 14, 12, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        (" 7d ", datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
    ],
)
def test_since_accepts_dates_times_and_durations(text: str, moment: datetime) -> None:
    """A date is midnight UTC, a time without an offset is UTC, a duration is back from now."""
    parsed = parse_since(text, now=NOW)
    assert parsed == moment
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    "text", ["yesterday", "", "2026-13-01", "2026-02-30", "01/02/2026", "7w", "-7d", "2026-1-1"]
)
def test_since_names_the_accepted_forms_otherwise(text: str) -> None:
    """Anything else (an impossible date included) is an error naming what is accepted."""
    with pytest.raises(AdminUsageError) as caught:
        parse_since(text, now=NOW)
    assert str(caught.value) == f"--since {json.dumps(text)} is not a date: use {SINCE_FORMS}"


# --- export -------------------------------------------------------------------------------


async def test_jsonl_rows_carry_the_masked_arguments_as_recorded(recorded: Path) -> None:
    """Each line is one call, oldest first, with the asker split out, the arguments as the
    JSON that was recorded (masked values and all) and the time in UTC with a Z."""
    out = io.StringIO()
    async with await SQLiteStore.open(recorded) as store:
        written = await export(store, out, fmt="jsonl", since=None, action=None, page=2)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written == len(rows) == 3
    first = rows[0]
    assert list(first) == list(COLUMNS)
    assert first == {
        "id": first["id"],
        "recorded_at": "2026-01-01T00:00:00.000Z",
        "action": "refund",
        "platform": "slack",
        "team": "T1",
        "user_id": "U42",
        "channel": "C7",
        "conversation": "slack:C7:1.0",
        "arguments": json.loads(MASKED),
        "idempotency_key": "idem-1",
        "outcome": "success",
        "status": 200,
        "latency_ms": 12.5,
        "attempts": 1,
        "error": None,
    }
    assert rows[1]["arguments"] == {"order": "A1"}
    assert (rows[1]["outcome"], rows[1]["error"], rows[1]["attempts"]) == (
        "http_error",
        "HTTP 503",
        3,
    )
    assert (rows[2]["user_id"], rows[2]["arguments"]) == (None, None)


async def test_since_and_action_narrow_the_export(recorded: Path) -> None:
    """`since` leaves out older calls, `action` other actions' calls."""
    async with await SQLiteStore.open(recorded) as store:
        out = io.StringIO()
        since = datetime(2026, 1, 2, tzinfo=UTC)
        assert await export(store, out, fmt="jsonl", since=since, action=None) == 2
        assert [json.loads(line)["idempotency_key"] for line in out.getvalue().splitlines()] == [
            "idem-2",
            "idem-3",
        ]
        out = io.StringIO()
        assert await export(store, out, fmt="jsonl", since=since, action="refund") == 1
        assert json.loads(out.getvalue())["idempotency_key"] == "idem-3"
        out = io.StringIO()
        assert await export(store, out, fmt="csv", since=None, action="deleted_long_ago") == 0
        assert out.getvalue() == ",".join(COLUMNS) + "\n"


async def test_csv_has_a_header_and_the_arguments_as_compact_json(recorded: Path) -> None:
    """CSV gives the same columns under a header row; the arguments cell is compact JSON that
    reads back to what was recorded, empty cells stand for none."""
    out = io.StringIO()
    async with await SQLiteStore.open(recorded) as store:
        assert await export(store, out, fmt="csv", since=None, action=None) == 3
    header, *rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(header) == COLUMNS
    first = dict(zip(header, rows[0], strict=True))
    assert json.loads(first["arguments"]) == json.loads(MASKED)
    assert first["arguments"] == json.dumps(
        json.loads(MASKED), ensure_ascii=False, separators=(",", ":")
    )
    assert (first["user_id"], first["recorded_at"], first["status"]) == (
        "U42",
        "2026-01-01T00:00:00.000Z",
        "200",
    )
    last = dict(zip(header, rows[2], strict=True))
    assert (last["platform"], last["arguments"], last["error"]) == ("", "", "")


async def test_an_export_of_100k_rows_stays_within_a_few_mib(tmp_path: Path) -> None:
    """100,000 call rows (filled in bulk) are exported page by page: every row is written,
    with its masked arguments, and the peak of Python memory during the export stays under
    4 MiB. (The CSV export pages the same way; `bench/audit.py` measures both at 1M rows.)"""
    path = tmp_path / "actionbot.db"
    async with await SQLiteStore.open(path) as store:
        fill(store, BULK_ROWS)
        sink = Discard()
        tracemalloc.start()
        try:
            written = await export(store, sink, fmt="jsonl", since=None, action=None)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert written == sink.lines == BULK_ROWS
        assert sink.masked == BULK_ROWS
        assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"


def fill(store: SQLiteStore, rows: int) -> None:
    """Call rows written in one transaction, as `record_call` writes them (trigger and all),
    with a caller and masked arguments each."""
    sql = (
        "INSERT INTO calls (action, call_id, conversation, started_at, recorded_at, latency_ms, "
        "outcome, status, error, attempts, platform, team, user_id, channel, arguments) "
        "VALUES (?, ?, ?, ?, ?, ?, 'success', 200, NULL, 1, 'slack', 'T1', ?, 'C1', ?)"
    )
    store._db.execute("BEGIN")
    store._db.executemany(
        sql,
        (
            (
                f"action_{n % 7}",
                f"idem-{n}",
                f"slack:C1:{n}.0",
                T0 + n - 0.1,
                T0 + n,
                100.0,
                f"U{n % 500}",
                f'{{"part_name":"screen {n}","token":"***"}}',
            )
            for n in range(rows)
        ),
    )
    store._db.execute("COMMIT")


# --- actionbot actions audit --------------------------------------------------------------


async def test_the_command_prints_jsonl_and_csv(recorded: Path) -> None:
    """`actions audit` prints JSON lines by default and CSV with `--format csv`, narrowed by
    `--since` and `--action`; an action not in any actions file is fine (deleted ones keep
    their calls)."""
    env = base_env(ACTIONBOT_DB=str(recorded))
    jsonl = await invoke_cli("actions", "audit", cwd=recorded.parent, env=env)
    assert jsonl.code == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [row["idempotency_key"] for row in rows] == ["idem-1", "idem-2", "idem-3"]
    assert rows[0]["arguments"] == json.loads(MASKED)

    narrowed = await invoke_cli(
        "actions", "audit", "--since", "2026-01-02", "--action", "refund", "--format", "csv",
        cwd=recorded.parent,
        env=env,
    )  # fmt: skip
    assert narrowed.code == 0, narrowed.stderr
    header, *found = list(csv.reader(io.StringIO(narrowed.stdout)))
    assert tuple(header) == COLUMNS
    assert [row[COLUMNS.index("idempotency_key")] for row in found] == ["idem-3"]


async def test_the_command_refuses_a_bad_since_or_format(recorded: Path) -> None:
    """An unreadable `--since` exits 2 naming the accepted forms, an unknown `--format` exits
    2 naming jsonl and csv; neither prints a traceback or a row."""
    env = base_env(ACTIONBOT_DB=str(recorded))
    since = await invoke_cli(
        "actions", "audit", "--since", "yesterday", cwd=recorded.parent, env=env
    )
    assert since.code == 2
    assert f'--since "yesterday" is not a date: use {SINCE_FORMS}' in since.stderr
    assert since.stdout == ""
    wrong = await invoke_cli("actions", "audit", "--format", "xml", cwd=recorded.parent, env=env)
    assert wrong.code == 2
    assert "'xml' is not one of" in wrong.stderr
    assert "jsonl" in wrong.stderr
    assert "csv" in wrong.stderr
    for finished in (since, wrong):
        assert "Traceback" not in finished.stderr
