-- audit trail, dry-run overrides and breaker states
-- Who asked for each call (split from its X-ActionBot-Caller header) and the arguments sent
-- (JSON, secrets masked); calls recorded before this migration keep NULL.
ALTER TABLE calls ADD COLUMN platform TEXT;
ALTER TABLE calls ADD COLUMN team TEXT;
ALTER TABLE calls ADD COLUMN user_id TEXT;
ALTER TABLE calls ADD COLUMN channel TEXT;
ALTER TABLE calls ADD COLUMN arguments TEXT;
-- `/actions dryrun NAME on|off`: overrides the actions file's `mode`, like a toggle.
CREATE TABLE action_modes (
    action      TEXT PRIMARY KEY,
    dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    changed_by  TEXT NOT NULL,
    changed_at  REAL NOT NULL
);
-- Each action's circuit breaker as the process that last changed it saved it.
CREATE TABLE action_breakers (
    action      TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    failures    INTEGER NOT NULL,
    open_until  REAL,
    changed_at  REAL NOT NULL
);
