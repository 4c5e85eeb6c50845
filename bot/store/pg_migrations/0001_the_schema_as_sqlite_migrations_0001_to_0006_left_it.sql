-- the schema as SQLite migrations 0001 to 0006 left it, plus leases
-- Times are Unix seconds (DOUBLE PRECISION), as in the SQLite store, so both backends read
-- the same clock. JSON is kept as text, written and read by the bot as is.
CREATE TABLE action_state (
    action      TEXT PRIMARY KEY,
    active      BOOLEAN NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  DOUBLE PRECISION NOT NULL
);
CREATE TABLE calls (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action        TEXT NOT NULL,
    call_id       TEXT NOT NULL,
    conversation  TEXT,
    started_at    DOUBLE PRECISION NOT NULL,
    recorded_at   DOUBLE PRECISION NOT NULL,
    latency_ms    DOUBLE PRECISION NOT NULL,
    outcome       TEXT NOT NULL,
    status        INTEGER,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 1
);
-- Recent calls of one action, newest first; latency_ms makes the p95 read index-only.
CREATE INDEX calls_action_id ON calls (action, id DESC) INCLUDE (latency_ms);
CREATE INDEX calls_recorded_at ON calls (recorded_at);
CREATE TABLE call_totals (
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    calls       BIGINT NOT NULL,
    latency_ms  DOUBLE PRECISION NOT NULL,
    attempts    BIGINT NOT NULL,
    PRIMARY KEY (action, outcome)
);
CREATE TABLE action_activity (
    action         TEXT PRIMARY KEY,
    last_call_at   DOUBLE PRECISION NOT NULL,
    last_error     TEXT,
    last_error_at  DOUBLE PRECISION
);
-- Every recorded call updates its action's aggregates in the same statement, so they are
-- exact under concurrency: the upserts take row locks, never read-modify-write in the bot.
CREATE FUNCTION calls_aggregate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO call_totals (action, outcome, calls, latency_ms, attempts)
    VALUES (NEW.action, NEW.outcome, 1, NEW.latency_ms, NEW.attempts)
    ON CONFLICT (action, outcome) DO UPDATE SET
        calls = call_totals.calls + 1,
        latency_ms = call_totals.latency_ms + excluded.latency_ms,
        attempts = call_totals.attempts + excluded.attempts;
    INSERT INTO action_activity (action, last_call_at, last_error, last_error_at)
    VALUES (
        NEW.action,
        NEW.recorded_at,
        CASE WHEN NEW.outcome = 'success' THEN NULL ELSE COALESCE(NEW.error, NEW.outcome) END,
        CASE WHEN NEW.outcome = 'success' THEN NULL ELSE NEW.recorded_at END
    )
    ON CONFLICT (action) DO UPDATE SET
        last_call_at = GREATEST(action_activity.last_call_at, excluded.last_call_at),
        last_error = CASE
            WHEN excluded.last_error_at >= COALESCE(action_activity.last_error_at, 0)
            THEN excluded.last_error ELSE action_activity.last_error END,
        last_error_at = CASE
            WHEN excluded.last_error_at >= COALESCE(action_activity.last_error_at, 0)
            THEN excluded.last_error_at ELSE action_activity.last_error_at END;
    RETURN NULL;
END
$$;
CREATE TRIGGER calls_aggregate AFTER INSERT ON calls
    FOR EACH ROW EXECUTE FUNCTION calls_aggregate();
CREATE TABLE conversations (
    key         TEXT PRIMARY KEY,
    platform    TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX conversations_updated_at ON conversations (updated_at);
CREATE TABLE messages (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation  TEXT NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
    created_at    DOUBLE PRECISION NOT NULL,
    payload       TEXT NOT NULL
);
CREATE INDEX messages_conversation_id ON messages (conversation, id);
CREATE TABLE model_checks (
    endpoint      TEXT NOT NULL,
    model         TEXT NOT NULL,
    native_tools  BOOLEAN NOT NULL,
    checked_at    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (endpoint, model)
);
CREATE TABLE inbox (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key     TEXT NOT NULL UNIQUE,
    platform      TEXT NOT NULL,
    conversation  TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    team_id       TEXT NOT NULL DEFAULT '',
    channel_id    TEXT NOT NULL DEFAULT '',
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    text          TEXT NOT NULL,
    route         TEXT NOT NULL,
    received_at   DOUBLE PRECISION NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts      INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_until   DOUBLE PRECISION NOT NULL,
    progress      TEXT,
    reply         TEXT,
    finished_at   DOUBLE PRECISION
);
CREATE INDEX inbox_pending ON inbox (lease_until) WHERE state = 'pending';
CREATE INDEX inbox_pending_conversation ON inbox (conversation, seq) WHERE state = 'pending';
CREATE INDEX inbox_received_at ON inbox (received_at);
CREATE TABLE journal (
    event_key        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    ordinal          INTEGER NOT NULL,
    action           TEXT NOT NULL,
    arguments        TEXT NOT NULL,
    started_at       DOUBLE PRECISION NOT NULL,
    result           TEXT,
    finished_at      DOUBLE PRECISION,
    PRIMARY KEY (event_key, idempotency_key)
);
CREATE INDEX journal_started_at ON journal (started_at);
CREATE TABLE instance (
    name   TEXT PRIMARY KEY,
    value  BYTEA NOT NULL
);
CREATE TABLE confirmations (
    token            TEXT PRIMARY KEY,
    event_key        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    action           TEXT NOT NULL,
    arguments        TEXT NOT NULL,
    requester        TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'cancelled')),
    decided_by       TEXT,
    created_at       DOUBLE PRECISION NOT NULL,
    expires_at       DOUBLE PRECISION NOT NULL,
    decided_at       DOUBLE PRECISION,
    UNIQUE (event_key, idempotency_key)
);
CREATE INDEX confirmations_created_at ON confirmations (created_at);
-- Work that one process of several does at a time (a Discord shard, the retention sweep):
-- held by `owner` until `until`, renewed while it works, taken over once expired.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    owner  TEXT NOT NULL,
    until  DOUBLE PRECISION NOT NULL
);
