"""Every outbound webhook call: the egress policy (`egress`), connect-time address pinning
(`pinning`), capacity slots (`slots`), the client with signing (`webhooks`) and reading the
capped response (`body`). May import `bot.actions` and `bot.runtime`; not the store, the
model or the engine (the recorder and observer are Protocols the caller fills)."""
