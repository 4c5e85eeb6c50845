"""Admin alerts on Slack: how `bot.runtime.alerts.Alerts` posts a line to the Slack channel
of `ACTIONBOT_ALERT_CHANNEL` (`slack:C…`), with `chat.postMessage` and the bot token.

Unlike the adapter's other posts (`api.Api`, which logs and carries on), a refused alert is
raised: `Alerts` logs one warning per cause for all the alerts that follow, so an alert
channel the bot is not in costs one line in the log, not one per alert.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import hint
from adapters.slack.format import escape
from bot.runtime.alerts import Poster


class AlertRefused(Exception):
    """Slack refused an alert (`not_in_channel`, `channel_not_found`, …); the message says
    what Slack answered and what to do."""

    def __init__(self, error: str) -> None:
        super().__init__(f"Slack answered {error}; {hint(error)}")
        self.error = error


def alert_poster(client: AsyncWebClient) -> Poster:
    """Posts an alert's text, escaped, to a channel; raises `AlertRefused` when Slack says no
    (a connection error is raised as it is)."""

    async def post(channel: str, text: str) -> None:
        try:
            await client.chat_postMessage(channel=channel, text=escape(text), unfurl_links=False)
        except SlackApiError as exc:
            raise AlertRefused(str(exc.response.get("error", "unknown_error"))) from None

    return post
