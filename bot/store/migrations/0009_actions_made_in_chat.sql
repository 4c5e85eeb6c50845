-- actions made in chat
-- `/actions new` and `/actions edit`: each action's definition as the JSON of one
-- `[[actions]]` table (header values only reference ${VAR}s), checked like the file's.
CREATE TABLE chat_actions (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
