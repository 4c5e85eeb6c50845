-- leases and pending messages by conversation
-- Work that one process of several does at a time (a Discord shard, the retention sweep):
-- held by `owner` until `until`, renewed while it works, taken over once expired.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    owner  TEXT NOT NULL,
    until  REAL NOT NULL
);
-- A message's turn waits for the earlier pending messages of its conversation.
CREATE INDEX inbox_pending_conversation ON inbox (conversation, seq) WHERE state = 'pending';
