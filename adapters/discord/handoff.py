"""Handing a Discord conversation to a person: the summary in the handoff channel, once.

When a turn ends with `Reply.handoff` (the model called `handoff_to_human`) and
`ACTIONBOT_HANDOFF_CHANNEL` has a `discord:` channel, a summary embed is posted there: the
customer (mentioned without a ping), their question, the model's reason and summary, the
actions tried and a link to the conversation. Its text pings only who
`ACTIONBOT_HANDOFF_MENTION` names (a role, or `here`). The summary's message id is written to
the inbox route, so a replay of the turn does not post it again; if it cannot be posted, the
turn is left for another attempt (the reply is kept) before the customer is told anything.
`bot.delivery.Inbox` then keeps the bot silent in the conversation.

`check_channel` runs at startup (`start` and `check`) over the REST API: a channel the bot
cannot see, or cannot post embeds in, stops startup with one line naming the channel and
the permissions to grant.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from adapters.discord import wording as discord_wording
from adapters.discord.embeds import Card, embed_field, to_embeds
from adapters.discord.markdown import safe
from adapters.discord.posting import NO_PINGS, Sendable, channel_name
from bot.delivery import Inbox
from bot.errors import ConfigError
from bot.runtime.config import Settings
from bot.store import InboxEntry
from bot.types import Handoff

logger = logging.getLogger(__name__)

PLATFORM = "discord"
NEEDED = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("embed_links", "Embed Links"),
)
"""The permissions a handoff channel needs: see it, post in it, post an embed."""
FindChannel = Callable[[object], Awaitable[Sendable | None]]


class HandoffPoster:
    """Posts a turn's handoff summary in the handoff channel, once per turn."""

    def __init__(self, *, settings: Settings, inbox: Inbox, find_channel: FindChannel) -> None:
        self.settings = settings
        self.inbox = inbox
        self.find_channel = find_channel

    async def post_once(self, entry: InboxEntry, handoff: Handoff, *, link: str) -> bool:
        """Post the summary unless an earlier attempt did; False when it could not be."""
        channel_id = self.settings.handoff_channels.get(PLATFORM)
        if channel_id is None or entry.route.get("handoff") is not None:
            return True
        channel = await self.find_channel(channel_id)
        if channel is None:
            return False
        mention = self.settings.handoff_mentions.get(PLATFORM)
        embed = summary_embed(handoff, entry=entry, link=link, hours=self.settings.handoff_hours)
        ping, allowed = _ping(mention)
        try:
            posted = await channel.send(
                f"{ping} {discord_wording.HANDOFF_HEADLINE}".strip(),
                embed=embed,
                allowed_mentions=allowed,
            )
        except discord.HTTPException as exc:
            logger.warning("could not post a handoff summary in %s: %s", channel_name(channel), exc)
            return False
        logger.info("handoff of %s posted in %s", handoff.conversation, channel_name(channel))
        await self.inbox.update_route(entry, {"handoff": posted.id})
        return True


def summary_embed(handoff: Handoff, *, entry: InboxEntry, link: str, hours: float) -> discord.Embed:
    """The team's summary: who, what they asked, why, what was tried, where to answer."""
    customer = entry.message
    who = f"<@{customer.user_id}>"
    if customer.user_name:
        who += f" ({safe(customer.user_name)})"
    where = f"[Open the conversation]({link})" if link else handoff.conversation
    if customer.conversation.startswith("dm:"):
        where += discord_wording.HANDOFF_IN_DM
    fields = [
        embed_field("Customer", who, inline=True),
        embed_field("Conversation", where, inline=True),
        embed_field("Question", safe(handoff.question) or "-"),
    ]
    if handoff.summary:
        fields.append(embed_field("Summary", safe(handoff.summary)))
    fields.append(embed_field("Actions tried", safe(", ".join(handoff.actions_tried)) or "none"))
    card = Card(
        discord.Colour.red(),
        discord_wording.HANDOFF_TITLE,
        safe(handoff.reason),
        fields,
        footer=discord_wording.handoff_footer(hours),
    )
    [embed] = to_embeds([card])
    return embed


def _ping(mention: str | None) -> tuple[str, discord.AllowedMentions]:
    """The text that pings `ACTIONBOT_HANDOFF_MENTION`, and the mentions allowed: exactly
    that role (or @here), never the customer or anyone else."""
    target = (mention or "").strip().removeprefix("<@&").removesuffix(">")
    if target.lower() in {"here", "@here"}:
        return "@here", discord.AllowedMentions(everyone=True, users=False, roles=False)
    if target.isdigit():
        role = discord.Object(id=int(target))
        return f"<@&{target}>", discord.AllowedMentions(everyone=False, users=False, roles=[role])
    if target:
        logger.warning("ACTIONBOT_HANDOFF_MENTION discord:%s is not a role id or here", target)
    return "", NO_PINGS


async def check_channel(client: discord.Client, settings: Settings) -> None:
    """`ConfigError` (one line) unless the bot may post embeds in the handoff channel; a
    warning when the configured mention would not ping. Needs a logged-in client only."""
    channel_id = settings.handoff_channels.get(PLATFORM)
    if channel_id is None:
        return
    if not channel_id.isdigit():
        raise ConfigError(discord_wording.handoff_channel_unseen(channel_id, "not a channel id"))
    try:
        found = await client.fetch_channel(int(channel_id))
        if not isinstance(found, discord.abc.GuildChannel):
            raise ConfigError(discord_wording.handoff_channel_kind(channel_id, "private"))
        # A channel fetched alone has no roles to judge by: fetch its server with them.
        guild = await client.fetch_guild(found.guild.id)
        channel = await guild.fetch_channel(int(channel_id))
        me = await guild.fetch_member(client.user.id if client.user else 0)
    except discord.HTTPException as exc:
        raise ConfigError(discord_wording.handoff_channel_unseen(channel_id, exc)) from None
    if not isinstance(channel, discord.TextChannel):
        raise ConfigError(discord_wording.handoff_channel_kind(channel_id, channel.type))
    allowed = channel.permissions_for(me)
    missing = [label for flag, label in NEEDED if not getattr(allowed, flag)]
    if missing:
        raise ConfigError(
            discord_wording.handoff_channel_refused(channel_id, channel.name, missing)
        )
    _check_mention(settings.handoff_mentions.get(PLATFORM), guild, allowed)


def _check_mention(mention: str | None, guild: discord.Guild, allowed: discord.Permissions) -> None:
    """Warn when the mention would post without pinging anyone."""
    target = (mention or "").strip().removeprefix("<@&").removesuffix(">")
    if not target or allowed.mention_everyone:
        return
    if target.lower() in {"here", "@here"}:
        problem = "ActionBot may not mention @here there"
    elif (role := guild.get_role(int(target)) if target.isdigit() else None) is None:
        problem = f"server {guild.name} has no role {target}"
    elif not role.mentionable:
        problem = f"role @{role.name} is not mentionable by others"
    else:
        return
    logger.warning(
        "ACTIONBOT_HANDOFF_MENTION: %s, so handoff summaries ping nobody; grant ActionBot "
        "'Mention @everyone, @here and All Roles' in the handoff channel, or make the role "
        "mentionable",
        problem,
    )
