"""Admin alerts on Discord: how `bot.runtime.alerts.Alerts` posts a line to the Discord
channel of `ACTIONBOT_ALERT_CHANNEL` (`discord:<channel id>`), over the REST API of a logged-in
client, without pinging anyone.

A refusal (403: the bot may not post there; 404: no such channel) is raised, not logged:
`Alerts` logs one warning per cause for all the alerts that follow.
"""

from __future__ import annotations

import discord

from adapters.discord.markdown import clip, safe
from adapters.discord.posting import NO_PINGS

MAX_CONTENT = 2000


class AlertRefused(Exception):
    """Discord refused an alert; the message says why and what to grant."""


async def post_alert(client: discord.Client, channel_id: str, text: str) -> None:
    """Post `text` (mentions escaped) in the channel `channel_id`; `AlertRefused` when
    Discord says no (a connection error is raised as it is)."""
    if not channel_id.isdigit():
        raise AlertRefused(f"{channel_id!r} is not a channel id")
    channel = client.get_channel(int(channel_id)) or client.get_partial_messageable(int(channel_id))
    if not isinstance(channel, discord.abc.Messageable):
        raise AlertRefused(f"channel {channel_id} is not one to post in")
    try:
        await channel.send(clip(safe(text), MAX_CONTENT), allowed_mentions=NO_PINGS)
    except discord.Forbidden as exc:
        raise AlertRefused(
            f"Discord refused ({exc.status} {exc.text}): grant ActionBot 'View Channel' and "
            "'Send Messages' in that channel"
        ) from None
    except discord.NotFound:
        raise AlertRefused(f"Discord knows no channel {channel_id} the bot can see") from None
    except discord.HTTPException as exc:
        raise AlertRefused(f"Discord answered {exc.status}: {exc.text}") from None
