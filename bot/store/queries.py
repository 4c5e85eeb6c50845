"""The SQL the SQLite store runs, and its migrations.

A schema change is a new file `migrations/NNNN_what_it_does.sql` (next version number, first
line `-- what it does`); never edit one that has shipped. Each is applied once, in order, in
its own transaction, and recorded in `schema_migrations` (see `sqlite.py`).
"""

from __future__ import annotations

from importlib import resources

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's write to finish before failing."""

Migration = tuple[int, str, str]


def _load_migrations() -> list[Migration]:
    """`migrations/NNNN_name.sql`, in version order; each file's first line is `-- <name>`."""
    folder = resources.files(__package__) / "migrations"
    found: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        sql = entry.read_text(encoding="utf-8")
        name = sql.splitlines()[0].removeprefix("--").strip()
        found.append((int(entry.name.split("_", 1)[0]), name, sql))
    return found


MIGRATIONS: list[Migration] = _load_migrations()

PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
)

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  REAL NOT NULL
)
"""

INSERT_CALL = """
INSERT INTO calls (action, call_id, conversation, started_at, recorded_at, latency_ms,
                   outcome, status, error)
VALUES (:action, :call_id, :conversation, :started_at, :now, :latency_ms,
        :outcome, :status, :error)
"""

SET_ACTIVE = """
INSERT INTO action_state (action, active, changed_by, changed_at) VALUES (?, ?, ?, ?)
ON CONFLICT (action) DO UPDATE SET
    active = excluded.active, changed_by = excluded.changed_by, changed_at = excluded.changed_at
"""


TOUCH_CONVERSATION = """
INSERT INTO conversations (key, platform, created_at, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at
"""

RECORD_MODEL_CHECK = """
INSERT INTO model_checks (endpoint, model, native_tools, checked_at) VALUES (?, ?, ?, ?)
ON CONFLICT (endpoint, model) DO UPDATE SET
    native_tools = excluded.native_tools, checked_at = excluded.checked_at
"""

APPEND_MESSAGE = "INSERT INTO messages (conversation, created_at, payload) VALUES (?, ?, ?)"

TOTALS_BY_ACTION = "SELECT action, outcome, calls, latency_ms FROM call_totals"
ACTIVITY_BY_ACTION = "SELECT action, last_call_at, last_error, last_error_at FROM action_activity"

# One action's slowest `k` latencies among its most recent `window` calls (index-only read);
# joined with UNION ALL for several actions. Parameters: action, action, window, k.
SLOWEST_RECENT = """
SELECT * FROM (
    SELECT ? AS action, latency_ms FROM (
        SELECT latency_ms FROM calls WHERE action = ? ORDER BY id DESC LIMIT ?
    ) ORDER BY latency_ms DESC LIMIT ?
)
"""
MAX_COMPOUND_SELECTS = 400
"""SQLite allows 500 SELECTs in one compound statement; stay below it."""
