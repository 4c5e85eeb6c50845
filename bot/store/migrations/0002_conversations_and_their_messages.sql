-- conversations and their messages
CREATE TABLE conversations (
    key         TEXT PRIMARY KEY,
    platform    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX conversations_updated_at ON conversations (updated_at);
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    conversation  TEXT NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
    created_at    REAL NOT NULL,
    payload       TEXT NOT NULL
);
CREATE INDEX messages_conversation_id ON messages (conversation, id);
