"""The database schema: ordered migrations and the SQL the store runs.

A schema change is a new `(version, name, sql)` appended to `MIGRATIONS`; never edit one that
has shipped. Each is applied once, in order, in its own transaction (see `bot/store.py`).
"""

from __future__ import annotations

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's write to finish before failing."""

Migration = tuple[int, str, str]

# Every recorded call updates its action's aggregates in the same statement, so they are exact
# by construction. The CLI may record with its own clock, so the latest times are kept.
CALLS_AGGREGATE_TRIGGER = """
CREATE TRIGGER calls_aggregate AFTER INSERT ON calls BEGIN
    INSERT INTO call_totals (action, outcome, calls, latency_ms)
    VALUES (NEW.action, NEW.outcome, 1, NEW.latency_ms)
    ON CONFLICT (action, outcome) DO UPDATE SET
        calls = calls + 1,
        latency_ms = latency_ms + excluded.latency_ms;
    INSERT INTO action_activity (action, last_call_at, last_error, last_error_at)
    VALUES (
        NEW.action,
        NEW.recorded_at,
        CASE WHEN NEW.outcome = 'success' THEN NULL ELSE COALESCE(NEW.error, NEW.outcome) END,
        CASE WHEN NEW.outcome = 'success' THEN NULL ELSE NEW.recorded_at END
    )
    ON CONFLICT (action) DO UPDATE SET
        last_call_at = MAX(last_call_at, excluded.last_call_at),
        last_error = CASE WHEN excluded.last_error_at >= COALESCE(last_error_at, 0)
                          THEN excluded.last_error ELSE last_error END,
        last_error_at = CASE WHEN excluded.last_error_at >= COALESCE(last_error_at, 0)
                             THEN excluded.last_error_at ELSE last_error_at END;
END;
"""

MIGRATIONS: list[Migration] = [
    (
        1,
        "action state, call log and seen events",
        """
        CREATE TABLE action_state (
            action      TEXT PRIMARY KEY,
            active      INTEGER NOT NULL CHECK (active IN (0, 1)),
            changed_by  TEXT NOT NULL,
            changed_at  REAL NOT NULL
        );
        CREATE TABLE calls (
            id            INTEGER PRIMARY KEY,
            action        TEXT NOT NULL,
            call_id       TEXT NOT NULL,
            conversation  TEXT,
            started_at    REAL NOT NULL,
            recorded_at   REAL NOT NULL,
            latency_ms    REAL NOT NULL,
            outcome       TEXT NOT NULL,
            status        INTEGER,
            error         TEXT
        );
        -- Recent calls of one action, newest first; latency_ms makes the p95 read index-only.
        CREATE INDEX calls_action_id ON calls (action, id, latency_ms);
        CREATE TABLE call_totals (
            action      TEXT NOT NULL,
            outcome     TEXT NOT NULL,
            calls       INTEGER NOT NULL,
            latency_ms  REAL NOT NULL,
            PRIMARY KEY (action, outcome)
        ) WITHOUT ROWID;
        CREATE TABLE action_activity (
            action         TEXT PRIMARY KEY,
            last_call_at   REAL NOT NULL,
            last_error     TEXT,
            last_error_at  REAL
        );
        CREATE TABLE seen_events (
            event_id  TEXT PRIMARY KEY,
            seen_at   REAL NOT NULL
        );
        CREATE INDEX seen_events_seen_at ON seen_events (seen_at);
        """,
    ),
    (
        2,
        "conversations and their messages",
        """
        CREATE TABLE conversations (
            key         TEXT PRIMARY KEY,
            platform    TEXT NOT NULL,
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL
        );
        CREATE INDEX conversations_updated_at ON conversations (updated_at);
        CREATE TABLE messages (
            id            INTEGER PRIMARY KEY,
            conversation  TEXT NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
            created_at    REAL NOT NULL,
            payload       TEXT NOT NULL
        );
        CREATE INDEX messages_conversation_id ON messages (conversation, id);
        """,
    ),
    (3, "aggregates kept by a trigger on each recorded call", CALLS_AGGREGATE_TRIGGER),
    (
        4,
        "what actionbot doctor found about each model server",
        """
        CREATE TABLE model_checks (
            endpoint      TEXT NOT NULL,
            model         TEXT NOT NULL,
            native_tools  INTEGER NOT NULL CHECK (native_tools IN (0, 1)),
            checked_at    REAL NOT NULL,
            PRIMARY KEY (endpoint, model)
        );
        """,
    ),
]

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
