"""The fake Discord REST API and gateway speak the wire format the real discord.py expects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest
from discord import app_commands

from fakes.discord_server import (
    APPLICATION_ID,
    BOT_USER_ID,
    DEFAULT_USER,
    EPHEMERAL,
    INTENT_MESSAGE_CONTENT,
    MANAGE_GUILD,
    FakeDiscord,
    client_running,
    guild_create,
    interaction_create,
    message_create,
    text_channel,
)

GUILD_ID = 500
CHANNEL_ID = 600
ACTIONS = ["check_inventory", "check_order", "refund_order"]


def make_client() -> discord.Client:
    """A client with the default intents plus message content and a short ready delay."""
    intents = discord.Intents.default()
    intents.message_content = True
    return discord.Client(intents=intents, guild_ready_timeout=0.05)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started fake with one guild and one text channel, patched into discord.py."""
    guild = guild_create(GUILD_ID, channels=[text_channel(CHANNEL_ID, "support")])
    async with FakeDiscord(guilds=[guild]) as server:
        with server.patched():
            yield server


@pytest.fixture
async def client(fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    """A real discord.py client connected to the fake and past `on_ready`."""
    bot = make_client()
    async with client_running(bot, fake.token):
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        yield bot


def collect(client: discord.Client, event: str) -> asyncio.Queue[Any]:
    """A queue receiving the first argument of every `event` the client dispatches."""
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def listener(*args: Any) -> None:
        queue.put_nowait(args[0] if args else None)

    listener.__name__ = f"on_{event}"
    client.event(listener)
    return queue


async def next_from(queue: asyncio.Queue[Any], accept: Callable[[Any], bool]) -> Any:
    """The next queued item `accept` approves, within five seconds."""
    async with asyncio.timeout(5):
        while not accept(item := await queue.get()):
            pass
    return item


def actions_tree(
    client: discord.Client, calls: list[discord.Interaction]
) -> app_commands.CommandTree:
    """A tree with ``/actions disable name:<action>`` for the test guild, with autocomplete."""
    tree = app_commands.CommandTree(client)
    group = app_commands.Group(
        name="actions",
        description="Manage custom actions",
        default_permissions=discord.Permissions(manage_guild=True),  # ignored on subcommands
    )

    @group.command(name="disable", description="Disable an action")
    async def disable(interaction: discord.Interaction, name: str) -> None:
        calls.append(interaction)
        await interaction.response.send_message(f"Disabled {name}", ephemeral=True)

    @disable.autocomplete("name")
    async def complete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=a, value=a) for a in ACTIONS if current in a]

    tree.add_command(group, guild=discord.Object(GUILD_ID))
    return tree


async def test_ready_brings_the_guild_channel(fake: FakeDiscord, client: discord.Client) -> None:
    """Login, READY and GUILD_CREATE make the bot user and the guild's text channel available."""
    assert client.user is not None
    assert client.user.id == int(BOT_USER_ID)
    assert client.application_id == int(APPLICATION_ID)
    channel = client.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    assert (channel.name, channel.guild.id) == ("support", GUILD_ID)
    assert fake.identifies[0]["intents"] == client.intents.value
    assert fake.identifies[0]["intents"] & INTENT_MESSAGE_CONTENT
    assert [r.path for r in fake.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]


async def test_message_create_reaches_on_message(fake: FakeDiscord, client: discord.Client) -> None:
    """A dispatched MESSAGE_CREATE arrives in `on_message` with content and the bot mention."""
    messages = collect(client, "message")
    bot = fake.bot_user
    payload = message_create(
        f"<@{BOT_USER_ID}> where is my order?",
        channel_id=CHANNEL_ID,
        guild_id=GUILD_ID,
        mentions=[bot],
    )
    await fake.dispatch("MESSAGE_CREATE", payload)
    message = await next_from(messages, lambda m: m.id == int(payload["id"]))
    assert message.content.endswith("where is my order?")
    assert message.author.id == int(DEFAULT_USER["id"])
    assert isinstance(message.author, discord.Member)
    assert client.user is not None
    assert client.user.mentioned_in(message)
    assert message.channel.id == CHANNEL_ID


async def test_send_records_allowed_mentions(fake: FakeDiscord, client: discord.Client) -> None:
    """`channel.send` posts content and allowed_mentions and gets back a full message object."""
    channel = client.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("hi", allowed_mentions=discord.AllowedMentions.none())
    (request,) = await fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages")
    assert request.json["content"] == "hi"
    assert request.json["allowed_mentions"] == {"parse": []}
    assert sent.content == "hi"
    assert sent.author.id == int(BOT_USER_ID)
    assert str(sent.id) in fake.messages


async def test_own_message_is_echoed(fake: FakeDiscord, client: discord.Client) -> None:
    """The bot's own channel message comes back as MESSAGE_CREATE, as on real Discord."""
    messages = collect(client, "message")
    channel = client.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("echo me")
    echoed = await next_from(messages, lambda m: m.id == sent.id)
    assert echoed.author == client.user


async def test_reply_thread_and_edit(fake: FakeDiscord, client: discord.Client) -> None:
    """Replying, opening a thread on a message and editing it go through the recorded REST API."""
    channel = client.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    question = message_create("help", channel_id=CHANNEL_ID, guild_id=GUILD_ID)
    await fake.dispatch("MESSAGE_CREATE", question)
    original = await channel.fetch_message(int(question["id"]))
    thread = await original.create_thread(name="Support")
    assert (thread.parent_id, thread.name) == (CHANNEL_ID, "Support")
    reply = await thread.send("Working on it", reference=original)
    edited = await reply.edit(content="Done")
    assert edited.content == "Done"
    (posted,) = await fake.wait_for("POST", f"/channels/{thread.id}/messages")
    assert posted.json["message_reference"]["message_id"] == int(question["id"])
    assert reply.reference is not None
    assert reply.reference.message_id == original.id
    assert fake.channels[str(thread.id)]["type"] == 11


async def test_slash_command_round_trip(fake: FakeDiscord, client: discord.Client) -> None:
    """A synced subcommand is invoked by INTERACTION_CREATE and answers ephemerally."""
    calls: list[discord.Interaction] = []
    tree = actions_tree(client, calls)
    synced = await tree.sync(guild=discord.Object(GUILD_ID))
    assert [c.name for c in synced] == ["actions"]
    (command,) = fake.commands(GUILD_ID)
    assert command["options"][0]["name"] == "disable"
    assert command["default_member_permissions"] == str(MANAGE_GUILD)
    payload = interaction_create(
        "actions disable",
        options={"name": "check_inventory"},
        channel_id=CHANNEL_ID,
        guild_id=GUILD_ID,
        command_guild_id=GUILD_ID,
        command_id=command["id"],
        permissions=MANAGE_GUILD,
    )
    await fake.dispatch("INTERACTION_CREATE", payload)
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    (callback,) = await fake.wait_for("POST", path)
    assert callback.json["type"] == 4
    assert callback.json["data"]["content"] == "Disabled check_inventory"
    assert callback.json["data"]["flags"] == EPHEMERAL
    assert calls[0].permissions.manage_guild


async def test_autocomplete_returns_choices(fake: FakeDiscord, client: discord.Client) -> None:
    """An autocomplete interaction for the focused option gets a type 8 callback with choices."""
    actions_tree(client, [])
    payload = interaction_create(
        "actions disable",
        options={"name": "check"},
        focused="name",
        channel_id=CHANNEL_ID,
        guild_id=GUILD_ID,
        command_guild_id=GUILD_ID,
    )
    await fake.dispatch("INTERACTION_CREATE", payload)
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    (callback,) = await fake.wait_for("POST", path)
    assert callback.json["type"] == 8
    choices = callback.json["data"]["choices"]
    assert [c["value"] for c in choices] == ["check_inventory", "check_order"]


async def test_followup_and_edit_original(fake: FakeDiscord, client: discord.Client) -> None:
    """A deferred response can be edited via @original and followed up via the webhook."""
    seen: asyncio.Queue[discord.Interaction] = asyncio.Queue()

    async def on_interaction(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.edit_original_response(content="first")
        await interaction.followup.send("second", ephemeral=True)
        seen.put_nowait(interaction)

    client.event(on_interaction)
    payload = interaction_create("ping", channel_id=CHANNEL_ID, guild_id=GUILD_ID)
    await fake.dispatch("INTERACTION_CREATE", payload)
    await asyncio.wait_for(seen.get(), 5)
    webhook = f"/webhooks/{APPLICATION_ID}/{payload['token']}"
    (edit,) = fake.requests_to("PATCH", webhook + "/messages/@original")
    (followup,) = fake.requests_to("POST", webhook)
    assert edit.json["content"] == "first"
    assert (followup.json["content"], followup.json["flags"]) == ("second", EPHEMERAL)


async def test_scripted_403_raises_forbidden(fake: FakeDiscord, client: discord.Client) -> None:
    """A scripted 403 surfaces as `discord.Forbidden` with Discord's error code and text."""
    channel = client.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    path = f"/channels/{CHANNEL_ID}/messages"
    fake.fail_next("POST", path, status=403, code=50013, message="Missing Permissions")
    with pytest.raises(discord.Forbidden) as caught:
        await channel.send("nope")
    assert (caught.value.code, caught.value.text) == (50013, "Missing Permissions")


async def test_scripted_429_is_retried(fake: FakeDiscord, client: discord.Client) -> None:
    """A scripted 429 makes discord.py wait `retry_after` and send the request again."""
    channel = client.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    path = f"/channels/{CHANNEL_ID}/messages"
    fake.fail_next("POST", path, status=429, retry_after=0.01)
    await channel.send("eventually")
    assert [r.status for r in fake.requests_to("POST", path)] == [429, 200]


async def test_resume_replays_missed_events(fake: FakeDiscord, client: discord.Client) -> None:
    """After op 7 the client RESUMEs its session and a replayed message is delivered again."""
    messages = collect(client, "message")
    payload = message_create("once", channel_id=CHANNEL_ID, guild_id=GUILD_ID)
    seq = await fake.dispatch("MESSAGE_CREATE", payload)
    await next_from(messages, lambda m: m.id == int(payload["id"]))
    await fake.reconnect(replay_from=seq - 1)
    replayed = await next_from(messages, lambda m: m.id == int(payload["id"]))
    assert replayed.content == "once"
    (resume,) = fake.resumes
    assert (resume["session_id"], resume["seq"]) == (fake.session_id, seq)
    assert fake.connections[-1].path == "/ws/resume"


async def test_close_4014_raises_privileged_intents_required() -> None:
    """A gateway close with 4014 (disallowed intents) surfaces as `PrivilegedIntentsRequired`."""
    async with FakeDiscord(deny_intents=INTENT_MESSAGE_CONTENT) as fake:
        with fake.patched():
            bot = make_client()
            try:
                with pytest.raises(discord.PrivilegedIntentsRequired):
                    await asyncio.wait_for(bot.start(fake.token), 5)
            finally:
                await bot.close()
    assert fake.identifies[0]["intents"] & INTENT_MESSAGE_CONTENT


async def test_wrong_token_fails_login() -> None:
    """A token the fake does not know makes login fail with `LoginFailure`."""
    async with FakeDiscord() as fake:
        with fake.patched():
            bot = make_client()
            try:
                with pytest.raises(discord.LoginFailure):
                    await asyncio.wait_for(bot.start("wrong"), 5)
            finally:
                await bot.close()
    assert fake.requests[0].status == 401


async def test_patched_restores_discord_py() -> None:
    """Leaving `patched()` puts discord.py's real REST base and gateway URL back."""
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        with fake.patched():
            assert fake.rest_base == discord.http.Route.BASE
        assert base == discord.http.Route.BASE
        assert gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
