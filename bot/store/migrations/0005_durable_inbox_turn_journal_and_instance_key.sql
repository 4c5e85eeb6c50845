-- durable inbox, turn journal and instance key
-- Every incoming message is kept here, from before it is acknowledged until it is answered.
-- `seq` is arrival order; `route` is where the adapter answers (channel, thread, placeholder);
-- `progress` the turn's messages so far when it was cancelled; `reply` the engine's answer,
-- saved with the conversation in one transaction, so a replay only delivers it.
CREATE TABLE inbox (
    seq           INTEGER PRIMARY KEY,
    event_key     TEXT NOT NULL UNIQUE,
    platform      TEXT NOT NULL,
    conversation  TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    team_id       TEXT NOT NULL DEFAULT '',
    channel_id    TEXT NOT NULL DEFAULT '',
    is_admin      INTEGER NOT NULL DEFAULT 0,
    text          TEXT NOT NULL,
    route         TEXT NOT NULL,
    received_at   REAL NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts      INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_until   REAL NOT NULL,
    progress      TEXT,
    reply         TEXT,
    finished_at   REAL
);
CREATE INDEX inbox_pending ON inbox (state, lease_until) WHERE state = 'pending';
CREATE INDEX inbox_finished_at ON inbox (finished_at) WHERE state != 'pending';
-- One row per webhook call of a turn, written before the request is sent; `result` is the
-- recorded ActionResult (JSON), written with the call log row in one transaction.
CREATE TABLE journal (
    event_key        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    ordinal          INTEGER NOT NULL,
    action           TEXT NOT NULL,
    arguments        TEXT NOT NULL,
    started_at       REAL NOT NULL,
    result           TEXT,
    finished_at      REAL,
    PRIMARY KEY (event_key, idempotency_key)
) WITHOUT ROWID;
CREATE INDEX journal_started_at ON journal (started_at);
CREATE INDEX calls_recorded_at ON calls (recorded_at);
ALTER TABLE calls ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE call_totals ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
UPDATE call_totals SET attempts = calls;
DROP TRIGGER calls_aggregate;
CREATE TRIGGER calls_aggregate AFTER INSERT ON calls BEGIN
    INSERT INTO call_totals (action, outcome, calls, latency_ms, attempts)
    VALUES (NEW.action, NEW.outcome, 1, NEW.latency_ms, NEW.attempts)
    ON CONFLICT (action, outcome) DO UPDATE SET
        calls = calls + 1,
        latency_ms = latency_ms + excluded.latency_ms,
        attempts = attempts + excluded.attempts;
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
-- Settings the bot creates for itself once, such as the key behind Idempotency-Key.
CREATE TABLE instance (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);
-- The inbox replaces the list of seen event ids; the ids seen so far become answered
-- messages, so a platform's retry of one of them is still dropped after the upgrade.
INSERT INTO inbox (event_key, platform, conversation, user_id, user_name, text, route,
                   received_at, state, attempts, lease_until, finished_at)
SELECT event_id, substr(event_id, 1, instr(event_id, ':') - 1), '', '', '', '', '{}',
       seen_at, 'done', 1, 0, seen_at
FROM seen_events WHERE instr(event_id, ':') > 0;
DROP TABLE seen_events;
