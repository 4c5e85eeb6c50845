"""What the Slack adapter says that only makes sense on Slack (the rest is in
`bot.wording`)."""

from __future__ import annotations


def slack_token_rejected(variable: str, error: str) -> str:
    """What to do when Slack refuses one of the configured tokens at startup."""
    advice = {
        "SLACK_BOT_TOKEN": (
            "Use the Bot User OAuth Token (xoxb-…) from your app's OAuth & Permissions page, "
            "and install the app to the workspace."
        ),
        "SLACK_APP_TOKEN": (
            "Use an app-level token (xapp-…) with the connections:write scope, from Basic "
            "Information → App-Level Tokens, and turn Socket Mode on."
        ),
    }[variable]
    return f"Slack rejected {variable} ({error}). {advice}"


FORM_NOT_OPENED = (
    "Slack did not open the form (a slash command's form must open within 3 seconds). "
    "Run the command again."
)
