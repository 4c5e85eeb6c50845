-- handoffs to a person
-- One row per handoff (the turn's event key): the conversation stays silent until `until`
-- or until an admin resumes it (`ended_at`).
CREATE TABLE handoffs (
    event_key     TEXT PRIMARY KEY,
    conversation  TEXT NOT NULL,
    platform      TEXT NOT NULL,
    started_at    REAL NOT NULL,
    until         REAL NOT NULL,
    ended_at      REAL,
    ended_by      TEXT
);
CREATE INDEX handoffs_open ON handoffs (conversation) WHERE ended_at IS NULL;
