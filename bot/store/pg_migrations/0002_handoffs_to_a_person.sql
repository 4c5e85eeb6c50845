-- handoffs to a person
-- One row per handoff (the turn's event key): the conversation stays silent until `until`
-- or until an admin resumes it (`ended_at`).
CREATE TABLE handoffs (
    event_key     TEXT PRIMARY KEY,
    conversation  TEXT NOT NULL,
    platform      TEXT NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    until         DOUBLE PRECISION NOT NULL,
    ended_at      DOUBLE PRECISION,
    ended_by      TEXT
);
CREATE INDEX handoffs_open ON handoffs (conversation) WHERE ended_at IS NULL;
