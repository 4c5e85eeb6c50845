"""`/actions` for every front end: parsing, the operations, rendering-neutral results
(`operations`). May import `bot.actions`, `bot.outbound`, `bot.store` and `bot.runtime`; no
platform SDK (the adapters render the results)."""
