"""Confirmation cards: a `confirm = true` call waits for the asking user's click, under real
slack-bolt against the fake Slack (Socket Mode, and HTTP mode across a restart), and on the
console as a y/N question."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from conftest import LIMITS, build_action, make_engine
from deployment import SECRETS, Deployment
from test_discord import DM_CHANNEL, discord_harness, messages_in
from test_slack import Harness, slack_harness

from adapters.console import ConsoleAdapter
from bot import wording
from bot.actions.models import Action, ActionSet
from bot.admin.operations import Admin
from bot.delivery import Inbox
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.metrics import Metrics
from bot.runtime.tasks import Turns
from bot.store import Store
from fakes.discord_server import USER_ID, component_interaction, user
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import (
    block_actions,
    events_api_envelope,
    interactive_envelope,
    message,
    signed_headers,
)

RETURN = {"order_id": "A-1001", "reason": "cracked screen"}


def create_return(server: WebhookServer) -> Action:
    action = build_action(
        server.url("/returns"), name="create_return", method="POST", parameters=list(RETURN)
    )
    return action.model_copy(update={"confirm": True, "display_name": "Create Return"})


@pytest.fixture
async def harness(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    webhook_server.route("/returns", json_handler({"return_id": "R-77"}))
    async with slack_harness(
        [create_return(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
        limits=dataclasses.replace(LIMITS, confirm_ttl=60),
    ) as opened:
        yield opened


async def ask_for_a_return(harness: Harness) -> dict[str, Any]:
    """U1 asks in a DM; the model wants create_return; returns the card as posted."""
    harness.llm.tool_calls(("create_return", RETURN))
    envelope = message("Please return order A-1001", "U1", "D1", harness.slack.next_ts())
    await harness.slack.wait_for_ack(
        await harness.slack.push(events_api_envelope(envelope, event_id="EvReturn"))
    )
    await harness.turns.drain()
    [card] = [m for m in harness.slack.messages("D1") if m.get("blocks")]
    return card


async def click(
    harness: Harness, card_ts: str, token: str, *, user: str, confirm: bool
) -> list[Any]:
    """A click on the card by `user`; what was posted to its response URL."""
    key = f"click-{user}-{len(harness.slack.api_calls)}"
    action_id = "actionbot_confirm" if confirm else "actionbot_cancel"
    payload = block_actions(
        action_id,
        token,
        user_id=user,
        channel_id="D1",
        message_ts=card_ts,
        response_url=harness.slack.response_url(key),
    )
    await harness.slack.wait_for_ack(await harness.slack.push(interactive_envelope(payload)))
    await harness.turns.drain()
    return harness.slack.responses(key)


def token_of(card: dict[str, Any]) -> str:
    blocks = card["blocks"] if isinstance(card["blocks"], list) else json.loads(card["blocks"])
    [actions] = [b for b in blocks if b["type"] == "actions"]
    return str(actions["elements"][0]["value"])


async def test_only_the_requester_confirms_and_a_double_click_calls_once(
    harness: Harness,
) -> None:
    """The card shows every value the model chose and nothing is sent; another user's click
    is refused privately; the requester's Confirm sends the call once (a second click is
    told it was answered), the turn resumes, the answer replaces the waiting line and the
    card shows the outcome."""
    card = await ask_for_a_return(harness)
    assert "A-1001" in json.dumps(card["blocks"])
    assert "cracked screen" in json.dumps(card["blocks"])
    assert harness.server.requests == []
    updates = [u["text"] for u in harness.slack.calls("chat.update")]
    assert updates == [f"_{wording.AWAITING_CONFIRMATION}_"]
    token = token_of(card)

    [refused] = await click(harness, card["ts"], token, user="U2", confirm=True)
    assert refused["text"] == "Only <@U1> can confirm this."
    assert harness.server.requests == []

    harness.llm.reply("Your return R-77 is created.")
    assert await click(harness, card["ts"], token, user="U1", confirm=True) == []
    [again] = await click(harness, card["ts"], token, user="U1", confirm=True)

    assert again["text"] == wording.ALREADY_ANSWERED
    [sent] = harness.server.requests
    assert json.loads(sent.body) == RETURN
    texts = {u["ts"]: u["text"] for u in harness.slack.calls("chat.update")}
    assert texts[card["ts"]] == "Confirmed by <@U1>."
    assert "Your return R-77 is created." in texts.values()
    tool = [m for m in harness.llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "R-77" in tool[-1]["content"]
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}


async def test_cancel_tells_the_model_the_customer_declined(harness: Harness) -> None:
    """Cancel: nothing is sent; the model is told the customer declined and answers."""
    card = await ask_for_a_return(harness)
    harness.llm.reply("No problem, I did not create the return.")

    await click(harness, card["ts"], token_of(card), user="U1", confirm=False)

    assert harness.server.requests == []
    tool = [m for m in harness.llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "declined" in tool[-1]["content"]
    texts = {u["ts"]: u["text"] for u in harness.slack.calls("chat.update")}
    assert texts[card["ts"]] == "Cancelled by <@U1>."


async def test_an_expired_card_counts_as_not_confirmed(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """Past ACTIONBOT_CONFIRM_TTL the parked turn is taken up again: the model is told it was
    not confirmed in time, the card says so, and a late click is refused privately."""
    limits = dataclasses.replace(LIMITS, confirm_ttl=0.2)
    async with slack_harness(
        [create_return(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
        limits=limits,
    ) as harness:
        card = await ask_for_a_return(harness)
        token = token_of(card)
        await asyncio.sleep(0.3)  # the card's lifetime passing, not a synchronisation
        llm.reply("The return was not confirmed in time.")
        assert await harness.adapter.inbox.recover() == 1
        await harness.turns.drain()
        [late] = await click(harness, card["ts"], token, user="U1", confirm=True)

    assert webhook_server.requests == []
    tool = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "did not confirm" in tool[-1]["content"]
    texts = {u["ts"]: u["text"] for u in harness.slack.calls("chat.update")}
    assert texts[card["ts"]] == wording.EXPIRED
    assert late["text"] == wording.EXPIRED


async def test_console_asks_y_or_n(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """On the console the card is a y/N question on the next line: y sends the call."""
    webhook_server.route("/returns", json_handler({"return_id": "R-78"}))
    action = create_return(webhook_server)
    engine = make_engine([action], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(
        actions=ActionSet([action], source="t"), store=store, webhooks=webhooks, result_chars=4000
    )
    out = _Out()
    console = ConsoleAdapter(
        engine=engine,
        admin=admin,
        conversation="local",
        out=out,  # type: ignore[arg-type]
        interactive=False,
        inbox=Inbox(store, Turns(), metrics=Metrics()),
    )
    llm.tool_calls(("create_return", RETURN))
    llm.reply("Return R-78 created.")

    async def lines() -> AsyncIterator[str]:
        for line in ("Please return order A-1001", "y"):
            yield line

    await console.run(lines())

    assert "Confirm Create Return? (order_id = A-1001, reason = cracked screen) [y/N]" in out.text
    assert out.text.rstrip().endswith("Return R-78 created.")
    assert len(webhook_server.requests) == 1


class _Out:
    """A text sink for the console (it writes and flushes)."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


CONFIRMING = """\
[[actions]]
name = "create_return"
display_name = "Create Return"
description = "Open a return for an order."
url = "{url}/returns"
method = "POST"
confirm = true

[[actions.parameters]]
name = "order_id"
type = "string"
description = "The order"
required = true
"""


async def test_a_restart_between_card_and_click_still_completes_once(
    deployment: Deployment,
) -> None:
    """HTTP mode: the card is posted, the bot is stopped and started again, then the click
    arrives (a signed interactivity request): the call is sent once and answered."""
    (deployment.cwd / "actions.toml").write_text(CONFIRMING.format(url=deployment.server.url("")))
    deployment.server.route("/returns", json_handler({"return_id": "R-79"}))
    deployment.llm.tool_calls(("create_return", {"order_id": "A-1"}))
    deployment.llm.reply("Return R-79 created.")

    async with deployment.running() as bot:
        port = await bot.port()
        await deployment.send_event(port, "Return A-1 please", event_id="Ev1")
        [card] = await wait_for_card(deployment)
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0
    assert deployment.server.requests == []

    async with deployment.running() as bot:
        port = await bot.port()
        payload = block_actions(
            "actionbot_confirm",
            token_of(card),
            user_id="U1",
            channel_id="D1",
            message_ts=card["ts"],
            response_url=deployment.slack.response_url("late"),
        )
        body = urlencode({"payload": json.dumps(payload)})
        headers = signed_headers(SECRETS["SLACK_SIGNING_SECRET"], body)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/slack/events"
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 200
        await deployment.slack.wait_until(
            lambda: any(
                u["text"] == "Return R-79 created." for u in deployment.slack.calls("chat.update")
            ),
            30,
            "the answer after the click",
        )
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0

    assert len(deployment.server.requests) == 1


async def wait_for_card(deployment: Deployment) -> list[dict[str, Any]]:
    await deployment.slack.wait_until(
        lambda: any(m.get("blocks") for m in deployment.slack.messages("D1")),
        30,
        "a confirmation card",
    )
    return [m for m in deployment.slack.messages("D1") if m.get("blocks")]


# --- Discord: an embed with persistent buttons ---------------------------------------------


async def test_discord_card_buttons_only_answer_the_requester_once(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """A DM asks for a return: an embed card with Confirm / Cancel (custom ids carrying the
    token) and nothing sent; another user's click gets an ephemeral refusal; the
    requester's Confirm sends the call once, the answer replaces the waiting line and the
    card shows the outcome without buttons; a second click is told it was answered."""
    webhook_server.route("/returns", json_handler({"return_id": "R-80"}))
    async with discord_harness(
        [create_return(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as harness:
        llm.tool_calls(("create_return", RETURN))
        await harness.say("Please return A-1001", channel_id=DM_CHANNEL, guild_id=None)
        [card] = await discord_card(harness)
        assert harness.server.requests == []
        fields = {f["name"]: f["value"] for f in card["embeds"][0]["fields"]}
        assert fields == RETURN
        confirm_id = card["components"][0]["components"][0]["custom_id"]
        assert confirm_id.startswith("actionbot:confirm:")

        other = user("5555", "mallory")
        refused = await press(harness, confirm_id, card, invoker=other)
        assert refused["type"] == 4
        assert refused["data"]["flags"] & 64  # ephemeral
        assert refused["data"]["content"] == f"Only <@{USER_ID}> can confirm this."

        llm.reply("Return R-80 created.")
        accepted = await press(harness, confirm_id, card)
        assert accepted["type"] == 6  # acknowledged; the turn answers in the DM
        again = await press(harness, confirm_id, card)
        assert again["data"]["content"] == wording.ALREADY_ANSWERED

    assert len(webhook_server.requests) == 1
    edits = [r.json for r in harness.fake.requests_to("PATCH", messages_in(DM_CHANNEL))]
    assert any(e and e.get("content") == "Return R-80 created." for e in edits)
    closed = [e for e in edits if e and e.get("embeds")]
    assert closed[-1]["embeds"][0]["footer"]["text"] == f"Confirmed by <@{USER_ID}>."
    assert closed[-1]["components"] == []


async def discord_card(harness: Harness) -> list[dict[str, Any]]:
    """The card the bot posted (an embed with buttons), once its turn has parked: after
    the waiting line and the card."""
    await harness.fake.wait_for("POST", messages_in(DM_CHANNEL), count=2)
    await harness.turns.drain()
    return [
        dict(m)
        for m in harness.fake.messages.values()
        if m["channel_id"] == DM_CHANNEL and m.get("components")
    ]


async def press(
    harness: Harness, custom_id: str, card: dict[str, Any], *, invoker: Any = None
) -> dict[str, Any]:
    """Click a button of `card` as it was shown (a second click can race the edit the
    first one causes); the interaction callback the bot answered with."""
    payload = component_interaction(custom_id, card, **({"invoker": invoker} if invoker else {}))
    await harness.fake.dispatch("INTERACTION_CREATE", payload)
    [callback] = await harness.fake.wait_for(
        "POST", f"/interactions/{payload['id']}/{payload['token']}/callback"
    )
    await harness.turns.drain()
    return callback.json or {}


async def test_two_cards_in_one_round_each_send_their_call_once(harness: Harness) -> None:
    """One round asks for two returns: two cards; confirming the first sends it while the
    turn waits for the second; confirming the second sends it and the turn answers once."""
    second = {"order_id": "A-1002", "reason": "wrong colour"}
    harness.llm.tool_calls(("create_return", RETURN), ("create_return", second))
    event = message("Return both orders", "U1", "D1", harness.slack.next_ts())
    await harness.slack.wait_for_ack(
        await harness.slack.push(events_api_envelope(event, event_id="EvTwo"))
    )
    await harness.turns.drain()
    cards = [m for m in harness.slack.messages("D1") if m.get("blocks")]
    assert len(cards) == 2
    tokens = [token_of(card) for card in cards]

    await click(harness, cards[0]["ts"], tokens[0], user="U1", confirm=True)
    assert [json.loads(r.body)["order_id"] for r in harness.server.requests] == ["A-1001"]
    harness.llm.reply("Both returns are created.")
    await click(harness, cards[1]["ts"], tokens[1], user="U1", confirm=True)

    assert sorted(json.loads(r.body)["order_id"] for r in harness.server.requests) == [
        "A-1001",
        "A-1002",
    ]
    assert len(harness.llm.requests) == 2
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 1, "failed": 0}
    history = await harness.store.load_messages("slack:D1", limit=20)
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "tool", "assistant"]
