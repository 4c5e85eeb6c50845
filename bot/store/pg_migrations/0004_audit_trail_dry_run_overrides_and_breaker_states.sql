-- audit trail, dry-run overrides and breaker states
-- Who asked for each call (split from its X-ActionBot-Caller header) and the arguments sent
-- (JSON, secrets masked); calls recorded before this migration keep NULL.
ALTER TABLE calls
    ADD COLUMN platform TEXT,
    ADD COLUMN team TEXT,
    ADD COLUMN user_id TEXT,
    ADD COLUMN channel TEXT,
    ADD COLUMN arguments TEXT;
-- `/actions dryrun NAME on|off`: overrides the actions file's `mode`, like a toggle.
CREATE TABLE action_modes (
    action      TEXT PRIMARY KEY,
    dry_run     BOOLEAN NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  DOUBLE PRECISION NOT NULL
);
-- Each action's circuit breaker as the process that last changed it saved it.
CREATE TABLE action_breakers (
    action      TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    failures    INTEGER NOT NULL,
    open_until  DOUBLE PRECISION,
    changed_at  DOUBLE PRECISION NOT NULL
);
