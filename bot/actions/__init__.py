"""Custom Actions as data: the models (`models`), the actions-file loader (`loader`), tool
schemas and argument validation. May import `bot.runtime` (settings defaults) and the shared
`bot.types`/`bot.errors`; nothing that talks to the network or the database."""
