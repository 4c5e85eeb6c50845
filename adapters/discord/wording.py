"""What the Discord adapter says that only makes sense on Discord (the rest is in
`bot.wording`)."""

NOT_ADMIN_DISCORD = (
    "Sorry, only admins can use /actions: members with Manage Server, or the ids in "
    "ACTIONBOT_ADMINS."
)
DRAFT_CANCELLED = "Cancelled: nothing was saved."
DISCORD_LOGIN_REJECTED = (
    "Discord rejected DISCORD_TOKEN. Copy the bot token from the Developer Portal → your "
    "application → Bot → Reset Token, and put it in DISCORD_TOKEN."
)
DISCORD_INTENT_MISSING = (
    "Discord refused the connection: the Message Content intent is not enabled. Turn on "
    "Developer Portal → your application → Bot → Privileged Gateway Intents → MESSAGE CONTENT "
    "INTENT, then start again."
)
HANDOFF_TITLE = "A customer asks for a person"
HANDOFF_HEADLINE = "A customer needs a person from the team:"
HANDOFF_IN_DM = (
    "\n(a direct message with the bot: only the customer and the bot can read it; "
    "reach the customer directly)"
)


def handoff_footer(hours: float) -> str:
    return (
        "The bot stays silent in that conversation until an admin runs /actions resume in "
        f"it, or for {hours:g} hours."
    )


def handoff_channel_unseen(channel: str, problem: object) -> str:
    return (
        f"ACTIONBOT_HANDOFF_CHANNEL discord:{channel}: ActionBot cannot see that channel "
        f"({problem}). Invite the bot to the channel's server and grant it View Channel, Send "
        "Messages and Embed Links there, or fix the channel id."
    )


def handoff_channel_refused(channel: str, name: str, missing: list[str]) -> str:
    return (
        f"ACTIONBOT_HANDOFF_CHANNEL discord:{channel}: ActionBot cannot post handoff summaries "
        f"in #{name}: grant it {', '.join(missing)} there (channel settings → Permissions → "
        "ActionBot's role)."
    )


def handoff_channel_kind(channel: str, kind: object) -> str:
    return (
        f"ACTIONBOT_HANDOFF_CHANNEL discord:{channel}: that is a {kind} channel, not a text "
        "channel of a server; give the id of a text channel."
    )


def draft_gone(minutes: int) -> str:
    return (
        "This form is no longer open: it was saved or cancelled, or its draft expired (a draft "
        f"is kept for {minutes} minutes after the last step, in the bot's memory, so a restart "
        "discards it). Run /actions new (or /actions edit NAME) again."
    )


def draft_footer(minutes: int) -> str:
    return (
        f"Only you see this draft. It is kept for {minutes} minutes after your last step, in "
        "the bot's memory (a restart discards it); nothing is saved until you press Save."
    )
