-- action state, call log and seen events
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
