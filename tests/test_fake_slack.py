"""The fake Slack speaks the Web API and Socket Mode the real slack_sdk and slack_bolt expect."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from fakes.slack_server import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    FakeSlack,
    app_mention,
    event_callback,
    events_api_envelope,
    message,
    sign,
    signed_headers,
    slash_command,
    slash_command_envelope,
)

SIGNING_SECRET = "test-signing-secret"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """A started fake Slack."""
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def web_client(slack: FakeSlack) -> AsyncWebClient:
    """A real Web API client with a bot token, pointed at the fake."""
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)


@pytest.fixture
def app(web_client: AsyncWebClient) -> AsyncApp:
    """A real bolt app whose Web API calls reach the fake."""
    return AsyncApp(client=web_client, signing_secret=SIGNING_SECRET)


@pytest.fixture
async def socket_mode(app: AsyncApp, slack: FakeSlack) -> AsyncIterator[AsyncSocketModeHandler]:
    """The app connected to the fake over Socket Mode, closed before the fake stops."""
    handler = AsyncSocketModeHandler(app, APP_TOKEN)
    await handler.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
    yield handler
    await handler.close_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated


async def test_post_message_is_recorded(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    """chat.postMessage answers like Slack and is recorded with its params and bearer token."""
    response = await web_client.chat_postMessage(channel="C1", text="hello", thread_ts="1.0")
    assert response["ok"] is True
    assert response["channel"] == "C1"
    assert response["message"]["text"] == "hello"
    assert response["message"]["bot_id"] == "BBOT"
    [params] = slack.calls("chat.postMessage")
    assert params == {"channel": "C1", "text": "hello", "thread_ts": "1.0"}
    assert slack.api_calls[0].headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert slack.messages("C1") == [response["message"]]


async def test_message_ts_values_increase(web_client: AsyncWebClient) -> None:
    """Each posted message gets a fresh, increasing Slack-style ts."""
    first = await web_client.chat_postMessage(channel="C1", text="one")
    second = await web_client.chat_postMessage(channel="C1", text="two")
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])


async def test_scripted_error_raises_slack_api_error(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    """A scripted not_in_channel surfaces as SlackApiError once, then calls succeed again."""
    slack.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(SlackApiError) as raised:
        await web_client.chat_postMessage(channel="C1", text="hello")
    assert raised.value.response["error"] == "not_in_channel"
    assert (await web_client.chat_postMessage(channel="C1", text="again"))["ok"] is True
    assert len(slack.calls("chat.postMessage")) == 2


async def test_rate_limit_is_a_429_with_retry_after(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    """A scripted rate limit reaches the client as HTTP 429, Retry-After and "ratelimited"."""
    slack.rate_limit_next("chat.update", retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        await web_client.chat_update(channel="C1", ts="1.0", text="edit")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"


async def test_auth_test_rejects_unknown_tokens() -> None:
    """With valid_tokens set, auth.test answers invalid_auth for any other token."""
    async with FakeSlack(valid_tokens={BOT_TOKEN}) as slack:
        good = await AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test()
        assert (good["user_id"], good["bot_id"], good["team_id"]) == (BOT_USER_ID, "BBOT", "T1")
        with pytest.raises(SlackApiError) as raised:
            await AsyncWebClient(token="xoxb-revoked", base_url=slack.api_url).auth_test()
        assert raised.value.response["error"] == "invalid_auth"


async def test_unknown_method_is_answered_and_recorded(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    """An unsupported method gets unknown_method, and the call is still recorded."""
    with pytest.raises(SlackApiError) as raised:
        await web_client.api_call("reactions.add", params={"name": "eyes"})
    assert raised.value.response["error"] == "unknown_method"
    assert slack.calls("reactions.add") == [{"name": "eyes"}]


async def test_users_info_reports_admins(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    """Registered users carry is_admin/is_owner; other ids are plain members."""
    slack.add_user("UADMIN", is_admin=True)
    slack.add_user("UOWNER", is_owner=True)
    admin = (await web_client.users_info(user="UADMIN"))["user"]
    owner = (await web_client.users_info(user="UOWNER"))["user"]
    member = (await web_client.users_info(user="U2"))["user"]
    assert (admin["is_admin"], admin["is_owner"]) == (True, False)
    assert (owner["is_admin"], owner["is_owner"]) == (False, True)
    assert (member["id"], member["is_admin"], member["is_owner"]) == ("U2", False, False)


async def test_update_and_delete_track_messages(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    """chat.update and chat.delete change the fake's messages and need an existing ts."""
    posted = await web_client.chat_postMessage(channel="C1", text="thinking…")
    await web_client.chat_update(channel="C1", ts=posted["ts"], text="done")
    assert [m["text"] for m in slack.messages("C1")] == ["done"]
    await web_client.chat_delete(channel="C1", ts=posted["ts"])
    assert slack.messages("C1") == []
    with pytest.raises(SlackApiError) as raised:
        await web_client.chat_update(channel="C1", ts=posted["ts"], text="late")
    assert raised.value.response["error"] == "message_not_found"


async def test_other_methods_answer(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    """Ephemeral posts, conversation info and assistant status answer like Slack."""
    ephemeral = await web_client.chat_postEphemeral(channel="C1", user="U1", text="psst")
    dm = await web_client.conversations_info(channel="D1")
    public = await web_client.conversations_info(channel="C1")
    status = await web_client.assistant_threads_setStatus(
        channel_id="D1", thread_ts="1.0", status="is thinking…"
    )
    assert ephemeral["message_ts"]
    assert dm["channel"]["is_im"] is True
    assert (public["channel"]["is_channel"], public["channel"]["is_private"]) == (True, False)
    assert status["ok"] is True
    assert slack.calls("assistant.threads.setStatus")[0]["status"] == "is thinking…"


async def test_app_mention_over_socket_mode(
    slack: FakeSlack, app: AsyncApp, socket_mode: AsyncSocketModeHandler
) -> None:
    """A pushed app_mention is acked and the bolt handler's say() reaches chat.postMessage."""

    @app.event("app_mention")
    async def answer(event: dict[str, Any], say: AsyncSay) -> None:
        await say(text=f"echo: {event['text']}", thread_ts=event["ts"])

    mention = app_mention(f"<@{BOT_USER_ID}> hi", "U1", "C1", slack.next_ts())
    envelope_id = await slack.push(events_api_envelope(mention, event_id="Ev1"))
    assert await slack.wait_for_ack(envelope_id) == {"envelope_id": envelope_id}
    [posted] = await slack.wait_for_call("chat.postMessage")
    assert posted["text"] == f"echo: <@{BOT_USER_ID}> hi"
    assert (posted["channel"], posted["thread_ts"]) == ("C1", mention["ts"])
    assert len(slack.calls("apps.connections.open")) == 1
    assert len(slack.calls("auth.test")) == 1


async def test_slash_command_over_socket_mode(
    slack: FakeSlack, app: AsyncApp, socket_mode: AsyncSocketModeHandler
) -> None:
    """A slash command's ack() text rides on the socket ack and respond() hits the response URL."""

    @app.command("/actions")
    async def actions(command: dict[str, Any], ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack(f"Working on {command['text']}…")
        await respond(text="Here are the actions", response_type="ephemeral")

    envelope = slash_command_envelope("/actions", "list", response_url=slack.response_url("cmd"))
    envelope_id = await slack.push(envelope)
    ack = await slack.wait_for_ack(envelope_id)
    assert ack["payload"] == {"text": "Working on list…"}
    [response] = await slack.wait_for_response("cmd")
    assert response["text"] == "Here are the actions"
    assert response["response_type"] == "ephemeral"


async def test_event_retries_show_as_headers(
    slack: FakeSlack, app: AsyncApp, socket_mode: AsyncSocketModeHandler
) -> None:
    """Envelope retry fields reach bolt as x-slack-retry-* headers, "0" on a first delivery."""
    seen: list[tuple[str, str]] = []

    @app.event("message")
    async def record(request: AsyncBoltRequest, say: AsyncSay) -> None:
        seen.append(
            (request.headers["x-slack-retry-num"][0], request.headers["x-slack-retry-reason"][0])
        )
        await say("seen")

    first = message("hi", "U1", "D1", slack.next_ts())
    await slack.push(events_api_envelope(first, event_id="Ev1"))
    await slack.wait_for_call("chat.postMessage")
    await slack.push(
        events_api_envelope(first, event_id="Ev1", retry_attempt=1, retry_reason="timeout")
    )
    await slack.wait_for_call("chat.postMessage", 2)
    assert seen == [("0", ""), ("1", "timeout")]


async def test_client_reconnects_after_disconnect(
    slack: FakeSlack, app: AsyncApp, socket_mode: AsyncSocketModeHandler
) -> None:
    """After a disconnect message the client opens a new socket, which then gets envelopes."""

    @app.event("message")
    async def ignore() -> None:
        return None

    await slack.send_disconnect()
    await slack.wait_for_connection(count=2)
    envelope_id = await slack.push(
        events_api_envelope(message("hi", "U1", "D1", "1.0"), event_id="Ev2")
    )
    await slack.wait_for_ack(envelope_id)
    assert len(slack.calls("apps.connections.open")) == 2


def test_sign_matches_slack_sdk() -> None:
    """sign() computes the same v0 signature as slack_sdk's verifier."""
    body = urlencode(slash_command())
    expected = SignatureVerifier(SIGNING_SECRET).generate_signature(
        timestamp="1700000000", body=body
    )
    assert sign(SIGNING_SECRET, "1700000000", body) == expected


async def test_signed_requests_pass_bolt_verification(slack: FakeSlack, app: AsyncApp) -> None:
    """Bolt's HTTP endpoint accepts signed slash commands and events and rejects a bad signature."""

    @app.command("/actions")
    async def actions(ack: AsyncAck) -> None:
        await ack("listed")

    @app.event("app_mention")
    async def mention(ack: AsyncAck) -> None:
        await ack()

    runner = web.AppRunner(app.web_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    command = urlencode(slash_command())
    event = json.dumps(event_callback(app_mention("hi", "U1", "C1", "1.0"), event_id="Ev1"))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url, data=command, headers=signed_headers(SIGNING_SECRET, command)
            ) as r:
                assert (r.status, await r.text()) == (200, "listed")
            async with http.post(
                url, data=event, headers=signed_headers(SIGNING_SECRET, event)
            ) as r:
                assert r.status == 200
            async with http.post(url, data=command, headers=signed_headers("wrong", command)) as r:
                assert r.status == 401
    finally:
        await runner.cleanup()


async def test_streams_keep_their_text_and_task_cards(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    """startStream, appendStream and stopStream build one thread reply: the text grows, each
    task card keeps its latest state, and a stopped stream refuses more text."""
    card = {"type": "task_update", "id": "t1", "title": "Check Inventory"}
    started = await web_client.chat_startStream(
        channel="D1", thread_ts="1.0", chunks=[{**card, "status": "in_progress"}]
    )
    await web_client.chat_appendStream(
        channel="D1", ts=started["ts"], chunks=[{**card, "status": "complete", "output": "12 ms"}]
    )
    await web_client.chat_appendStream(channel="D1", ts=started["ts"], markdown_text="**4** ")
    await web_client.chat_stopStream(channel="D1", ts=started["ts"], markdown_text="in stock")

    stream = slack.stream("D1", started["ts"])
    assert (stream["text"], stream["thread_ts"], stream["streaming"]) == (
        "**4** in stock",
        "1.0",
        False,
    )
    assert stream["tasks"] == {"t1": {**card, "status": "complete", "output": "12 ms"}}
    assert slack.streams("D1") == [stream]
    with pytest.raises(SlackApiError) as raised:
        await web_client.chat_appendStream(channel="D1", ts=started["ts"], markdown_text="late")
    assert raised.value.response["error"] == "message_not_in_streaming_state"


async def test_assistant_methods_permalink_and_scripted_failures(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    """Prompts (one to four), titles and permalinks answer like Slack; a failure scripted
    for matching calls only lets the others through; a channel can lack the bot."""
    prompts = [{"title": "Stock?", "message": "Do you have screens?"}]
    await web_client.assistant_threads_setSuggestedPrompts(
        channel_id="D1", thread_ts="1.0", prompts=prompts
    )
    await web_client.assistant_threads_setTitle(channel_id="D1", thread_ts="1.0", title="Stock")
    link = await web_client.chat_getPermalink(channel="C1", message_ts="1700000000.000100")
    slack.fail_next("chat.startStream", "unknown_method", when=lambda p: p["channel"] == "D2")
    await web_client.chat_startStream(channel="D1", thread_ts="1.0")
    with pytest.raises(SlackApiError) as raised:
        await web_client.chat_startStream(channel="D2", thread_ts="1.0")
    slack.add_channel("CHAND", is_member=False)
    info = await web_client.conversations_info(channel="CHAND")

    assert slack.calls("assistant.threads.setSuggestedPrompts")[0]["prompts"] == prompts
    assert slack.calls("assistant.threads.setTitle")[0]["title"] == "Stock"
    assert link["permalink"] == "https://fake-team.slack.com/archives/C1/p1700000000000100"
    assert raised.value.response["error"] == "unknown_method"
    assert info["channel"]["is_member"] is False
    with pytest.raises(SlackApiError):
        await web_client.assistant_threads_setSuggestedPrompts(channel_id="D1", prompts=prompts * 5)
