"""The status message of a Discord turn (`adapters.discord.progress`, `calls`) under real
discord.py, against the fake Discord, the scripted LLM and the HTTPS webhook fake.

Webhook handlers and the model's last answer are held on events the test sets, so each
state of the status message is waited for in the fake (never slept for) before the next one
is let happen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from conftest import build_action, inventory_action
from test_discord import ARGS, DM_CHANNEL, Harness, discord_harness, messages_in

from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient, canonical_json, idempotency_key
from bot.store import Store
from bot.types import ActionResult, IncomingMessage, Outcome
from fakes.discord_server import USER_ID, new_snowflake
from fakes.https_server import WebhookServer
from fakes.openai_server import Reply, ScriptedLLM

Message = dict[str, Any]


def held(gate: asyncio.Event, payload: Any, *, status: int = 200) -> Any:
    """A webhook handler that answers `payload` once `gate` is set."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await gate.wait()
        return web.json_response(payload, status=status)

    return handle


@pytest.fixture
async def harness(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    """A connected adapter over `check_inventory`."""
    async with discord_harness(
        [inventory_action(webhook_server)],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as opened:
        yield opened


@pytest.fixture
async def gate() -> AsyncIterator[asyncio.Event]:
    """An event the webhook handlers wait for; set at the end in any case, so no handler
    is left waiting when the servers stop."""
    event = asyncio.Event()
    yield event
    event.set()


def call_lines(message: Message) -> list[str]:
    """The call list of a status message, one line per call ([] without the embed)."""
    embeds = message.get("embeds") or []
    return embeds[0]["description"].split("\n") if embeds else []


def status_messages(harness: Harness, channel: str) -> list[Message]:
    """The bot's messages in `channel` that show a call list, as the fake keeps them now."""
    return [
        m
        for m in harness.fake.messages.values()
        if m["channel_id"] == channel and m.get("embeds") and m.get("webhook_id") is None
    ]


async def status_message(
    harness: Harness,
    channel: str,
    shows: Callable[[list[str]], bool],
    *,
    besides: frozenset[str] = frozenset(),
) -> Message:
    """Wait until a status message in `channel` (other than those in `besides`) shows call
    lines for which `shows` holds."""
    found: list[Message] = []

    def seen() -> bool:
        found[:] = [
            m
            for m in status_messages(harness, channel)
            if m["id"] not in besides and shows(call_lines(m))
        ]
        return bool(found)

    await harness.fake.wait_until(seen, "a status message")
    return found[0]


async def test_status_embed_follows_each_call_and_becomes_the_answer(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
    gate: asyncio.Event,
) -> None:
    """Two calls in one round show ⏳ each in one embed, then ✅ and ⚠️ with the latency the
    call log recorded, all in the one message that is then edited into the answer."""
    webhook_server.route("/inventory/check", held(gate, {"in_stock": True, "quantity": 4}))
    webhook_server.route("/orders/lookup", held(gate, {"error": "down"}, status=500))
    lookup = build_action(
        webhook_server.url("/orders/lookup"), name="lookup_order", parameters=["order_id"]
    )
    answered = asyncio.Event()
    async with discord_harness(
        [inventory_action(webhook_server), lookup],
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as harness:
        llm.tool_calls(("check_inventory", ARGS), ("lookup_order", {"order_id": "A-1"}))
        llm.hang(answered, then=Reply("4 in stock; order lookups are down right now."))
        await harness.say("Screens? And my order A-1?", channel_id=DM_CHANNEL, guild_id=None)

        running = await status_message(
            harness, DM_CHANNEL, lambda lines: lines == ["⏳ Check Inventory", "⏳ Lookup Order"]
        )
        gate.set()
        finished = await status_message(
            harness, DM_CHANNEL, lambda lines: not any("⏳" in line for line in lines)
        )
        [inventory, orders] = call_lines(finished)
        answered.set()
        await harness.turns.drain()

    stats = {s.action: s for s in await store.stats()}
    assert inventory == f"✅ Check Inventory · {stats['check_inventory'].avg_latency_ms:.0f} ms"
    assert orders == f"⚠️ Lookup Order · {stats['lookup_order'].avg_latency_ms:.0f} ms"
    assert stats["lookup_order"].failures == {"http_error": 1}
    assert finished["id"] == running["id"]
    [post] = harness.fake.requests_to("POST", messages_in(DM_CHANNEL))
    assert post.json is not None
    assert post.json["content"] in {"*Checking inventory…*", "*Looking up order…*"}
    assert call_lines(post.json)[0].startswith("⏳")
    edits = harness.fake.requests_to("PATCH", messages_in(DM_CHANNEL))
    assert {e.path for e in edits} == {f"/channels/{DM_CHANNEL}/messages/{running['id']}"}
    answer = harness.fake.messages[running["id"]]
    assert answer["content"] == "4 in stock; order lookups are down right now."
    assert answer["embeds"] == []


def answer_posted(harness: Harness, text: str) -> Callable[[], bool]:
    """Whether `text` was posted in the DM as a new message (and Discord took it)."""

    def posted() -> bool:
        return any(
            r.json is not None and r.json.get("content") == text and r.status == 200
            for r in harness.fake.requests_to("POST", messages_in(DM_CHANNEL))
        )

    return posted


@pytest.mark.parametrize(
    ("cause", "status"),
    [("deleted", 404), ("no permission", 403)],
)
async def test_status_message_that_cannot_be_edited_still_answers_once(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    cause: str,
    status: int,
) -> None:
    """Two messages whose status message cannot be edited (deleted by a moderator, or the
    permission taken away): each answer arrives once as a new message, each entry is
    settled, and the operator gets one warning for the cause, not one per message."""
    caplog.set_level(logging.WARNING)
    for n in range(2):
        gate = asyncio.Event()
        harness.server.route("/inventory/check", held(gate, {"in_stock": True}))
        harness.llm.tool_calls(("check_inventory", ARGS))
        harness.llm.reply(f"Answer {n}.")
        if cause == "no permission":
            harness.fake.fail_next(
                "PATCH",
                messages_in(DM_CHANNEL),
                status=403,
                code=50013,
                message="Missing Permissions",
            )
        earlier = frozenset(m["id"] for m in status_messages(harness, DM_CHANNEL))
        await harness.say(f"Question {n}?", channel_id=DM_CHANNEL, guild_id=None)
        shown = await status_message(
            harness, DM_CHANNEL, lambda lines: lines == ["⏳ Check Inventory"], besides=earlier
        )
        if cause == "deleted":
            del harness.fake.messages[shown["id"]]
        gate.set()
        await harness.fake.wait_until(answer_posted(harness, f"Answer {n}."), f"answer {n}")
        await harness.turns.drain()

    posted = [
        r.json["content"]
        for r in harness.fake.requests_to("POST", messages_in(DM_CHANNEL))
        if r.json and r.status == 200
    ]
    assert posted.count("Answer 0.") == 1
    assert posted.count("Answer 1.") == 1
    edits = harness.fake.requests_to("PATCH", messages_in(DM_CHANNEL))
    assert [e.status for e in edits] == [status, status]  # one try per message, then given up
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("adapters")
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "status message" in warnings[0].getMessage()
    assert await harness.store.inbox_counts() == {"pending": 0, "done": 2, "failed": 0}


async def test_replay_shows_recorded_calls_in_the_earlier_status_message(
    harness: Harness,
) -> None:
    """A turn interrupted after its call was recorded is replayed at the next start: the
    status message the earlier attempt posted shows that call done (with its recorded
    latency) and then becomes the answer; nothing new is posted and nothing is called again."""
    await harness.barrier()  # the customer has written in the DM before
    dm = await harness.adapter.client.fetch_channel(int(DM_CHANNEL))
    note = await dm.send("*Checking inventory…*")  # type: ignore[union-attr]
    event = new_snowflake()
    incoming = IncomingMessage(
        platform="discord",
        conversation=f"dm:{DM_CHANNEL}",
        user_id=USER_ID,
        text="Screens?",
        event_id=event,
    )
    route = {"channel": int(DM_CHANNEL), "message": int(event), "note": note.id}
    await harness.store.receive(incoming, route=route, owner="gone:1", lease_seconds=0)
    arguments = canonical_json(ARGS)
    key = idempotency_key(
        harness.adapter.engine.instance_key, f"discord:{event}", "check_inventory", arguments, 0
    )
    await harness.store.start_call(
        f"discord:{event}", key, ordinal=0, action="check_inventory", arguments=arguments
    )
    recorded = ActionResult(
        action="check_inventory", call_id=key, outcome=Outcome.SUCCESS, latency_ms=42, status=200
    )
    await harness.store.record_call(recorded, event_key=f"discord:{event}")
    answered = asyncio.Event()
    harness.llm.tool_calls(("check_inventory", ARGS))
    harness.llm.hang(answered, then=Reply("Yes, 4 in stock."))
    posts_before = len(harness.fake.requests_to("POST", messages_in(DM_CHANNEL)))

    assert await harness.adapter.inbox.recover(at_start=True) == 1
    shown = await status_message(
        harness, DM_CHANNEL, lambda lines: lines == ["✅ Check Inventory · 42 ms"]
    )
    answered.set()
    await harness.turns.drain()

    assert shown["id"] == str(note.id)
    assert len(harness.fake.requests_to("POST", messages_in(DM_CHANNEL))) == posts_before
    assert harness.server.requests == []
    assert harness.fake.messages[str(note.id)]["content"] == "Yes, 4 in stock."
    assert harness.fake.messages[str(note.id)]["embeds"] == []
