"""Audit export at scale: `actionbot actions audit` over a million recorded calls.

    python -m bench.audit [--calls 1000000] [--json]

A fresh database gets its schema from `SQLiteStore.open` (the real migrations) and is filled
with plain `sqlite3` in one statement: call rows over the last `DAYS` days, each with an
asker and masked arguments as `record_call` keeps them (the aggregate trigger is dropped for
the fill: the export never reads the aggregates). Each format is then exported by
`bot.audit.export` to a sink that only counts, in a fresh process of its own: the time is the
export's wall time, the memory that process's peak RSS (`ru_maxrss`) before and after it.
(tracemalloc would slow the export several times over a million rows; `tests/test_audit.py`
measures the Python heap's peak over 100,000 rows with it.)

`audit_table()` is the entry point for `bench/run.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.audit import AuditFormat, export
from bot.store.sqlite import SQLiteStore

DEFAULT_CALLS = 1_000_000
DAYS = 30
FORMATS: tuple[AuditFormat, ...] = ("jsonl", "csv")
GROWTH_TARGET_MIB = 16.0
"""The target: exporting every row grows the process by less than this (constant memory)."""

FILL = """
INSERT INTO calls (action, call_id, conversation, started_at, recorded_at, latency_ms,
                   outcome, status, error, attempts, platform, team, user_id, channel,
                   arguments)
WITH RECURSIVE seq(i) AS (
    SELECT 0 WHERE :n > 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :n - 1
)
SELECT 'action_' || (i % 20), lower(hex(randomblob(16))),
       'slack:C' || (i % 997) || ':' || i || '.000100',
       :start + i * :step - 0.12, :start + i * :step, 120.0 + i % 97,
       CASE WHEN i % 50 = 0 THEN 'http_error' ELSE 'success' END,
       CASE WHEN i % 50 = 0 THEN 503 ELSE 200 END,
       CASE WHEN i % 50 = 0 THEN 'HTTP 503' END,
       CASE WHEN i % 50 = 0 THEN 3 ELSE 1 END,
       'slack', 'T0123ABCD', 'U' || (100000 + i % 5000), 'C' || (100000 + i % 997),
       '{"part_name":"screen","device_model":"iPhone 15 Pro","order":"A' || i ||
       '","api_key":"***"}'
FROM seq
"""


class Discard(io.StringIO):
    """A text sink that keeps only how many characters it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


def fill_database(path: Path, calls: int) -> float:
    """Bulk-fill a migrated, closed database with `calls` rows; returns seconds taken."""
    started = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("DROP TRIGGER calls_aggregate")
        now = time.time()
        params = {"n": calls, "start": now - DAYS * 86_400, "step": DAYS * 86_400 / max(calls, 1)}
        db.execute("BEGIN")
        db.execute(FILL, params)
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode = WAL")  # back to how the bot runs
    finally:
        db.close()
    return time.perf_counter() - started


def max_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def export_once(path: Path, fmt: AuditFormat) -> dict[str, Any]:
    """One export of every row (run in a fresh process: `--child`)."""
    async with await SQLiteStore.open(path) as store:
        await store.audit_page(limit=1)  # the connection and the schema are warm
        before = max_rss_mib()
        sink = Discard()
        started = time.perf_counter()
        rows = await export(store, sink, fmt=fmt, since=None, action=None)
        seconds = time.perf_counter() - started
    return {
        "format": fmt,
        "rows": rows,
        "seconds": seconds,
        "mib_written": sink.chars / 2**20,
        "rss_before_mib": before,
        "rss_peak_mib": max_rss_mib(),
    }


def run_child(path: Path, fmt: AuditFormat) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.audit", "--child", fmt, str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"the {fmt} export failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def run(calls: int = DEFAULT_CALLS) -> dict[str, Any]:
    """Build the database in a temp dir, export it in each format, remove it."""
    with tempfile.TemporaryDirectory(prefix="actionbot-audit-") as tmp:
        path = Path(tmp) / "actionbot.db"
        await (await SQLiteStore.open(path)).close()
        fill_s = await asyncio.to_thread(fill_database, path, calls)
        db_mib = path.stat().st_size / 2**20
        exports = [await asyncio.to_thread(run_child, path, fmt) for fmt in FORMATS]
    return {"calls": calls, "fill_s": fill_s, "db_mib": db_mib, "exports": exports}


def render(result: dict[str, Any]) -> str:
    """The result as the Markdown table `bench/run.py` prints."""
    rows = []
    for done in result["exports"]:
        growth = done["rss_peak_mib"] - done["rss_before_mib"]
        met = "met" if growth <= GROWTH_TARGET_MIB else "NOT MET"
        rows.append(
            [
                done["format"],
                f"{done['rows']:,}",
                f"{done['seconds']:.1f}",
                f"{done['rows'] / done['seconds']:,.0f}",
                f"{done['mib_written']:.0f}",
                f"{done['rss_before_mib']:.1f}",
                f"{done['rss_peak_mib']:.1f}",
                f"{growth:+.1f} ({met}: ≤ {GROWTH_TARGET_MIB:.0f})",
            ]
        )
    header = ["format", "rows", "export s", "rows/s", "MiB written", "RSS before MiB"]
    header += ["RSS peak MiB", "growth MiB"]
    title = (
        f"Audit export: `actionbot actions audit` over {result['calls']:,} calls "
        f"(database {result['db_mib']:.0f} MiB, filled in {result['fill_s']:.0f} s)"
    )
    return _table(title, header, rows)


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"### {title}", "", line(header), rule, *map(line, rows), ""])


def audit_table() -> str:
    """`make bench`'s section: the benchmark in a process of its own, as a table."""
    command = [sys.executable, "-m", "bench.audit", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return render(json.loads(done.stdout))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__)
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", nargs=2, metavar=("FORMAT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        fmt, path = args.child
        print(json.dumps(asyncio.run(export_once(Path(path), fmt))))
        return
    result = asyncio.run(run(args.calls))
    print(json.dumps(result, indent=2) if args.json else render(result))


if __name__ == "__main__":
    main()
