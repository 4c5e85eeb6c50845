"""Handing a Slack conversation to a person, under real slack-bolt against the fake Slack:
the summary in the handoff channel (once, also on a replay), silence in the conversation
until `/actions resume`, and a handoff channel the bot cannot post to failing startup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import inventory_action, make_engine
from test_slack import ARGS, STOCK, Harness, settings_for, slack_harness

from adapters.slack.adapter import SlackAdapter
from adapters.slack.format import to_mrkdwn
from adapters.slack.handoff import EVENT_TYPE
from bot import wording
from bot.actions.models import ActionSet
from bot.admin.operations import Admin
from bot.delivery import Inbox
from bot.errors import ConfigError
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.tasks import Turns
from bot.store import Store
from bot.types import IncomingMessage
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import FakeSlack, app_mention, message, slash_command_envelope

TEAM_CHANNEL = "CHAND"
HANDOFF = {"reason": "The customer wants a refund.", "summary": "Cracked screen, 4 in stock."}
TOLD = to_mrkdwn(wording.HANDED_OFF)


@pytest.fixture
async def harness(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    """Handoffs go to CHAND and ping the user group SOPS."""
    webhook_server.route("/inventory/check", json_handler(STOCK))
    async with slack_harness(
        [inventory_action(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
        settings={"handoff_channel": f"slack:{TEAM_CHANNEL}", "handoff_mention": "slack:SOPS"},
    ) as opened:
        yield opened


def summaries(harness: Harness) -> list[dict[str, Any]]:
    return [p for p in harness.slack.calls("chat.postMessage") if p["channel"] == TEAM_CHANNEL]


async def mention_and_hand_off(harness: Harness, *, event_id: str = "Ev1") -> str:
    """U1 asks in C1; the model checks stock, then hands over. Returns the thread's ts."""
    harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.tool_calls(("handoff_to_human", HANDOFF))
    ts = harness.slack.next_ts()
    await harness.push_event(
        app_mention("<@UBOT> I want a refund for my screen", "U1", "C1", ts), event_id=event_id
    )
    return ts


async def test_handoff_summary_silence_and_resume(harness: Harness) -> None:
    """The team gets one summary (ping, customer, question, why, what was tried, a link to
    the thread), the customer is told a person takes over, the bot says nothing to the next
    message in the thread, and after `/actions resume` in the channel it answers again."""
    thread = await mention_and_hand_off(harness)

    [summary] = summaries(harness)
    text = summary["text"]
    for part in (
        "<!subteam^SOPS>",
        "<@U1>",
        "I want a refund for my screen",
        "The customer wants a refund.",
        "Cracked screen, 4 in stock.",
        "Check Inventory",
        f"<https://fake-team.slack.com/archives/C1/p{thread.replace('.', '')}|",
    ):
        assert part in text
    [link] = harness.slack.calls("chat.getPermalink")
    assert (link["channel"], link["message_ts"]) == ("C1", thread)
    assert harness.slack.calls("chat.update")[-1]["text"] == TOLD

    asked = len(harness.llm.requests)
    follow_up = message(
        "hello?", "U1", "C1", harness.slack.next_ts(), channel_type="channel", thread_ts=thread
    )
    await harness.push_event(follow_up, event_id="Ev2")
    assert len(harness.llm.requests) == asked
    assert len(harness.slack.calls("chat.postMessage")) == 2  # placeholder and summary only

    resumed = await harness.slash("resume", user="UADMIN")
    assert resumed["text"] == f"I answer again in slack:C1:{thread}."
    harness.llm.reply("I'm back: how can I help?")
    again = message(
        "still there?",
        "U1",
        "C1",
        harness.slack.next_ts(),
        channel_type="channel",
        thread_ts=thread,
    )
    await harness.push_event(again, event_id="Ev3")
    assert harness.slack.calls("chat.update")[-1]["text"] == "I'm back: how can I help?"
    assert len(summaries(harness)) == 1


async def test_a_replay_after_the_summary_does_not_post_it_again(harness: Harness) -> None:
    """The summary was posted but telling the customer failed: the replay tells the customer
    from the kept reply, without asking the model again or posting a second summary."""
    harness.slack.fail_next("chat.update", "message_not_found", when=lambda p: "_" not in p["text"])

    await mention_and_hand_off(harness)
    assert harness.slack.calls("chat.update")[-1]["text"] == TOLD  # the one that failed
    assert await harness.store.inbox_counts() == {"pending": 1, "done": 0, "failed": 0}
    asked = len(harness.llm.requests)

    assert await harness.adapter.inbox.recover() == 1
    await harness.turns.drain()

    assert len(summaries(harness)) == 1
    assert len(harness.llm.requests) == asked
    assert [u["text"] for u in harness.slack.calls("chat.update")][-2:] == [TOLD, TOLD]
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def test_a_summary_that_cannot_be_posted_is_tried_again(harness: Harness) -> None:
    """Slack refuses the summary: the customer is not yet told, the message stays pending
    with its reply; the next attempt posts the summary once and tells the customer."""
    harness.slack.fail_next(
        "chat.postMessage", "not_in_channel", when=lambda p: p["channel"] == TEAM_CHANNEL
    )

    await mention_and_hand_off(harness)
    assert len(summaries(harness)) == 1
    assert all(u["text"] != TOLD for u in harness.slack.calls("chat.update"))
    asked = len(harness.llm.requests)

    assert await harness.adapter.inbox.recover() == 1
    await harness.turns.drain()

    assert len(summaries(harness)) == 2  # the refused one and the posted one
    assert len(harness.slack.messages(TEAM_CHANNEL)) == 1
    assert len(harness.llm.requests) == asked
    assert harness.slack.calls("chat.update")[-1]["text"] == TOLD


async def test_a_summary_posted_but_not_recorded_is_found_not_reposted(harness: Harness) -> None:
    """A process died between posting the summary and recording it: the next attempt finds
    it in the handoff channel by the event it names, and does not post another."""
    asked = harness.slack.next_ts()
    await harness.adapter.client.chat_postMessage(
        channel=TEAM_CHANNEL,
        text="A customer needs a person.",
        metadata={"event_type": EVENT_TYPE, "event_payload": {"event": "slack:EvDied"}},
    )
    incoming = IncomingMessage(
        platform="slack",
        conversation=f"C1:{asked}",
        user_id="U1",
        text="I want a refund",
        event_id="EvDied",
        channel_id="C1",
    )
    route = {"channel": "C1", "thread_ts": asked, "ts": asked, "handoff_posting": True}
    await harness.store.receive(incoming, route=route, owner="gone:1", lease_seconds=0)
    harness.llm.tool_calls(("handoff_to_human", HANDOFF))

    await harness.adapter.inbox.recover(at_start=True)
    await harness.turns.drain()

    assert len(summaries(harness)) == 1  # the dead process's, posted by the test
    assert harness.slack.calls("chat.update")[-1]["text"] == TOLD


@pytest.mark.parametrize("problem", ["not_a_member", "channel_not_found"])
async def test_a_handoff_channel_the_bot_cannot_post_to_fails_startup(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel, problem: str
) -> None:
    """Startup (and `check`) stops with one line naming the channel and what to do when
    the bot is not a member of the handoff channel or Slack cannot find it."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(
        actions=ActionSet([], source="t"), store=store, webhooks=webhooks, result_chars=100
    )
    async with FakeSlack() as slack:
        if problem == "not_a_member":
            slack.add_channel(TEAM_CHANNEL, is_member=False)
        else:
            slack.fail_next("conversations.info", "channel_not_found", times=2)
        adapter = SlackAdapter(
            settings=settings_for(slack, handoff_channel=f"slack:{TEAM_CHANNEL}"),
            engine=engine,
            admin=admin,
            store=store,
            turns=(turns := Turns()),
            inbox=Inbox(store, turns, metrics=engine.metrics),
        )
        with pytest.raises(ConfigError) as started:
            await adapter.start()
        with pytest.raises(ConfigError) as checked:
            await adapter.check()
        await adapter.close()

    line = str(started.value)
    assert line == str(checked.value)
    assert "\n" not in line
    assert f"ACTIONBOT_HANDOFF_CHANNEL slack:{TEAM_CHANNEL}" in line
    assert ("/invite @ActionBot" if problem == "not_a_member" else "channel_not_found") in line
    assert slack.calls("apps.connections.open") == []  # nothing connected


async def test_a_handoff_in_an_assistant_thread_asks_the_team_to_write_directly(
    harness: Harness,
) -> None:
    """In an assistant thread (private to the customer) the summary says to write to the
    customer instead of linking, the customer's answer is streamed, the thread stays quiet,
    and `/actions resume` run in the DM brings the bot back in it."""
    thread = "1700000000.000050"
    harness.llm.tool_calls(("handoff_to_human", HANDOFF))

    ask = message("A person, please", "U1", "D1", harness.slack.next_ts(), thread_ts=thread)
    await harness.push_event(ask, event_id="EvDM1")

    [summary] = summaries(harness)
    assert "write to <@U1>" in summary["text"]
    assert f"/actions resume slack:D1:{thread}" in summary["text"]
    assert harness.slack.calls("chat.getPermalink") == []
    [stream] = harness.slack.streams("D1")
    assert stream["text"] == wording.HANDED_OFF
    asked = len(harness.llm.requests)
    quiet = message("hello?", "U1", "D1", harness.slack.next_ts(), thread_ts=thread)
    await harness.push_event(quiet, event_id="EvDM2")
    assert len(harness.llm.requests) == asked

    url = harness.slack.response_url("dm-resume")
    envelope = slash_command_envelope(
        text="resume", user_id="UADMIN", channel_id="D1", response_url=url
    )
    await harness.slack.wait_for_ack(await harness.slack.push(envelope))
    await harness.turns.drain()
    [resumed] = harness.slack.responses("dm-resume")
    assert resumed["text"] == f"I answer again in slack:D1:{thread}."
