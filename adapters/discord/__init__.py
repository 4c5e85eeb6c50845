"""Discord adapter (discord.py): mentions, DMs and threads, `/actions` for admins."""
