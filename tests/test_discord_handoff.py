"""Handing a Discord conversation to a person (`adapters.discord.handoff`) under real
discord.py, the scripted LLM (which calls `handoff_to_human`) and the real inbox: the
summary in the handoff channel, silence in the thread, `/actions resume`, and the startup
check of the handoff channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import inventory_action, make_engine
from test_discord import (
    ARGS,
    BOT,
    CHANNEL,
    GUILD,
    Harness,
    discord_harness,
    messages_in,
    settings,
)

from adapters.discord import wording as discord_wording
from adapters.discord.adapter import DiscordAdapter
from adapters.discord.shards import DiscordShards
from bot import wording
from bot.actions.models import ActionSet
from bot.admin.operations import Admin
from bot.delivery import Inbox
from bot.errors import ConfigError
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.tasks import Turns
from bot.store import Store
from fakes.discord_server import (
    BOT_USER_ID,
    MANAGE_GUILD,
    SEND_MESSAGES,
    USER_ID,
    VIEW_CHANNEL,
    FakeDiscord,
    guild_create,
    interaction_create,
    new_snowflake,
    role,
    text_channel,
)
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM

HANDOFF, ROLE = "800", "900"
HANDOFF_SETTINGS = {"handoff_channel": f"discord:{HANDOFF}", "handoff_mention": f"discord:{ROLE}"}


def server_with(*, handoff_denies: int = 0) -> dict[str, Any]:
    """The server: the support channel, the handoff channel (where @everyone is denied
    `handoff_denies`) and the support team's mentionable role."""
    overwrites = [{"id": GUILD, "type": 0, "allow": "0", "deny": str(handoff_denies)}]
    return guild_create(
        GUILD,
        channels=[
            text_channel(CHANNEL, "support"),
            text_channel(HANDOFF, "handoffs", permission_overwrites=overwrites),
        ],
        roles=[{**role(ROLE, "support-team"), "mentionable": True}],
    )


@pytest.fixture
async def harness(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    """A connected adapter with a handoff channel and role, over `check_inventory`."""
    webhook_server.route("/inventory/check", json_handler({"in_stock": False}))
    async with discord_harness(
        [inventory_action(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
        guild=server_with(),
        **HANDOFF_SETTINGS,
    ) as opened:
        yield opened


def posted(harness: Harness, channel: str) -> list[dict[str, Any]]:
    """The bodies of the messages Discord accepted in `channel`."""
    return [
        r.json
        for r in harness.fake.requests_to("POST", messages_in(channel))
        if r.json is not None and r.status == 200
    ]


async def test_handoff_posts_one_summary_then_the_bot_stays_silent_until_resumed(
    harness: Harness,
) -> None:
    """The model hands over after trying an action: one summary in the handoff channel
    (customer without a ping, question, reason, actions tried, link; only the team's role
    may be pinged), also when the turn is replayed because the customer could not be told
    at first; then the bot ignores the thread until `/actions resume` there."""
    thread = new_snowflake()  # Discord gives a thread opened on a message that message's id
    question = "Is the iPhone 15 Pro screen in stock? I want to talk to a person."
    harness.fake.fail_next(
        "POST", f"/channels/{thread}/messages", status=403, code=50013, times=2
    )  # the thread refuses the bot's first two posts
    harness.llm.tool_calls(("check_inventory", ARGS))
    handoff = {"reason": "The customer asks for a person.", "summary": "Screen out of stock."}
    harness.llm.tool_calls(("handoff_to_human", handoff))

    await harness.say(f"<@{BOT_USER_ID}> {question}", mentions=[BOT], message_id=thread)
    await harness.fake.wait_for("POST", messages_in(thread), count=2)  # both refused
    await harness.turns.drain()
    assert posted(harness, thread) == []
    assert await harness.adapter.inbox.recover() == 1  # the next replay pass takes it again
    await harness.turns.drain()

    [summary] = posted(harness, HANDOFF)
    assert summary["content"] == f"<@&{ROLE}> {discord_wording.HANDOFF_HEADLINE}"
    assert summary["allowed_mentions"] == {"parse": [], "roles": [int(ROLE)]}
    [embed] = summary["embeds"]
    assert embed["description"] == handoff["reason"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Customer"].startswith(f"<@{USER_ID}>")
    assert fields["Question"] == question
    assert fields["Summary"] == handoff["summary"]
    assert fields["Actions tried"] == "Check Inventory"
    assert fields["Conversation"] == (
        f"[Open the conversation](https://discord.com/channels/{GUILD}/{thread})"
    )
    assert [p["content"] for p in posted(harness, thread)] == [wording.HANDED_OFF]
    assert await harness.store.handed_off(f"discord:thread:{thread}") is not None

    await harness.say("Hello? Is anyone there?", channel_id=thread, guild_id=GUILD)
    await harness.barrier()
    assert len(harness.llm.requests) == 3  # the two of the handoff turn, and the barrier's
    assert len(posted(harness, thread)) == 1

    resumed = await resume_in(harness, thread)
    assert f"discord:thread:{thread}" in resumed["content"]
    harness.llm.reply("I'm back. How can I help?")
    await harness.say("Are you back?", channel_id=thread, guild_id=GUILD)
    await harness.fake.wait_for("POST", messages_in(thread), count=4)
    await harness.turns.drain()
    assert posted(harness, thread)[-1]["content"] == "I'm back. How can I help?"
    assert len(posted(harness, HANDOFF)) == 1


async def resume_in(harness: Harness, channel: str) -> dict[str, Any]:
    """`/actions resume` typed in `channel` by a Manage Server member; the reply's data."""
    payload = interaction_create(
        "actions resume",
        channel_id=channel,
        guild_id=GUILD,
        command_guild_id=GUILD,
        permissions=MANAGE_GUILD,
    )
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    [callback] = await harness.fake.wait_for("POST", path)
    assert callback.json is not None
    data: dict[str, Any] = callback.json["data"]
    return data


@pytest.mark.parametrize(
    ("denied", "expected"),
    [
        (SEND_MESSAGES, "cannot post handoff summaries in #handoffs: grant it Send Messages"),
        (VIEW_CHANNEL, "grant it View Channel"),
    ],
)
async def test_handoff_channel_the_bot_cannot_post_in_stops_startup(
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
    denied: int,
    expected: str,
) -> None:
    """A handoff channel where the bot's role may not post (or see) stops `start` and
    `check`, through the shards wrapper as `actionbot run` and `doctor` use it, with one
    line naming the channel and the permission to grant."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(actions=ActionSet([], source="t"), store=store, webhooks=webhooks, result_chars=1)
    turns = Turns()
    inbox = Inbox(store, turns, metrics=engine.metrics)

    def make(shard: tuple[int, int] | None, commands: bool) -> DiscordAdapter:
        return DiscordAdapter(
            settings=settings(discord_guild=int(GUILD), **HANDOFF_SETTINGS),
            engine=engine,
            admin=admin,
            store=store,
            turns=turns,
            inbox=inbox,
            shard=shard,
            register=False,
            commands=commands,
            guild_ready_timeout=0.05,
        )

    async with FakeDiscord(guilds=[server_with(handoff_denies=denied)]) as fake:
        with fake.patched():
            shards = DiscordShards(count=1, make=make, leases=store, inbox=inbox, owner="me:1")
            problems = []
            for step in (shards.check, shards.start):
                with pytest.raises(ConfigError) as raised:
                    await step()
                problems.append(str(raised.value))
            await shards.close()

    for problem in problems:
        assert "\n" not in problem
        assert problem.startswith(f"ACTIONBOT_HANDOFF_CHANNEL discord:{HANDOFF}: ")
        assert expected in problem
    assert fake.connections == []  # stopped before connecting to the gateway


async def test_unknown_handoff_channel_stops_startup(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel
) -> None:
    """A handoff channel id Discord does not know (or will not show the bot) stops startup
    with one line saying the bot cannot see it."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(actions=ActionSet([], source="t"), store=store, webhooks=webhooks, result_chars=1)
    async with FakeDiscord(guilds=[server_with()]) as fake:
        with fake.patched():
            adapter = DiscordAdapter(
                settings=settings(handoff_channel="discord:12345"),
                engine=engine,
                admin=admin,
                store=store,
                turns=(turns := Turns()),
                inbox=Inbox(store, turns, metrics=engine.metrics),
            )
            with pytest.raises(ConfigError, match="cannot see that channel") as raised:
                await adapter.start()
            await adapter.close()
    assert "\n" not in str(raised.value)
    assert "Unknown Channel" in str(raised.value)
