"""`/actions` for every front end: parsing, the operations, rendering-neutral results
(`operations`, `results`, `render`), the console's 24-hour view (`console`), who is an admin
(`access`). May import `bot.actions`, `bot.outbound`, `bot.store` and `bot.runtime`; no
platform SDK (the adapters render the results)."""
