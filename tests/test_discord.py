"""The Discord adapter under real discord.py, against the fake Discord, LLM and webhook.

"Nothing happened" is proved with a barrier, never a sleep: after the message that must be
ignored, a normal message is sent and answered. Discord delivers gateway events in order, the
store serves its callers in order, and `Turns.drain` then waits for anything started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import inventory_action, make_engine, make_settings

from adapters.discord import wording as discord_wording
from adapters.discord.adapter import MESSAGE_LIMIT, DiscordAdapter
from bot import wording
from bot.actions.models import Action, ActionSet
from bot.admin.operations import Admin
from bot.delivery import Inbox
from bot.errors import ConfigError
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.config import Settings
from bot.runtime.tasks import Turns
from bot.store import Store
from bot.types import IncomingMessage
from fakes.discord_server import (
    APPLICATION_ID,
    BOT_USER_ID,
    INTENT_MESSAGE_CONTENT,
    MANAGE_GUILD,
    USER_ID,
    FakeDiscord,
    guild_create,
    interaction_create,
    message_create,
    new_snowflake,
    text_channel,
    user,
)
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM

GUILD, CHANNEL, DM_CHANNEL = "500", "600", "700"
ARGS = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
BOT = user(BOT_USER_ID, "actionbot", bot=True)
ADMIN_ID = "4242"


@dataclass
class Harness:
    """A connected Discord adapter with everything it talks to."""

    fake: FakeDiscord
    llm: ScriptedLLM
    server: WebhookServer
    store: Store
    turns: Turns
    adapter: DiscordAdapter

    async def say(self, content: str, **kwargs: Any) -> dict[str, Any]:
        """Send a MESSAGE_CREATE and return its payload."""
        kwargs.setdefault("channel_id", CHANNEL)
        if kwargs["channel_id"] == CHANNEL:
            kwargs.setdefault("guild_id", GUILD)
        payload = message_create(content, **kwargs)
        await self.fake.dispatch("MESSAGE_CREATE", payload)
        return payload

    async def barrier(self) -> None:
        """Send a DM that is answered, proving everything sent before it was processed."""
        self.llm.reply("barrier answer")
        await self.say("barrier", channel_id=DM_CHANNEL, guild_id=None)
        count = 1
        while not any(
            r.json and r.json.get("content") == "barrier answer"
            for r in await self.fake.wait_for("POST", messages_in(DM_CHANNEL), count=count)
        ):
            count += 1
        await self.turns.drain()

    async def command(
        self, subcommand: str, *, permissions: int = 0, invoker: Any = None, **options: Any
    ) -> dict[str, Any]:
        """Invoke `/actions …` and return the interaction callback (or followup) body."""
        payload = interaction_create(
            f"actions {subcommand}",
            channel_id=CHANNEL,
            guild_id=GUILD,
            command_guild_id=GUILD,
            options=options or None,
            permissions=permissions,
            **({"invoker": invoker} if invoker else {}),
        )
        await self.fake.dispatch("INTERACTION_CREATE", payload)
        path = f"/interactions/{payload['id']}/{payload['token']}/callback"
        [callback] = await self.fake.wait_for("POST", path)
        if callback.json and callback.json.get("type") == 5:  # deferred: the answer follows
            [followup] = await self.fake.wait_for(
                "POST", f"/webhooks/{APPLICATION_ID}/{payload['token']}"
            )
            answer: dict[str, Any] = followup.json or {}
            return answer
        data: dict[str, Any] = (callback.json or {}).get("data", {})
        return data

    def tools_offered(self, request: int) -> list[str]:
        return [t["function"]["name"] for t in self.llm.requests[request].get("tools", [])]


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"discord_token": "fake-bot-token", "admins": f"discord:{ADMIN_ID}"}
    return make_settings(**(values | overrides))


@contextlib.asynccontextmanager
async def discord_harness(
    actions: list[Action],
    *,
    server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
    guild: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """A connected Discord adapter against the fake Discord, over these actions; `guild`
    replaces the server with one support channel, `overrides` are further settings (with
    `handoff_channel`, the engine offers `handoff_to_human` on Discord)."""
    engine = make_engine(actions, store=store, webhooks=webhooks, model=chat_model)
    configured = settings(discord_guild=int(GUILD), **overrides)
    engine.handoff_platforms = frozenset(configured.handoff_channels)
    # One set, as `actionbot run` wires it: what admins change is what the engine offers.
    admin = Admin(actions=engine.actions, store=store, webhooks=webhooks, result_chars=4000)
    guild = guild or guild_create(GUILD, channels=[text_channel(CHANNEL, "support")])
    async with FakeDiscord(guilds=[guild]) as fake:
        with fake.patched():
            turns = Turns()
            adapter = DiscordAdapter(
                settings=configured,
                engine=engine,
                admin=admin,
                store=store,
                turns=turns,
                inbox=Inbox(store, turns, metrics=engine.metrics),
                progress_delay=0,
                edit_interval=0,
                guild_ready_timeout=0.05,
            )
            await adapter.start()
            try:
                yield Harness(fake, llm, server, store, turns, adapter)
            finally:
                await adapter.close()


@pytest.fixture
async def harness(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    webhook_server.route("/inventory/check", json_handler({"in_stock": True, "quantity": 4}))
    async with discord_harness(
        [inventory_action(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as opened:
        yield opened


def messages_in(channel: str) -> re.Pattern[str]:
    """Exactly the message-posting (or editing) path of `channel`."""
    return re.compile(rf"^/channels/{channel}/messages(/\d+)?$")


THREADS = re.compile(r"/channels/\d+/messages/\d+/threads$")


async def thread_opened(harness: Harness) -> tuple[str, dict[str, Any]]:
    """Wait for the thread the bot opens, then for its turn to finish; (thread id, request)."""
    [request] = await harness.fake.wait_for("POST", THREADS)
    await harness.turns.drain()
    thread_id = next(cid for cid, c in harness.fake.channels.items() if c.get("type") == 11)
    return thread_id, request.json or {}


async def test_mention_opens_thread_and_answers_with_an_action(harness: Harness) -> None:
    """A mention in a channel opens a thread there and the answer used the action."""
    harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.reply("Yes, we have **4** in stock.")

    await harness.say(f"<@{BOT_USER_ID}> Do you have iPhone 15 Pro screens?", mentions=[BOT])
    thread_id, request = await thread_opened(harness)

    assert request["name"] == "Do you have iPhone 15 Pro screens?"
    posts = [r.json for r in harness.fake.requests_to("POST", messages_in(thread_id))]
    assert posts[0]["content"] == "*Checking inventory…*"
    edits = [r.json for r in harness.fake.requests_to("PATCH", messages_in(thread_id))]
    assert edits[-1]["content"] == "Yes, we have **4** in stock."
    assert harness.server.requests[0].query == ARGS
    assert harness.llm.requests[0]["messages"][-1]["content"] == (
        "Do you have iPhone 15 Pro screens?"
    )
    caller = harness.server.requests[0].headers["X-ActionBot-Caller"]
    assert caller == f"platform=discord; team={GUILD}; user={USER_ID}; channel={CHANNEL}"


async def test_follow_up_in_thread_needs_no_mention(harness: Harness) -> None:
    """After the first answer, a plain message in the thread continues the conversation."""
    harness.llm.reply("Hello!")
    harness.llm.reply("Screens are $129.")
    await harness.say(f"<@{BOT_USER_ID}> hi", mentions=[BOT])
    thread_id, _ = await thread_opened(harness)

    await harness.say("how much?", channel_id=thread_id, guild_id=GUILD)
    await harness.fake.wait_for("POST", messages_in(thread_id), 2)
    await harness.turns.drain()

    contents = [m["content"] for m in harness.llm.requests[1]["messages"][1:]]
    assert contents == ["hi", "Hello!", "how much?"]


async def test_direct_message_is_answered(harness: Harness) -> None:
    """A DM needs no mention and is answered in the DM."""
    harness.llm.reply("Hi, how can I help?")

    await harness.say("hello", channel_id=DM_CHANNEL, guild_id=None)
    [post] = await harness.fake.wait_for("POST", messages_in(DM_CHANNEL))
    await harness.turns.drain()

    assert post.json is not None
    assert post.json["content"] == "Hi, how can I help?"
    assert post.json["allowed_mentions"] == {"parse": []}


async def test_bots_and_unmentioned_chatter_are_ignored(harness: Harness) -> None:
    """Other bots, the bot itself and channel chatter without a mention start nothing."""
    await harness.say(
        f"<@{BOT_USER_ID}> beep", author=user("9999", "otherbot", bot=True), mentions=[BOT]
    )
    await harness.say("I said this", author=BOT, channel_id=DM_CHANNEL, guild_id=None)
    await harness.say("lunch anyone?")

    await harness.barrier()

    assert [m["content"] for m in harness.llm.requests[0]["messages"][1:]] == ["barrier"]
    assert len(harness.llm.requests) == 1


async def test_same_message_twice_runs_once(harness: Harness) -> None:
    """A MESSAGE_CREATE delivered twice (e.g. replayed on resume) runs one turn."""
    harness.llm.reply("only once")
    message_id = new_snowflake()

    for _ in range(2):
        await harness.say("hello", channel_id=DM_CHANNEL, guild_id=None, message_id=message_id)
    await harness.barrier()

    contents = [
        r.json["content"]
        for r in harness.fake.requests_to("POST", messages_in(DM_CHANNEL))
        if r.json
    ]
    assert contents.count("only once") == 1
    assert len(harness.llm.requests) == 2


async def test_long_answer_split_without_pings(harness: Harness) -> None:
    """A long answer is split under 2000 characters and never pings @everyone."""
    harness.llm.reply("@everyone listen. " + "\n\n".join("word " * 180 for _ in range(6)))

    await harness.say("tell me everything", channel_id=DM_CHANNEL, guild_id=None)
    await harness.fake.wait_for("POST", messages_in(DM_CHANNEL), 2)
    await harness.turns.drain()

    posts = [r.json for r in harness.fake.requests_to("POST", messages_in(DM_CHANNEL)) if r.json]
    assert len(posts) >= 3
    assert all(len(p["content"]) <= MESSAGE_LIMIT for p in posts)
    assert all(p["allowed_mentions"] == {"parse": []} for p in posts)
    assert "@everyone" not in posts[0]["content"].replace("@\u200beveryone", "")


async def test_empty_mention_and_attachment_only_get_polite_answers(harness: Harness) -> None:
    """A bare mention gets a greeting; no LLM call is made for it."""
    await harness.say(f"<@{BOT_USER_ID}>", mentions=[BOT])
    [post] = await harness.fake.wait_for("POST", messages_in(CHANNEL))
    await harness.turns.drain()

    assert post.json is not None
    assert post.json["content"] == wording.EMPTY_MESSAGE
    assert harness.llm.requests == []


async def test_replay_edits_the_note_an_earlier_attempt_posted(harness: Harness) -> None:
    """A DM whose turn died after posting its "Checking…" note is answered at the next
    start by editing that note: nothing new is posted, and the entry is settled."""
    await harness.barrier()  # the customer has written in the DM before
    dm = await harness.adapter.client.fetch_channel(int(DM_CHANNEL))
    note = await dm.send("*Checking inventory…*")  # type: ignore[union-attr]
    incoming = IncomingMessage(
        platform="discord",
        conversation=f"dm:{DM_CHANNEL}",
        user_id=USER_ID,
        text="Screens?",
        event_id=new_snowflake(),
    )
    route = {"channel": int(DM_CHANNEL), "message": int(incoming.event_id or 0), "note": note.id}
    await harness.store.receive(incoming, route=route, owner="gone:1", lease_seconds=0)
    harness.llm.reply("Yes, 4 in stock.")
    posts_before = len(harness.fake.requests_to("POST", messages_in(DM_CHANNEL)))

    assert await harness.adapter.inbox.recover(at_start=True) == 1
    await harness.turns.drain()

    assert len(harness.fake.requests_to("POST", messages_in(DM_CHANNEL))) == posts_before
    [edit] = harness.fake.requests_to("PATCH", messages_in(DM_CHANNEL))
    assert edit.path.endswith(f"/{note.id}")
    assert edit.json is not None
    assert edit.json["content"] == "Yes, 4 in stock."
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 2, "failed": 0}


async def test_replayed_mention_opens_its_thread_once(harness: Harness) -> None:
    """A channel mention received while shutting down is answered at the next start: the
    thread is opened on the original message then, and remembered for any later attempt."""
    harness.adapter.inbox.hold_new()
    await harness.say(f"<@{BOT_USER_ID}> Screens?", mentions=[BOT])
    await wait_until(lambda: harness.store.inbox_counts(), {"pending": 1, "done": 0, "failed": 0})
    assert harness.llm.requests == []
    harness.adapter.inbox.accepting = True
    harness.llm.reply("Answered in the thread.")

    assert await harness.adapter.inbox.recover(at_start=True) == 1
    thread_id, _ = await thread_opened(harness)

    [post] = harness.fake.requests_to("POST", messages_in(thread_id))
    assert post.json is not None
    assert post.json["content"] == "Answered in the thread."
    assert len(harness.fake.requests_to("POST", THREADS)) == 1
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def wait_until(read: Any, expected: Any) -> None:
    """Wait until `await read()` equals `expected` (state written by another task)."""
    async with asyncio.timeout(5):
        # The state is a database row another task writes: there is no event to wait on.
        while await read() != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_thread_refused_falls_back_to_a_reply(harness: Harness) -> None:
    """Without permission to open threads, the bot answers as a reply in the channel."""
    harness.fake.fail_next("POST", THREADS, status=403, code=50013, message="Missing Permissions")
    harness.llm.reply("Answer in channel.")

    sent = await harness.say(f"<@{BOT_USER_ID}> hi", mentions=[BOT])
    [post] = await harness.fake.wait_for("POST", messages_in(CHANNEL))
    await harness.turns.drain()

    assert post.json is not None
    assert post.json["content"] == "Answer in channel."
    assert int(post.json["message_reference"]["message_id"]) == int(sent["id"])


async def test_non_admin_cannot_disable(harness: Harness) -> None:
    """A member without Manage Server is refused, and the action is still offered."""
    data = await harness.command("disable", name="check_inventory")
    await harness.barrier()

    assert data["content"] == discord_wording.NOT_ADMIN_DISCORD
    assert data["flags"] == 64
    assert await harness.store.action_states() == {}
    assert harness.tools_offered(0) == ["check_inventory"]


async def test_admin_disable_removes_the_tool(harness: Harness) -> None:
    """A Manage Server member's disable takes the tool out of the next LLM request."""
    data = await harness.command("disable", permissions=MANAGE_GUILD, name="check_inventory")
    await harness.barrier()

    assert "disabled" in data["content"]
    assert harness.tools_offered(0) == []
    state = (await harness.store.action_states())["check_inventory"]
    assert state.changed_by == f"discord:{USER_ID}"


async def test_listed_admin_sees_list_embed(harness: Harness) -> None:
    """An id in ACTIONBOT_ADMINS may list actions even without server permissions."""
    data = await harness.command("list", invoker=user(ADMIN_ID, "boss"))

    assert data["flags"] == 64
    assert "check_inventory" in json.dumps(data["embeds"])


async def test_an_interaction_delivered_twice_is_handled_once(harness: Harness) -> None:
    """A gateway replay of the same command (same interaction id) answers once: the
    second delivery finds the interaction's lease taken and is skipped."""
    payload = interaction_create(
        "actions list",
        channel_id=CHANNEL,
        guild_id=GUILD,
        command_guild_id=GUILD,
        invoker=user(ADMIN_ID, "boss"),
    )
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    await harness.fake.wait_for("POST", path)
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    await harness.barrier()  # everything dispatched before it has been handled
    assert len(harness.fake.requests_to("POST", path)) == 1
    assert await harness.store.lease_holder(f"discord-interaction:{payload['id']}") is not None


async def test_autocomplete_offers_action_names(harness: Harness) -> None:
    """Typing part of a name in /actions show suggests matching actions."""
    payload = interaction_create(
        "actions show",
        channel_id=CHANNEL,
        guild_id=GUILD,
        command_guild_id=GUILD,
        options={"name": "inv"},
        focused="name",
        permissions=MANAGE_GUILD,
    )
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    [callback] = await harness.fake.wait_for("POST", path)

    assert callback.json is not None
    assert callback.json["type"] == 8
    assert callback.json["data"]["choices"] == [
        {"name": "check_inventory", "value": "check_inventory"}
    ]


async def test_commands_synced_to_the_configured_server(harness: Harness) -> None:
    """With ACTIONBOT_DISCORD_GUILD set, /actions is registered in that server."""
    [group] = harness.fake.commands(GUILD)

    assert group["name"] == "actions"
    assert {o["name"] for o in group["options"]} == {
        "list",
        "show",
        "enable",
        "disable",
        "stats",
        "test",
        "console",
        "resume",
        "reload",
        "new",
        "edit",
        "delete",
        "dryrun",
        "audit",
    }
    assert group["default_member_permissions"] in (str(MANAGE_GUILD), MANAGE_GUILD)


async def test_missing_message_content_intent_is_explained(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel
) -> None:
    """If the portal has not enabled Message Content, startup says exactly what to turn on."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(
        actions=ActionSet([], source="t"), store=store, webhooks=webhooks, result_chars=100
    )
    async with FakeDiscord(deny_intents=INTENT_MESSAGE_CONTENT) as fake:
        with fake.patched():
            adapter = DiscordAdapter(
                settings=settings(),
                engine=engine,
                admin=admin,
                store=store,
                turns=(turns := Turns()),
                inbox=Inbox(store, turns, metrics=engine.metrics),
                guild_ready_timeout=0.05,
            )
            with pytest.raises(ConfigError, match="MESSAGE CONTENT INTENT"):
                await adapter.start()
            await adapter.close()


async def test_rejected_token_is_explained(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel
) -> None:
    """A wrong token fails startup naming DISCORD_TOKEN and where to get a new one."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(
        actions=ActionSet([], source="t"), store=store, webhooks=webhooks, result_chars=100
    )
    async with FakeDiscord(token="the-real-token") as fake:
        with fake.patched():
            adapter = DiscordAdapter(
                settings=settings(),
                engine=engine,
                admin=admin,
                store=store,
                turns=(turns := Turns()),
                inbox=Inbox(store, turns, metrics=engine.metrics),
            )
            with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
                await adapter.start()
            await adapter.close()


async def test_unreachable_discord_is_one_clear_error(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel
) -> None:
    """Discord's API cannot be reached at start: a `ConfigError` naming Discord and its
    address, which `actionbot run` prints as one line, not a connection traceback."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(
        actions=ActionSet([], source="t"), store=store, webhooks=webhooks, result_chars=100
    )
    async with FakeDiscord() as fake:
        with fake.patched():
            await fake.stop()  # nothing listens at the API address any more
            adapter = DiscordAdapter(
                settings=settings(),
                engine=engine,
                admin=admin,
                store=store,
                turns=(turns := Turns()),
                inbox=Inbox(store, turns, metrics=engine.metrics),
            )
            with pytest.raises(ConfigError, match=r"cannot reach Discord at http://127\.0\.0\.1:"):
                await adapter.start()
            await adapter.close()


async def test_managers_of_other_servers_are_not_admins(harness: Harness) -> None:
    """Manage Server counts only in the operator's own server, not in any other one."""
    await harness.fake.dispatch("GUILD_CREATE", guild_create("999", channels=[text_channel("900")]))
    payload = interaction_create(
        "actions disable",
        channel_id="900",
        guild_id="999",
        command_guild_id=GUILD,
        options={"name": "check_inventory"},
        permissions=MANAGE_GUILD,
    )
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    [callback] = await harness.fake.wait_for("POST", path)

    assert callback.json is not None
    assert callback.json["data"]["content"] == discord_wording.NOT_ADMIN_DISCORD
    assert await harness.store.action_states() == {}
