"""Store at scale: how fast `/actions stats` and the hot paths stay with a million call rows.

    python -m bench.store_scale [--calls 1000000] [--conversations 100000] [--actions 20]
                                [--repeats 20] [--json]

A fresh database gets its schema from `Store.open` (the real migrations), is closed, and is
then bulk-filled with plain `sqlite3`: conversations with one four-message tool-calling turn
each, call rows over the last `DAYS` days with a realistic outcome and latency mix, and the
aggregate tables rebuilt from those rows exactly as `record_call` would have left them. It is
reopened with `Store.open` and each operation is timed `--repeats` times (median and max).

`run(...)` is the entry point for `bench/run.py`; it returns one dict of plain numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from bot.runtime.config import DEFAULT_HISTORY_MESSAGES
from bot.store.queries import MIGRATIONS
from bot.store.sqlite import SQLiteStore
from bot.types import ActionResult, Outcome

AGGREGATE_TRIGGER = next(sql for version, _, sql in MIGRATIONS if version == 3)
"""The trigger that keeps the call aggregates, re-created after the bulk fill."""

DEFAULT_CALLS = 1_000_000
DEFAULT_CONVERSATIONS = 100_000
DEFAULT_ACTIONS = 20
REPEATS = 20
DAYS = 30
STATS_TARGET_MS = 50.0
"""The target: `/actions stats` (every action) answers in under this, median, at 1M rows."""
FILL_BUDGET_S = 60.0
SEED = 20_240_601
PROFILE_ROWS = 65_536
"""Pre-drawn (outcome, status, error, latency) rows; each call row picks one at random."""
ACTION_PICKS = 1_024
"""Pre-drawn action names, busiest first (Zipf-like), each call row picks one at random."""

# (outcome, share, status choices, error, median latency ms, lognormal sigma)
OUTCOME_MIX: tuple[tuple[Outcome, float, tuple[int, ...], str | None, float, float], ...] = (
    (Outcome.SUCCESS, 0.95, (200, 200, 200, 201), None, 120.0, 0.55),
    (Outcome.HTTP_ERROR, 0.025, (500, 502, 503, 404, 429), "HTTP {status}", 80.0, 0.7),
    (Outcome.TIMEOUT, 0.01, (), "no complete response within 10 s", 10_000.0, 0.01),
    (Outcome.ERROR, 0.015, (), "the call failed (ConnectError)", 40.0, 0.8),
)
REASONS = {
    200: "OK",
    201: "Created",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
ACTION_STEMS = (
    "check_inventory",
    "order_status",
    "create_ticket",
    "refund_status",
    "book_repair",
    "track_shipment",
    "update_address",
    "cancel_order",
    "warranty_lookup",
    "store_hours",
)
PARTS = ("screen", "battery", "charging port", "back cover", "camera module")
DEVICES = ("Pixel 7", "iPhone 13", "Galaxy S22", "Fairphone 4")

INSERT_CALLS = """
INSERT INTO calls (action, call_id, conversation, started_at, recorded_at, latency_ms,
                   outcome, status, error)
WITH RECURSIVE seq(i) AS (
    SELECT 0 WHERE :n > 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :n - 1
)
SELECT a.name, lower(hex(randomblob(16))), c.key,
       :start + seq.i * :step - p.ms / 1000.0, :start + seq.i * :step,
       p.ms, p.outcome, p.status, p.error
-- CROSS/LEFT JOIN pin the loop order, so each random() seek key is drawn once per row.
FROM seq
CROSS JOIN bench_profile AS p ON p.k = abs(random()) % :profile_rows
CROSS JOIN bench_actions AS a ON a.k = abs(random()) % :action_picks
LEFT JOIN conversations AS c ON c.rowid = 1 + abs(random()) % :conversations
"""

REBUILD_TOTALS = """
INSERT INTO call_totals (action, outcome, calls, latency_ms)
SELECT action, outcome, COUNT(*), SUM(latency_ms) FROM calls GROUP BY action, outcome
"""

# What the calls_aggregate trigger leaves: the latest call, and the latest failure's error
# (or outcome).
# SQLite takes a bare column from the row that holds the MAX().
REBUILD_ACTIVITY = """
INSERT INTO action_activity (action, last_call_at, last_error, last_error_at)
SELECT t.action, t.last_call_at, e.last_error, e.last_error_at
FROM (SELECT action, MAX(recorded_at) AS last_call_at FROM calls GROUP BY action) AS t
LEFT JOIN (
    SELECT action, COALESCE(error, outcome) AS last_error, MAX(recorded_at) AS last_error_at
    FROM calls WHERE outcome <> 'success' GROUP BY action
) AS e USING (action)
"""

Timing = dict[str, float]


# -- synthetic data ---------------------------------------------------------------------


def action_names(count: int) -> list[str]:
    """`count` distinct, realistic action names."""
    stems = len(ACTION_STEMS)
    return [
        ACTION_STEMS[i % stems] + (f"_{i // stems + 1}" if i >= stems else "") for i in range(count)
    ]


def action_picks(names: list[str]) -> list[tuple[int, str]]:
    """`ACTION_PICKS` slots filled Zipf-like, so a few actions are much busier than the rest."""
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(names))]
    total = sum(weights)
    picks: list[str] = []
    for name, weight in zip(names, weights, strict=True):
        picks += [name] * max(1, round(ACTION_PICKS * weight / total))
    return list(enumerate(picks[:ACTION_PICKS]))


def outcome_profile(rng: random.Random) -> list[tuple[int, str, int | None, str | None, float]]:
    """`PROFILE_ROWS` pre-drawn call endings following `OUTCOME_MIX`."""
    shares = [mix[1] for mix in OUTCOME_MIX]
    drawn = rng.choices(OUTCOME_MIX, weights=shares, k=PROFILE_ROWS)
    return [(k, *_ending(mix, rng)) for k, mix in enumerate(drawn)]


def _ending(
    mix: tuple[Outcome, float, tuple[int, ...], str | None, float, float], rng: random.Random
) -> tuple[str, int | None, str | None, float]:
    outcome, _, statuses, error, median_ms, sigma = mix
    status = rng.choice(statuses) if statuses else None
    if error is not None and status is not None:
        error = f"HTTP {status} {REASONS[status]}"
    latency = round(rng.lognormvariate(math.log(median_ms), sigma), 1)
    return outcome.value, status, error, latency


def conversation_key(j: int) -> str:
    """The engine's key, `<platform>:<conversation>`, for Slack threads and Discord channels."""
    if j % 4 == 3:
        return f"discord:{1_100_000_000_000_000_000 + j}"
    return f"slack:C{j % 997:07X}:{1_700_000_000 + j}.{j % 1_000_000:06d}"


def turn_messages(j: int, action: str) -> list[dict[str, Any]]:
    """One customer turn as the engine stores it: question, tool call, result, answer."""
    part, device = PARTS[j % len(PARTS)], DEVICES[j % len(DEVICES)]
    call_id = f"call_{uuid.UUID(int=j * 2_654_435_761 + 1).hex[:24]}"
    arguments = json.dumps({"part_name": part, "model": device})
    return [
        {"role": "user", "content": _question(j, part, device)},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": action, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": _tool_result(j, part, device)},
        {"role": "assistant", "content": _answer(j, part, device)},
    ]


def _question(j: int, part: str, device: str) -> str:
    return (
        f"Hi! My {device} {part} cracked after a fall last week. Do you have a replacement "
        f"{part} in stock, and could I get it before Friday? Order ref #{j:06d}."
    )


def _tool_result(j: int, part: str, device: str) -> str:
    data = {
        "part": part,
        "model": device,
        "sku": f"{device[:3].upper()}-{part[:3].upper()}-{j % 9973:04d}",
        "in_stock": j % 7 != 0,
        "quantity": j % 37,
        "warehouse": "Rotterdam DC-2",
        "price": {"amount": 49 + j % 150, "currency": "EUR"},
        "eta_days": 1 + j % 4,
        "alternatives": [f"{part} (refurbished)", f"{part} kit with tools"],
        "notes": (
            "Genuine part. Fitting by a certified technician keeps the warranty valid. "
            "Free shipping on orders over 50 EUR; express delivery available in NL, BE and DE. "
            "Stock levels are refreshed every 15 minutes."
        ),
    }
    return json.dumps({"ok": True, "status": 200, "data": data}, ensure_ascii=False)


def _answer(j: int, part: str, device: str) -> str:
    return (
        f"Good news: we have the {device} {part} in stock ({j % 37} left at our Rotterdam "
        f"warehouse) for {49 + j % 150} EUR. With standard shipping it arrives in "
        f"{1 + j % 4} working days, so before Friday. Shall I reserve one for order "
        f"#{j:06d}? A refurbished {part} and a kit with tools are also available."
    )


# -- bulk fill ----------------------------------------------------------------------------


def fill_database(path: Path, *, calls: int, conversations: int, actions: int) -> dict[str, Any]:
    """Bulk-fill a migrated, closed database; returns phase timings and a sample key."""
    names = action_names(actions)
    now = time.time()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        _bulk_pragmas(db)
        # The bot keeps the aggregates with a trigger per call; a bulk fill builds them once
        # from the rows instead, then puts the trigger back.
        db.execute("DROP TRIGGER calls_aggregate")
        phases = {
            "conversations_s": _timed(_fill_conversations, db, conversations, names, now),
            "calls_s": _timed(_fill_calls, db, calls, names, now),
            "aggregates_s": _timed(_fill_aggregates, db),
        }
        db.executescript(AGGREGATE_TRIGGER)
        db.execute("PRAGMA journal_mode = WAL")  # back to how the bot runs
        return {"phases": phases, **_check(db, conversations=conversations)}
    finally:
        db.close()


def _bulk_pragmas(db: sqlite3.Connection) -> None:
    # A throwaway file: no journal and no fsync while filling, a big page cache.
    for pragma in (
        "PRAGMA journal_mode = OFF",
        "PRAGMA synchronous = OFF",
        "PRAGMA cache_size = -262144",
        "PRAGMA temp_store = MEMORY",
    ):
        db.execute(pragma)


def _timed(step: Callable[..., None], db: sqlite3.Connection, *args: Any) -> float:
    start = time.perf_counter()
    db.execute("BEGIN")
    step(db, *args)
    db.execute("COMMIT")
    return round(time.perf_counter() - start, 2)


def _fill_conversations(db: sqlite3.Connection, count: int, names: list[str], now: float) -> None:
    start, step = now - DAYS * 86_400, DAYS * 86_400 / max(count, 1)
    db.executemany(
        "INSERT INTO conversations (key, platform, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (
            (key, key.split(":", 1)[0], start + j * step, start + j * step + 4.5)
            for j in range(count)
            for key in (conversation_key(j),)
        ),
    )
    db.executemany(
        "INSERT INTO messages (conversation, created_at, payload) VALUES (?, ?, ?)",
        _message_rows(count, names, start=start, step=step),
    )


def _message_rows(
    count: int, names: list[str], *, start: float, step: float
) -> Iterator[tuple[str, float, str]]:
    for j in range(count):
        key, at = conversation_key(j), start + j * step
        for k, message in enumerate(turn_messages(j, names[j % len(names)])):
            yield key, at + 1.5 * k, json.dumps(message, ensure_ascii=False)


def _fill_calls(db: sqlite3.Connection, count: int, names: list[str], now: float) -> None:
    rng = random.Random(SEED)
    db.execute(
        "CREATE TEMP TABLE bench_profile (k INTEGER PRIMARY KEY, outcome, status, error, ms)"
    )
    db.execute("CREATE TEMP TABLE bench_actions (k INTEGER PRIMARY KEY, name)")
    db.executemany("INSERT INTO bench_profile VALUES (?, ?, ?, ?, ?)", outcome_profile(rng))
    picks = action_picks(names)
    db.executemany("INSERT INTO bench_actions VALUES (?, ?)", picks)
    start, step = now - DAYS * 86_400, DAYS * 86_400 / max(count, 1)
    conversations = db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
    params = {"n": count, "start": start, "step": step, "profile_rows": PROFILE_ROWS}
    params |= {"action_picks": len(picks), "conversations": conversations}
    db.execute(INSERT_CALLS, params)


def _fill_aggregates(db: sqlite3.Connection) -> None:
    db.execute(REBUILD_TOTALS)
    db.execute(REBUILD_ACTIVITY)


def _check(db: sqlite3.Connection, *, conversations: int) -> dict[str, Any]:
    """Row counts, whether the aggregates match the rows, the busiest action, a sample key."""
    rows = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    totals = db.execute("SELECT COALESCE(SUM(calls), 0) FROM call_totals").fetchone()[0]
    busiest = db.execute(
        "SELECT action FROM call_totals GROUP BY action ORDER BY SUM(calls) DESC LIMIT 1"
    ).fetchone()
    success = db.execute("SELECT COUNT(*) FROM calls WHERE outcome = 'success'").fetchone()[0]
    return {
        "calls": rows,
        "messages": db.execute("SELECT COUNT(*) FROM messages").fetchone()[0],
        "success_share": round(success / rows, 4) if rows else None,
        "aggregates_consistent": rows == totals,
        "busiest_action": busiest[0] if busiest else ACTION_STEMS[0],
        "sample_conversation": conversation_key(conversations // 2),
    }


# -- measurements -------------------------------------------------------------------------


async def time_op(op: Callable[[], Awaitable[object]], repeats: int) -> Timing:
    """Run `op` `repeats` times; median, max and min wall time in milliseconds."""
    samples: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        await op()
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "median_ms": round(statistics.median(samples), 3),
        "max_ms": round(max(samples), 3),
        "min_ms": round(min(samples), 3),
    }


async def measure(path: Path, *, action: str, conversation: str, repeats: int) -> dict[str, Timing]:
    """Time the read paths on the filled database, then one write per repeat."""
    async with await SQLiteStore.open(path) as store:
        return {
            "stats_all": await time_op(lambda: store.stats(None), repeats),
            "stats_one": await time_op(lambda: store.stats(action), repeats),
            "call_counts": await time_op(store.call_counts, repeats),
            "load_messages": await time_op(
                lambda: store.load_messages(conversation, limit=DEFAULT_HISTORY_MESSAGES),
                repeats,
            ),
            "record_call": await time_op(lambda: store.record_call(_result(action)), repeats),
        }


def _result(action: str) -> ActionResult:
    return ActionResult(
        action=action,
        call_id=uuid.uuid4().hex,
        outcome=Outcome.SUCCESS,
        latency_ms=118.4,
        status=200,
        data={"in_stock": True},
    )


def database_mib(path: Path) -> float:
    """The file's size after folding the WAL back in (what the operator's disk holds)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    wal = path.with_name(path.name + "-wal")
    size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return round(size / 2**20, 1)


# -- entry points -------------------------------------------------------------------------


async def run(
    *,
    calls: int = DEFAULT_CALLS,
    conversations: int = DEFAULT_CONVERSATIONS,
    actions: int = DEFAULT_ACTIONS,
    repeats: int = REPEATS,
) -> dict[str, Any]:
    """Build the database in a temp dir, time the store on it, remove it; all numbers."""
    with tempfile.TemporaryDirectory(prefix="actionbot-store-scale-") as tmp:
        path = Path(tmp) / "actionbot.db"
        await (await SQLiteStore.open(path)).close()
        start = time.perf_counter()
        filled = await asyncio.to_thread(
            fill_database, path, calls=calls, conversations=conversations, actions=actions
        )
        fill_s = round(time.perf_counter() - start, 2)
        timings = await measure(
            path,
            action=filled["busiest_action"],
            conversation=filled["sample_conversation"],
            repeats=repeats,
        )
        size = await asyncio.to_thread(database_mib, path)
    return _summary(
        filled, fill_s=fill_s, timings=timings, size=size, args=(conversations, actions, repeats)
    )


def _summary(
    filled: dict[str, Any],
    *,
    fill_s: float,
    timings: dict[str, Timing],
    size: float,
    args: tuple[int, int, int],
) -> dict[str, Any]:
    conversations, actions, repeats = args
    stats_ms = timings["stats_all"]["median_ms"]
    return {
        "benchmark": "store_scale",
        "calls": filled["calls"],
        "conversations": conversations,
        "messages": filled["messages"],
        "actions": actions,
        "repeats": repeats,
        "success_share": filled["success_share"],
        "aggregates_consistent": filled["aggregates_consistent"],
        "fill_s": fill_s,
        "fill_phases_s": filled["phases"],
        "timings": timings,
        "db_mib": size,
        "stats_target_ms": STATS_TARGET_MS,
        "stats_target_met": stats_ms < STATS_TARGET_MS,
        "fill_target_met": fill_s < FILL_BUDGET_S,
    }


def render_table(result: dict[str, Any]) -> str:
    """The result as a plain text table: metric | value | target | met?"""
    rows = [("metric", "value", "target", "met?"), *_table_rows(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


Row = tuple[str, str, str, str]
YES = {True: "yes", False: "NO"}
TIMED = (
    ("stats_one", "stats(busiest action)"),
    ("call_counts", "call_counts()"),
    ("load_messages", "load_messages(one conversation)"),
    ("record_call", "record_call (one write)"),
)


def _table_rows(result: dict[str, Any]) -> list[Row]:
    return [*_target_rows(result), *_timing_rows(result)]


def _target_rows(r: dict[str, Any]) -> list[Row]:
    data = f"{r['calls']:,} calls, {r['conversations']:,} conv., {r['messages']:,} msgs"
    phases = " / ".join(f"{v:.1f}" for v in r["fill_phases_s"].values())
    stats = r["timings"]["stats_all"]
    return [
        (f"fill ({data})", f"{r['fill_s']:.1f} s", f"< {FILL_BUDGET_S:.0f} s",
         YES[r["fill_target_met"]]),
        ("  conversations+messages / calls / aggregates", f"{phases} s", "", ""),
        ("aggregates match call rows", YES[r["aggregates_consistent"]], "exact",
         YES[r["aggregates_consistent"]]),
        ("stats(None) median", _ms(stats["median_ms"]), f"< {STATS_TARGET_MS:.0f} ms",
         YES[r["stats_target_met"]]),
        ("stats(None) max", _ms(stats["max_ms"]), "", ""),
    ]  # fmt: skip


def _timing_rows(r: dict[str, Any]) -> list[Row]:
    t = r["timings"]
    rows: list[Row] = [
        (f"{label} median / max", f"{_ms(t[k]['median_ms'])} / {_ms(t[k]['max_ms'])}", "", "")
        for k, label in TIMED
    ]
    rows.append(("database size (after checkpoint)", f"{r['db_mib']:.1f} MiB", "", ""))
    return rows


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.replace("_", ""))
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def main(argv: list[str] | None = None) -> None:
    """CLI: fill, measure, print a table (or one JSON object with `--json`)."""
    parser = argparse.ArgumentParser(prog="python -m bench.store_scale", description=__doc__)
    parser.add_argument("--calls", type=_count(0), default=DEFAULT_CALLS)
    parser.add_argument("--conversations", type=_count(0), default=DEFAULT_CONVERSATIONS)
    parser.add_argument("--actions", type=_count(1), default=DEFAULT_ACTIONS)
    parser.add_argument("--repeats", type=_count(1), default=REPEATS)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run(
            calls=args.calls,
            conversations=args.conversations,
            actions=args.actions,
            repeats=args.repeats,
        )
    )
    print(json.dumps(result, indent=2) if args.json else render_table(result))


if __name__ == "__main__":
    main()
