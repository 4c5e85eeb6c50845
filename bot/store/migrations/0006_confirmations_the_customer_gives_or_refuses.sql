-- confirmations the customer gives or refuses
-- A call of a `confirm = true` action waits here for the asking user's click. `token` is in
-- the card's buttons; the pair (event_key, idempotency_key) is the call it is about.
CREATE TABLE confirmations (
    token            TEXT PRIMARY KEY,
    event_key        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    action           TEXT NOT NULL,
    arguments        TEXT NOT NULL,
    requester        TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'cancelled')),
    decided_by       TEXT,
    created_at       REAL NOT NULL,
    expires_at       REAL NOT NULL,
    decided_at       REAL,
    UNIQUE (event_key, idempotency_key)
);
CREATE INDEX confirmations_created_at ON confirmations (created_at);
