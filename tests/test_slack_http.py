"""Slack HTTP mode: signed messages and mentions are written to the inbox and acknowledged
without bolt's dispatch; everything else still goes through bolt. Real slack-bolt, the fake
Slack Web API, the scripted LLM and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from test_slack import SIGNING_SECRET, STOCK, Harness, slack_harness

from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.http import HttpServer
from bot.store import Store
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import (
    BOT_USER_ID,
    app_mention,
    event_callback,
    message,
    signed_headers,
)


class Endpoint:
    """`POST /slack/events` of a running HTTP server in front of the harness's adapter."""

    def __init__(self, harness: Harness, url: str, session: aiohttp.ClientSession) -> None:
        self.harness = harness
        self.url = url
        self.session = session

    async def post(self, body: dict[str, Any], **headers: Any) -> tuple[int, str]:
        """Post `body` signed with the app's secret (`headers` passed to `signed_headers`),
        then wait for the turn it started, if any."""
        raw = json.dumps(body)
        signed = signed_headers(SIGNING_SECRET, raw, **headers)
        async with self.session.post(self.url, data=raw, headers=signed) as response:
            status, text = response.status, await response.text()
        await self.harness.turns.drain()
        return status, text


@pytest.fixture
async def endpoint(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Endpoint]:
    webhook_server.route("/inventory/check", json_handler(STOCK))
    http_mode = {"slack_app_token": None, "slack_signing_secret": SIGNING_SECRET}
    async with contextlib.AsyncExitStack() as stack:
        harness = await stack.enter_async_context(
            slack_harness(
                [],
                server=webhook_server,
                llm=llm,
                store=store,
                webhooks=webhooks,
                chat_model=chat_model,
                settings=http_mode,
            )
        )
        http = HttpServer(port=0, host="127.0.0.1")
        http.add_route("POST", "/slack/events", harness.adapter.handle_http)
        await http.start()
        stack.push_async_callback(http.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        yield Endpoint(harness, f"http://127.0.0.1:{http.port}/slack/events", session)


async def test_a_mention_is_acknowledged_without_a_web_api_call(endpoint: Endpoint) -> None:
    """The acknowledgement waits on the inbox only: bolt's authorization would ask Slack's
    `auth.test` on the first requests after a start, making them wait on the Web API."""
    slack = endpoint.harness.slack
    endpoint.harness.llm.reply("In stock.")
    checks_at_start = len(slack.calls("auth.test"))
    mention = app_mention(f"<@{BOT_USER_ID}> screens?", "U1", "C1", slack.next_ts())

    status, _ = await endpoint.post(event_callback(mention, event_id="EvFast1"))

    assert status == 200
    assert len(slack.calls("auth.test")) == checks_at_start
    assert slack.calls("chat.update")[-1]["text"] == "In stock."
    assert endpoint.harness.llm.requests[-1]["messages"][-1]["content"] == "screens?"


async def test_a_retried_event_is_answered_once(endpoint: Endpoint) -> None:
    slack = endpoint.harness.slack
    endpoint.harness.llm.reply("Once.")
    body = event_callback(message("hi", "U1", "D1", slack.next_ts()), event_id="EvFast2")

    first, _ = await endpoint.post(body)
    again, _ = await endpoint.post(body, retry_num=1, retry_reason="http_timeout")

    assert (first, again) == (200, 200)
    assert len(endpoint.harness.llm.requests) == 1
    assert [m["text"] for m in slack.messages("D1")] == ["Once."]


async def test_a_stale_or_forged_event_is_refused_and_runs_nothing(endpoint: Endpoint) -> None:
    """A correctly signed event older than five minutes (a replayed capture) and a forged one
    are both 401, from bolt."""
    slack = endpoint.harness.slack
    stale = str(int(time.time()) - 6 * 60)
    body = event_callback(message("hi", "U1", "D1", slack.next_ts()), event_id="EvOld")

    status, _ = await endpoint.post(body, timestamp=stale)
    raw = json.dumps(body)
    forged = signed_headers("not-the-secret", raw)
    async with endpoint.session.post(endpoint.url, data=raw, headers=forged) as response:
        forged_status = response.status
    await endpoint.harness.turns.drain()

    assert (status, forged_status) == (401, 401)
    assert endpoint.harness.llm.requests == []
    assert slack.messages("D1") == []


async def test_the_bots_own_message_is_ignored(endpoint: Endpoint) -> None:
    slack = endpoint.harness.slack
    own = message("an answer", BOT_USER_ID, "D1", slack.next_ts())

    status, _ = await endpoint.post(event_callback(own, event_id="EvSelf"))

    assert status == 200
    assert endpoint.harness.llm.requests == []
    assert slack.calls("chat.postMessage") == []


async def test_an_event_that_cannot_be_taken_is_a_500_for_slack_to_send_again(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """A mention without its channel cannot be written down: 500 (Slack sends it again)
    and the reason in the log, never a 200 that would lose it."""
    mention = app_mention("<@UBOT> hi", "U1", "C1", endpoint.harness.slack.next_ts())
    del mention["channel"]

    with caplog.at_level(logging.ERROR):
        status, _ = await endpoint.post(event_callback(mention, event_id="EvBroken"))

    assert status == 500
    assert "Slack event EvBroken could not be taken" in caplog.text
    assert endpoint.harness.llm.requests == []


async def test_other_requests_still_go_through_bolt(endpoint: Endpoint) -> None:
    """URL verification is bolt's: it answers the challenge."""
    body = {"type": "url_verification", "challenge": "c-123", "token": "t"}

    status, text = await endpoint.post(body)

    assert status == 200
    assert "c-123" in text
