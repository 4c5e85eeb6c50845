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
                   outcome, status, error, attempts, platform, team, user_id, channel,
                   arguments)
VALUES (:action, :call_id, :conversation, :started_at, :now, :latency_ms,
        :outcome, :status, :error, :attempts, :platform, :team, :user_id, :channel,
        :arguments)
"""

JOURNAL_RESULT = """
UPDATE journal SET result = ?, finished_at = ?
WHERE event_key = ? AND idempotency_key = ? AND result IS NULL
"""

# One statement: a new row, or (on a replay) the row already there with its result. The
# no-op update makes the conflicting row one RETURNING can give back.
JOURNAL_START = """
INSERT INTO journal (event_key, idempotency_key, ordinal, action, arguments, started_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (event_key, idempotency_key) DO UPDATE SET ordinal = journal.ordinal
RETURNING result
"""

# The count of earlier pending messages names the conversation by its parameters: SQLite's
# planner then searches `inbox_pending_conversation` (referring to the new row's columns it
# scanned every pending message, one acknowledgement slower per message waiting).
INBOX_INSERT = """
INSERT INTO inbox (event_key, platform, conversation, user_id, user_name, team_id,
                   channel_id, is_admin, text, route, received_at, state, attempts,
                   lease_owner, lease_until)
VALUES (:key, :platform, :conversation, :user_id, :user_name, :team_id, :channel_id,
        :is_admin, :text, :route, :now, 'pending', :attempts, :owner, :until)
ON CONFLICT (event_key) DO NOTHING
RETURNING seq, (
    SELECT COUNT(*) FROM inbox AS earlier
    WHERE earlier.conversation = :conversation AND earlier.platform = :platform
      AND earlier.state = 'pending' AND earlier.seq < inbox.seq
      AND COALESCE(earlier.lease_owner, '') != 'confirmation'
)
"""

# Take over a pending message whose lease expired; RETURNING says whether it happened.
# Both return the columns `rows.entry` reads, in its order.
INBOX_TAKE_OVER = """
UPDATE inbox SET lease_owner = :owner, lease_until = :until, attempts = attempts + 1
WHERE event_key = :key AND state = 'pending' AND lease_until <= :now
RETURNING event_key, seq, platform, conversation, user_id, user_name, text, route, attempts,
          progress, reply, team_id, channel_id, is_admin
"""

INBOX_CLAIM = """
UPDATE inbox SET lease_owner = :owner, lease_until = :until, attempts = attempts + 1
WHERE seq IN (
    SELECT seq FROM inbox
    WHERE state = 'pending'
      AND (lease_until <= :now OR lease_owner IN (SELECT value FROM json_each(:previous)))
      AND platform IN (SELECT value FROM json_each(:platforms))
    ORDER BY seq LIMIT :limit
)
RETURNING event_key, seq, platform, conversation, user_id, user_name, text, route, attempts,
          progress, reply, team_id, channel_id, is_admin
"""

INBOX_FINISH_TURN = """
UPDATE inbox SET reply = ?, progress = NULL WHERE event_key = ? AND state = 'pending'
"""

# Shared by both backends (`postgres_turns.numbered` turns `?` into `$1, $2, …`).
EARLIER_PENDING = """
SELECT earlier.event_key,
       CASE WHEN earlier.lease_until > ? THEN earlier.lease_owner END AS holder
FROM inbox AS earlier JOIN inbox AS this
  ON earlier.conversation = this.conversation AND earlier.platform = this.platform
WHERE this.event_key = ? AND earlier.state = 'pending' AND earlier.seq < this.seq
  AND COALESCE(earlier.lease_owner, '') != 'confirmation'
ORDER BY earlier.seq
"""

DEFER = """
UPDATE inbox SET lease_owner = NULL, lease_until = 0,
    attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
WHERE event_key = ? AND state = 'pending' AND lease_owner = ?
"""

RELEASE = """
UPDATE inbox SET lease_owner = NULL, lease_until = 0
WHERE event_key = ? AND state = 'pending' AND (? IS NULL OR lease_owner = ?)
"""

HOLD_LEASE = """
INSERT INTO leases (name, owner, until) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
WHERE leases.owner = excluded.owner OR leases.until <= ?
RETURNING owner
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

TOTALS_BY_ACTION = "SELECT action, outcome, calls, latency_ms, attempts FROM call_totals"
ACTIVITY_BY_ACTION = "SELECT action, last_call_at, last_error, last_error_at FROM action_activity"

# One action's p95 (nearest rank) over its most recent `window` call rows: sorted slowest
# first, the row at offset n - ceil(0.95 n), n being how many rows the window holds (index-
# only reads). Joined with UNION ALL for several actions. Parameters: action, action, window,
# action, window.
NEAREST_RANK_P95 = """
SELECT * FROM (
    SELECT ? AS action, latency_ms FROM (
        SELECT latency_ms FROM calls WHERE action = ? ORDER BY id DESC LIMIT ?
    ) ORDER BY latency_ms DESC
    LIMIT 1 OFFSET (
        SELECT COUNT(*) - (95 * COUNT(*) + 99) / 100 FROM (
            SELECT 1 FROM calls WHERE action = ? ORDER BY id DESC LIMIT ?
        )
    )
)
"""
MAX_COMPOUND_SELECTS = 400
"""SQLite allows 500 SELECTs in one compound statement; stay below it."""
