"""What the Discord adapter says that only makes sense on Discord (the rest is in
`bot.wording`)."""

NOT_ADMIN_DISCORD = (
    "Sorry, only admins can use /actions: members with Manage Server, or the ids in "
    "ACTIONBOT_ADMINS."
)
DISCORD_LOGIN_REJECTED = (
    "Discord rejected DISCORD_TOKEN. Copy the bot token from the Developer Portal → your "
    "application → Bot → Reset Token, and put it in DISCORD_TOKEN."
)
DISCORD_INTENT_MISSING = (
    "Discord refused the connection: the Message Content intent is not enabled. Turn on "
    "Developer Portal → your application → Bot → Privileged Gateway Intents → MESSAGE CONTENT "
    "INTENT, then start again."
)
