"""Assembly: the one place above `bot/` and `adapters/` that wires settings → store →
engine → platforms (`app`, `platforms`) and holds the `actionbot` command (`cli`) with its
`doctor`. Nothing imports this package."""
