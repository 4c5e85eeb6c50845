"""The Slack adapter under real slack-bolt, against the fake Slack, scripted LLM and webhook."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from conftest import LIMITS, inventory_action, make_engine, make_settings

from adapters.slack.adapter import MESSAGE_LIMIT, SlackAdapter
from bot import wording
from bot.actions.models import Action, ActionSet
from bot.admin.operations import Admin
from bot.delivery import Inbox
from bot.engine import EngineLimits
from bot.errors import ConfigError
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.config import Settings
from bot.runtime.http import HttpServer
from bot.runtime.tasks import Turns
from bot.store import Store
from bot.types import IncomingMessage
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import Reply as ScriptedReply
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import (
    APP_TOKEN,
    BOT_TOKEN,
    TEAM_ID,
    FakeSlack,
    app_mention,
    event_callback,
    events_api_envelope,
    message,
    signed_headers,
    slash_command_envelope,
)

SIGNING_SECRET = "test-signing-secret"
ARGS = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
STOCK = {"in_stock": True, "quantity": 4}


@dataclass
class Harness:
    """A running Slack adapter with everything it talks to."""

    slack: FakeSlack
    llm: ScriptedLLM
    server: WebhookServer
    store: Store
    turns: Turns
    adapter: SlackAdapter

    async def push_event(self, event: dict[str, Any], *, event_id: str, retry: int = 0) -> None:
        """Deliver an event over Socket Mode and wait until its turn (if any) has finished."""
        envelope = events_api_envelope(event, event_id=event_id, retry_attempt=retry)
        await self.slack.wait_for_ack(await self.slack.push(envelope))
        await self.turns.drain()

    async def slash(self, text: str, *, user: str, team: str = TEAM_ID) -> dict[str, Any]:
        """Run `/actions TEXT` as `user` of `team` and return what was posted to the
        response URL."""
        url = self.slack.response_url(text)
        envelope = slash_command_envelope(text=text, user_id=user, response_url=url, team_id=team)
        await self.slack.wait_for_ack(await self.slack.push(envelope))
        await self.turns.drain()
        [response] = self.slack.responses(text)
        return dict(response)

    def tools_offered(self, request: int) -> list[str]:
        return [t["function"]["name"] for t in self.llm.requests[request].get("tools", [])]


def settings_for(slack: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_app_token": APP_TOKEN,
        "slack_api_url": slack.api_url,
        "admins": "slack:UADMIN",
    }
    return make_settings(**(values | overrides))


@contextlib.asynccontextmanager
async def slack_harness(
    actions: list[Action],
    *,
    server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
    limits: EngineLimits = LIMITS,
    settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[Harness]:
    """A Slack adapter in Socket Mode against the fake Slack, over these actions; `settings`
    by field name on top of `settings_for` (the engine offers the handoff tool where
    `handoff_channel` names a channel, as the assembly wires it)."""
    engine = make_engine(actions, store=store, webhooks=webhooks, model=chat_model, limits=limits)
    admin = Admin(
        actions=ActionSet(actions, source="test"), store=store, webhooks=webhooks, result_chars=4000
    )
    async with FakeSlack() as slack:
        turns = Turns()
        configured = settings_for(slack, **(settings or {}))
        engine.handoff_platforms = frozenset(configured.handoff_channels)
        inbox = Inbox(
            store, turns, metrics=engine.metrics, handoff_seconds=configured.handoff_hours * 3600
        )
        adapter = SlackAdapter(
            settings=configured,
            engine=engine,
            admin=admin,
            store=store,
            turns=turns,
            inbox=inbox,
        )
        await adapter.start()
        try:
            yield Harness(slack, llm, server, store, turns, adapter)
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
    webhook_server.route("/inventory/check", json_handler(STOCK))
    async with slack_harness(
        [inventory_action(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as opened:
        yield opened


async def test_mention_gets_threaded_answer_using_an_action(harness: Harness) -> None:
    """A channel mention is answered in a thread: placeholder, progress, then the answer."""
    harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.reply("Yes, **4** in stock.")
    ts = harness.slack.next_ts()
    event = app_mention("<@UBOT> Do you have iPhone 15 Pro screens?", "U1", "C1", ts)

    await harness.push_event(event, event_id="Ev1")

    [placeholder] = harness.slack.calls("chat.postMessage")
    assert placeholder["channel"] == "C1"
    assert placeholder["thread_ts"] == ts
    updates = [u["text"] for u in harness.slack.calls("chat.update")]
    assert updates == ["_Checking inventory…_", "Yes, *4* in stock."]
    assert harness.server.requests[0].query == ARGS
    assert harness.llm.requests[0]["messages"][-1]["content"] == (
        "Do you have iPhone 15 Pro screens?"
    )
    caller = harness.server.requests[0].headers["X-ActionBot-Caller"]
    assert caller == f"platform=slack; team={TEAM_ID}; user=U1; channel=C1"


async def test_thread_follow_up_without_mention(harness: Harness) -> None:
    """A later message in the bot's thread continues the conversation with its history."""
    harness.llm.reply("Hello!")
    harness.llm.reply("The screen costs $129.")
    ts = harness.slack.next_ts()
    await harness.push_event(app_mention("<@UBOT> hi", "U1", "C1", ts), event_id="Ev1")

    follow = message(
        "how much?", "U1", "C1", harness.slack.next_ts(), channel_type="channel", thread_ts=ts
    )
    await harness.push_event(follow, event_id="Ev2")

    contents = [m["content"] for m in harness.llm.requests[1]["messages"][1:]]
    assert contents == ["hi", "Hello!", "how much?"]
    assert [p["thread_ts"] for p in harness.slack.calls("chat.postMessage")] == [ts, ts]


async def test_thread_the_bot_never_joined_is_ignored(harness: Harness) -> None:
    """Messages in other people's threads, without a mention, start nothing."""
    chatter = message(
        "lunch?",
        "U1",
        "C1",
        harness.slack.next_ts(),
        channel_type="channel",
        thread_ts="1600000000.000100",
    )

    await harness.push_event(chatter, event_id="Ev1")

    assert harness.llm.requests == []
    assert harness.slack.calls("chat.postMessage") == []


async def test_direct_message_is_one_conversation(harness: Harness) -> None:
    """DMs are answered in the DM, not in a thread, and share one history."""
    harness.llm.reply("Hi there.")
    harness.llm.reply("Still here.")

    await harness.push_event(message("hello", "U1", "D1", harness.slack.next_ts()), event_id="E1")
    await harness.push_event(message("again", "U1", "D1", harness.slack.next_ts()), event_id="E2")

    posts = harness.slack.calls("chat.postMessage")
    assert [p["channel"] for p in posts] == ["D1", "D1"]
    assert all("thread_ts" not in p for p in posts)
    assert [m["content"] for m in harness.llm.requests[1]["messages"][1:]] == [
        "hello",
        "Hi there.",
        "again",
    ]


async def test_duplicate_and_retried_event_runs_once(harness: Harness) -> None:
    """The same event id delivered twice and as a retry runs one turn and one webhook call."""
    harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.reply("4 in stock.")
    event = app_mention("<@UBOT> stock?", "U1", "C1", harness.slack.next_ts())

    await harness.push_event(event, event_id="EvDup")
    await harness.push_event(event, event_id="EvDup")
    await harness.push_event(event, event_id="EvDup", retry=1)

    assert len(harness.llm.requests) == 2
    assert len(harness.server.requests) == 1
    assert len(harness.slack.calls("chat.postMessage")) == 1


def echo(body: dict[str, Any]) -> ScriptedReply:
    return ScriptedReply(f"answer to {body['messages'][-1]['content']}")


async def test_two_quick_messages_in_one_conversation_are_answered_in_order(
    harness: Harness,
) -> None:
    """The first message's placeholder is held back (Slack rate-limits it for a second): the
    second message still waits for the first turn, and sees its answer in the history."""
    harness.slack.rate_limit_next("chat.postMessage", retry_after=1)
    harness.llm.respond(echo)
    harness.llm.respond(echo)
    for n, text in enumerate(["first", "second"]):
        event = message(text, "U1", "D1", harness.slack.next_ts())
        envelope = events_api_envelope(event, event_id=f"EvOrder{n}")
        await harness.slack.wait_for_ack(await harness.slack.push(envelope))
    await harness.turns.drain()

    asked = [r["messages"][-1]["content"] for r in harness.llm.requests]
    assert asked == ["first", "second"]
    seen = [m["content"] for m in harness.llm.requests[1]["messages"]]
    assert "answer to first" in seen
    updates = [u["text"] for u in harness.slack.calls("chat.update")]
    assert updates == ["answer to first", "answer to second"]


async def test_replay_edits_the_stranded_placeholder_instead_of_posting_again(
    harness: Harness,
) -> None:
    """A message whose turn died after posting "Working on it…" is answered at the next start
    by editing that placeholder: no second placeholder, one answer, settled done."""
    stranded = await harness.adapter.client.chat_postMessage(channel="D1", text="_Working on it…_")
    incoming = IncomingMessage(
        platform="slack", conversation="D1", user_id="U1", text="Screens?", event_id="EvLost"
    )
    route = {"channel": "D1", "thread_ts": None, "placeholder": stranded["ts"]}
    await harness.store.receive(incoming, route=route, owner="gone:1", lease_seconds=0)
    harness.llm.reply("Yes, 4 in stock.")

    assert await harness.adapter.inbox.recover(at_start=True) == 1
    await harness.turns.drain()

    assert len(harness.slack.calls("chat.postMessage")) == 1  # only the stranded one
    [update] = harness.slack.calls("chat.update")
    assert (update["ts"], update["text"]) == (stranded["ts"], "Yes, 4 in stock.")
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}
    assert await harness.adapter.inbox.recover() == 0


async def test_replay_finds_a_placeholder_posted_but_never_recorded(harness: Harness) -> None:
    """The process died right after Slack accepted the placeholder, before its ts was
    recorded: the next attempt finds it in the conversation and edits it."""
    asked = harness.slack.next_ts()
    stranded = await harness.adapter.client.chat_postMessage(channel="D1", text="_Working on it…_")
    incoming = IncomingMessage(
        platform="slack", conversation="D1", user_id="U1", text="Screens?", event_id="EvCut"
    )
    route = {"channel": "D1", "thread_ts": None, "ts": asked, "posting": True}
    await harness.store.receive(incoming, route=route, owner="gone:1", lease_seconds=0)
    harness.llm.reply("Yes, 4 in stock.")

    await harness.adapter.inbox.recover(at_start=True)
    await harness.turns.drain()

    assert len(harness.slack.calls("chat.postMessage")) == 1
    [update] = harness.slack.calls("chat.update")
    assert (update["ts"], update["text"]) == (stranded["ts"], "Yes, 4 in stock.")


async def test_a_message_that_keeps_failing_is_given_up_with_an_apology(
    harness: Harness,
) -> None:
    """After ACTIONBOT_TURN_ATTEMPTS starts without an answer, the customer gets a short
    apology (in the placeholder) and the message is settled failed, counted in metrics."""
    placeholder = await harness.adapter.client.chat_postMessage(channel="D1", text="_Working…_")
    incoming = IncomingMessage(
        platform="slack", conversation="D1", user_id="U1", text="Screens?", event_id="EvPoison"
    )
    route = {"channel": "D1", "placeholder": placeholder["ts"]}
    await harness.store.receive(incoming, route=route, owner="gone:1", lease_seconds=0)
    for _ in range(3):  # three earlier processes took it and died
        [taken] = await harness.store.claim(
            owner="gone:1", lease_seconds=0, platforms=["slack"], limit=1
        )
        assert taken.key == "slack:EvPoison"

    await harness.adapter.inbox.recover(at_start=True)
    await harness.turns.drain()

    assert harness.llm.requests == []
    [update] = harness.slack.calls("chat.update")
    assert update["text"] == wording.GAVE_UP
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 0, "failed": 1}
    scrape = (await harness.adapter.engine.metrics.render(harness.store)).decode()
    assert 'actionbot_turns_total{outcome="failed"} 1.0' in scrape


async def test_bot_messages_and_edits_are_ignored(harness: Harness) -> None:
    """The bot's own messages, other bots and edits never start a turn."""
    own = message("I am the bot", "UBOT", "D1", harness.slack.next_ts(), bot_id="BBOT")
    other_bot = message("beep", "U9", "D1", harness.slack.next_ts(), bot_id="B9")
    edit = message("edited", "U1", "D1", harness.slack.next_ts(), subtype="message_changed")

    for n, event in enumerate([own, other_bot, edit]):
        await harness.push_event(event, event_id=f"Ev{n}")

    assert harness.llm.requests == []


async def test_empty_mention_gets_a_greeting(harness: Harness) -> None:
    """A bare mention gets a short greeting without calling the LLM."""
    ts = harness.slack.next_ts()
    await harness.push_event(app_mention("<@UBOT>", "U1", "C1", ts), event_id="Ev1")

    [post] = harness.slack.calls("chat.postMessage")
    assert post["text"] == wording.EMPTY_MESSAGE
    assert harness.llm.requests == []


async def test_long_answer_is_split(harness: Harness) -> None:
    """An answer longer than one Slack message arrives as several, each within the limit."""
    paragraphs = [f"Paragraph {n}: " + "word " * 150 for n in range(12)]
    harness.llm.reply("\n\n".join(paragraphs))

    await harness.push_event(
        message("tell me all", "U1", "D1", harness.slack.next_ts()), event_id="Ev1"
    )

    pieces = [harness.slack.calls("chat.update")[-1]["text"]]
    pieces += [p["text"] for p in harness.slack.calls("chat.postMessage")[1:]]
    assert len(pieces) >= 3
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces)
    assert "Paragraph 11" in pieces[-1]


async def test_not_in_channel_is_logged_and_skips_the_turn(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """If the bot cannot post in the channel, it says what to do in the log and stops."""
    harness.slack.fail_next("chat.postMessage", error="not_in_channel")

    await harness.push_event(
        app_mention("<@UBOT> hi", "U1", "C9", harness.slack.next_ts()), event_id="Ev1"
    )

    assert harness.llm.requests == []
    assert "not_in_channel" in caplog.text
    assert "invite the bot" in caplog.text


async def test_non_admin_cannot_disable(harness: Harness) -> None:
    """A regular member's /actions disable is refused and the action stays offered."""
    harness.llm.reply("ok")

    response = await harness.slash("disable check_inventory", user="U1")
    await harness.push_event(message("hi", "U1", "D1", harness.slack.next_ts()), event_id="Ev1")

    assert response["text"] == wording.NOT_ADMIN
    assert response["response_type"] == "ephemeral"
    assert harness.tools_offered(0) == ["check_inventory"]
    assert await harness.store.action_states() == {}


async def test_admin_disable_removes_tool_and_stats_show_counts(harness: Harness) -> None:
    """An admin's disable takes the tool out of the next turn; stats show recorded calls."""
    harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.reply("4 in stock.")
    harness.llm.reply("I can't check stock right now.")
    await harness.push_event(message("stock?", "U1", "D1", harness.slack.next_ts()), event_id="Ev1")

    stats = await harness.slash("stats", user="UADMIN")
    disabled = await harness.slash("disable check_inventory", user="UADMIN")
    await harness.push_event(
        message("and now?", "U1", "D1", harness.slack.next_ts()), event_id="Ev2"
    )

    assert "check_inventory" in json.dumps(stats["blocks"])
    assert "1" in stats["text"]
    assert "disabled" in disabled["text"]
    assert harness.tools_offered(0) == ["check_inventory"]
    assert harness.tools_offered(2) == []
    state = (await harness.store.action_states())["check_inventory"]
    assert state.changed_by == "slack:UADMIN"


async def test_admin_id_of_another_workspace_is_refused(harness: Harness) -> None:
    """`slack:UADMIN` is an admin of the bot's own workspace only: the same user id sent
    from another team (a shared channel, another org) is refused and nothing changes."""
    response = await harness.slash("disable check_inventory", user="UADMIN", team="TOTHER")

    assert response["text"] == wording.NOT_ADMIN
    assert await harness.store.action_states() == {}
    assert harness.slack.calls("users.info") == []


async def test_workspace_admin_is_allowed(harness: Harness) -> None:
    """A workspace admin (per users.info) may use /actions without being listed."""
    harness.slack.add_user("UWS", is_admin=True)

    response = await harness.slash("list", user="UWS")

    assert "check_inventory" in response["text"]
    assert harness.slack.calls("users.info")[0]["user"] == "UWS"


async def test_workspace_owner_is_allowed_and_a_member_is_asked_once(harness: Harness) -> None:
    """An owner (not flagged admin) may use /actions; a plain member is refused, and asked
    about only once within the cache time."""
    harness.slack.add_user("UOWN", is_owner=True)

    owner = await harness.slash("list", user="UOWN")
    first = await harness.slash("stats", user="U7")
    again = await harness.slash("show check_inventory", user="U7")

    assert "check_inventory" in owner["text"]
    assert first["text"] == again["text"] == wording.NOT_ADMIN
    assert [c["user"] for c in harness.slack.calls("users.info")] == ["UOWN", "U7"]


async def test_unknown_subcommand_gets_usage(harness: Harness) -> None:
    """A typo gets the usage text, not an error trace."""
    response = await harness.slash("dsable check_inventory", user="UADMIN")

    assert "Unknown subcommand 'dsable'" in response["text"]
    assert "/actions enable NAME" in response["text"]


async def test_rejected_bot_token_says_what_to_do(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel
) -> None:
    """A bad bot token fails startup with a message naming the variable and the fix."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(
        actions=ActionSet([], source="t"), store=store, webhooks=webhooks, result_chars=100
    )
    async with FakeSlack(valid_tokens={"xoxb-the-real-one", APP_TOKEN}) as slack:
        adapter = SlackAdapter(
            settings=settings_for(slack),
            engine=engine,
            admin=admin,
            store=store,
            turns=(turns := Turns()),
            inbox=Inbox(store, turns, metrics=engine.metrics),
        )
        with pytest.raises(ConfigError, match=r"SLACK_BOT_TOKEN.*invalid_auth.*xoxb-"):
            await adapter.start()
        await adapter.close()


async def test_http_mode_verifies_signatures(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel, llm: ScriptedLLM
) -> None:
    """In HTTP mode a forged signature gets 401 and runs nothing; a signed event is answered."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(
        actions=ActionSet([], source="t"), store=store, webhooks=webhooks, result_chars=100
    )
    llm.reply("Hello from HTTP mode.")
    async with FakeSlack() as slack:
        settings = settings_for(slack, slack_app_token=None, slack_signing_secret=SIGNING_SECRET)
        turns = Turns()
        adapter = SlackAdapter(
            settings=settings,
            engine=engine,
            admin=admin,
            store=store,
            turns=turns,
            inbox=Inbox(store, turns, metrics=engine.metrics),
        )
        http = HttpServer(port=0, host="127.0.0.1")
        http.add_route("POST", "/slack/events", adapter.handle_http)
        await adapter.start()
        await http.start()
        try:
            url = f"http://127.0.0.1:{http.port}/slack/events"
            body = json.dumps(
                event_callback(message("hi", "U1", "D1", slack.next_ts()), event_id="EvH")
            )
            async with aiohttp.ClientSession() as session:
                forged = signed_headers("not-the-secret", body)
                async with session.post(url, data=body, headers=forged) as response:
                    assert response.status == 401
                await turns.drain()
                assert llm.requests == []
                async with session.post(
                    url, data=body, headers=signed_headers(SIGNING_SECRET, body)
                ) as response:
                    assert response.status == 200
                await turns.drain()
        finally:
            await http.stop()
            await adapter.close()

    assert slack.calls("chat.update")[-1]["text"] == "Hello from HTTP mode."


async def test_rate_limited_post_is_retried(harness: Harness) -> None:
    """A 429 from chat.postMessage is retried after Retry-After and the answer arrives."""
    harness.slack.rate_limit_next("chat.postMessage", retry_after=1)
    harness.llm.reply("Here you go.")

    await harness.push_event(message("hi", "U1", "D1", harness.slack.next_ts()), event_id="Ev1")

    assert len(harness.slack.calls("chat.postMessage")) == 2
    assert harness.slack.calls("chat.update")[-1]["text"] == "Here you go."


async def test_file_share_without_text_is_ignored(harness: Harness) -> None:
    """A file shared without any text starts no turn and posts nothing."""
    upload = message("", "U1", "D1", harness.slack.next_ts(), subtype="file_share")

    await harness.push_event(upload, event_id="Ev1")

    assert harness.llm.requests == []
    assert harness.slack.calls("chat.postMessage") == []
