"""A fake Slack on loopback: Web API, Socket Mode websocket and response URLs, for tests.

The real `slack_sdk` / `slack_bolt` clients talk to it over HTTP and WebSocket, as
bolt-python's own `tests/mock_web_api_server` does::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
        app = AsyncApp(client=client)
        handler = AsyncSocketModeHandler(app, APP_TOKEN)
        await handler.connect_async()  # apps.connections.open, then the websocket
        envelope_id = await slack.push(events_api_envelope(app_mention(...), event_id="Ev1"))
        await slack.wait_for_ack(envelope_id)
        [posted] = await slack.wait_for_call("chat.postMessage")
        await handler.close_async()

Every Web API call is recorded (method, params, headers, token) before anything else, so a
call that failed is still visible. Failures are scripted per method (`fail_next`,
`rate_limit_next`) and reach the client exactly as Slack sends them: `{"ok": false, ...}`
with HTTP 200, or HTTP 429 with `Retry-After`. Waiting helpers block on a condition that
every change notifies, never on a sleep.

Module functions build what Slack sends: events (`app_mention`, `message`), their
`event_callback` wrapper, slash command payloads, Socket Mode envelopes, and signed headers
for posting the same payloads to an app's HTTP `/slack/events` endpoint.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiohttp import WSCloseCode, WSMsgType, web

from fakes.loopback import LoopbackServer

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
APP_ID = "A1"
FIRST_TS_SECONDS = 1_700_000_000
SCOPES = "app_mentions:read,chat:write,commands,im:history,users:read,channels:read,assistant:write"
STREAM_TEXT_LIMIT = 12_000
"""Characters of `markdown_text` Slack takes in one stream call."""

Params: TypeAlias = dict[str, Any]
Handler: TypeAlias = Callable[["ApiCall"], Params]


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the fake received it; `params` merges query and body."""

    method: str
    params: Params
    headers: Mapping[str, str]
    token: str | None


@dataclass(frozen=True)
class SlackUser:
    """A workspace member as `users.info` describes it."""

    id: str
    name: str
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    deleted: bool = False
    email: str | None = None
    """In `profile.email`, as Slack shows it to apps with `users:read.email`."""


@dataclass(frozen=True)
class SlackChannel:
    """A conversation as `conversations.info` describes it."""

    id: str
    name: str
    is_im: bool = False
    is_private: bool = False
    user: str | None = None
    is_member: bool = True
    is_archived: bool = False


@dataclass(frozen=True)
class _Failure:
    error: str
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    when: Callable[[Params], bool] | None = None
    """Only calls whose params match fail; others pass it by (it stays queued)."""


class SlackApiFailure(Exception):
    """Raised inside a method handler to answer `{"ok": false, "error": ...}`."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class FakeSlack(LoopbackServer):
    """Slack's Web API, Socket Mode and response URLs on one loopback port."""

    def __init__(
        self,
        *,
        valid_tokens: Collection[str] | None = None,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        team_id: str = TEAM_ID,
        app_id: str = APP_ID,
    ) -> None:
        super().__init__()
        self.valid_tokens = None if valid_tokens is None else frozenset(valid_tokens)
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.app_id = app_id
        self.api_calls: list[ApiCall] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.socket_messages: list[Any] = []
        self.connection_count = 0
        self._responses: defaultdict[str, list[Any]] = defaultdict(list)
        self._failures: defaultdict[str, deque[_Failure]] = defaultdict(deque)
        self._users: dict[str, SlackUser] = {}
        self._channels: dict[str, SlackChannel] = {}
        self._messages: defaultdict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._sockets: list[web.WebSocketResponse] = []
        self._tickets: set[str] = set()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "apps.connections.open": self._apps_connections_open,
            "assistant.threads.setStatus": self._assistant_threads_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_threads_set_prompts,
            "assistant.threads.setTitle": self._assistant_threads_set_title,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.update": self._views_update,
        }
        self.views: dict[str, dict[str, Any]] = {}
        """Modals opened (`views.open`) by view id, as last updated."""

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The fake's root URL, `http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The URL to pass to `AsyncWebClient(base_url=...)`."""
        return f"{self.url}/api/"

    def build_app(self) -> web.Application:
        """The Web API, the Socket Mode websocket and response URLs."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/socket-mode", self._handle_socket)
        app.router.add_post("/response/{key}", self._handle_response_url)
        return app

    async def release(self) -> None:
        """Close open websockets."""
        for socket in list(self._sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")

    # -- scripting and state -----------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error: str = "not_in_channel",
        *,
        times: int = 1,
        extra: Mapping[str, Any] | None = None,
        when: Callable[[Params], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` (those whose params satisfy `when`, if
        given) with `{"ok": false, "error": error}`."""
        failure = _Failure(error, extra=dict(extra or {}), when=when)
        self._failures[method].extend([failure] * times)

    def rate_limit_next(
        self,
        method: str,
        retry_after: int = 1,
        *,
        times: int = 1,
        when: Callable[[Params], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` (those whose params satisfy `when`, if
        given) with HTTP 429 and `Retry-After`."""
        failure = _Failure("ratelimited", 429, {"Retry-After": str(retry_after)}, when=when)
        self._failures[method].extend([failure] * times)

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        email: str | None = None,
    ) -> SlackUser:
        """Register a member for `users.info`; unregistered ids are plain members."""
        user = SlackUser(
            user_id, name or user_id.lower(), is_admin, is_owner, is_bot, deleted, email
        )
        self._users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_im: bool = False,
        is_private: bool = False,
        user: str | None = None,
        is_member: bool = True,
        is_archived: bool = False,
    ) -> SlackChannel:
        """Register a conversation; unregistered ids are typed by prefix (D: DM, G: private)
        and have the bot as a member."""
        channel = SlackChannel(
            channel_id,
            name or channel_id.lower(),
            is_im,
            is_private,
            user,
            is_member,
            is_archived,
        )
        self._channels[channel_id] = channel
        return channel

    def next_ts(self) -> str:
        """A fresh message timestamp, increasing across everything the fake hands out."""
        seconds, micros = divmod(next(self._ts) * 100, 1_000_000)
        return f"{FIRST_TS_SECONDS + seconds}.{micros:06d}"

    def calls(self, method: str) -> list[Params]:
        """The params of every call to `method` so far, oldest first."""
        return [call.params for call in self.api_calls if call.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages the bot posted in `channel` and has not deleted, with updates applied."""
        return list(self._messages[channel].values())

    def stream(self, channel: str, ts: str) -> dict[str, Any]:
        """A streamed message as it stands: `text` (the Markdown so far), `tasks` (each task
        card's latest state by id, in the order they first appeared), `streaming` (False
        once stopped) and every `chunks` entry received."""
        message = self._messages[channel].get(ts)
        if message is None or "streaming" not in message:
            raise AssertionError(f"FakeSlack: no streamed message {ts} in {channel}")
        return message

    def streams(self, channel: str) -> list[dict[str, Any]]:
        """Every streamed message of `channel`, oldest first."""
        return [m for m in self._messages[channel].values() if "streaming" in m]

    def response_url(self, key: str | None = None) -> str:
        """A response URL on the fake; what is posted to it is kept under `key`."""
        return f"{self.url}/response/{key or next(self._ids)}"

    def responses(self, key: str) -> list[Any]:
        """JSON bodies posted to `response_url(key)`, oldest first."""
        return list(self._responses[key])

    # A bounded wait is the point of these helpers, so the timeout is part of the signature.
    async def wait_for_call(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[Params]:
        """Wait until `method` was called `count` times; return the params of all its calls."""
        await self._wait(
            lambda: len(self.calls(method)) >= count,
            timeout,
            lambda: f"expected {count} {method} calls, got {self._called()}",
        )
        return self.calls(method)

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str = "the expected state",
    ) -> None:
        """Wait until `predicate()` holds, re-checked whenever the fake's state changes."""
        await self._wait(predicate, timeout, lambda: f"no {what}; calls: {len(self.api_calls)}")

    async def wait_for_response(
        self,
        key: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[Any]:
        """Wait until `count` bodies were posted to `response_url(key)`; return them all."""
        await self._wait(
            lambda: len(self._responses[key]) >= count,
            timeout,
            lambda: f"expected {count} posts to response URL {key!r}, got {self.responses(key)}",
        )
        return self.responses(key)

    # -- Socket Mode -------------------------------------------------------------------

    async def wait_for_connection(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `count` websockets have connected in total and one is open."""
        await self._wait(
            lambda: self.connection_count >= count and bool(self._sockets),
            timeout,
            lambda: f"expected connection #{count}, got {self.connection_count}",
        )

    async def push(self, envelope: dict[str, Any], timeout: float = 5.0) -> str:  # noqa: ASYNC109
        """Send an envelope on the newest open websocket (waiting for one); return its id."""
        await self.wait_for_connection(timeout=timeout)
        envelope = {"envelope_id": str(uuid.uuid4()), **envelope}
        await self._sockets[-1].send_json(envelope)
        return str(envelope["envelope_id"])

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait for the client's ack of `envelope_id`; return it (with any `payload`)."""
        await self._wait(
            lambda: envelope_id in self.acks,
            timeout,
            lambda: f"no ack for envelope {envelope_id}; acked: {list(self.acks)}",
        )
        return self.acks[envelope_id]

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell the connected client to reconnect, as Slack does before rotating a socket."""
        await self.wait_for_connection()
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
        await self._sockets[-1].send_json(message)

    # -- HTTP handlers -----------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = await _parse_call(method, request)
        await self._notify(lambda: self.api_calls.append(call))
        if self._failures[method] and self._fails(self._failures[method][0], call):
            return _failure_response(self._failures[method].popleft())
        try:
            self._check_token(call)
            handler = self._methods.get(method)
            if handler is None:
                raise SlackApiFailure("unknown_method")
            body = {"ok": True, **handler(call)}
        except SlackApiFailure as failure:
            body = {"ok": False, "error": failure.error}
            if failure.error == "unknown_method":
                body["req_method"] = method
        await self._notify(lambda: None)  # the call's effect (e.g. a posted message) is visible
        headers = {"x-oauth-scopes": SCOPES} if method == "auth.test" else {}
        return web.json_response(body, headers=headers)

    @staticmethod
    def _fails(failure: _Failure, call: ApiCall) -> bool:
        return failure.when is None or failure.when(call.params)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.match_info["key"]
        await self._notify(lambda: self._responses[key].append(body))
        return web.Response(text="ok")

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            raise web.HTTPUnauthorized(text="unknown Socket Mode ticket")
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        await socket.send_json(self._hello())
        await self._notify(lambda: self._opened(socket))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    await self._notify(functools.partial(self._received, message.data))
        finally:
            await self._notify(lambda: self._sockets.remove(socket))
        return socket

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self._sockets) + 1,
            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }

    def _opened(self, socket: web.WebSocketResponse) -> None:
        self._sockets.append(socket)
        self.connection_count += 1

    def _received(self, data: str) -> None:
        message = json.loads(data)
        self.socket_messages.append(message)
        if isinstance(message, dict) and "envelope_id" in message:
            self.acks[message["envelope_id"]] = message

    # -- Web API methods ---------------------------------------------------------------

    def _check_token(self, call: ApiCall) -> None:
        if not call.token:
            raise SlackApiFailure("not_authed")
        if self.valid_tokens is not None and call.token not in self.valid_tokens:
            raise SlackApiFailure("invalid_auth")
        wants_app_token = call.method == "apps.connections.open"
        if wants_app_token != call.token.startswith("xapp-"):
            raise SlackApiFailure("not_allowed_token_type")

    def _auth_test(self, call: ApiCall) -> Params:
        return {
            "url": "https://fake-team.slack.com/",
            "team": "Fake Team",
            "user": "actionbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, call: ApiCall) -> Params:
        channel = _required(call, "channel", "channel_not_found")
        if not any(call.params.get(key) for key in ("text", "blocks", "attachments")):
            raise SlackApiFailure("no_text")
        ts = self.next_ts()
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": call.params.get("text", ""),
            "ts": ts,
            **_message_fields(call.params),
        }
        self._messages[channel][ts] = message
        return {"channel": channel, "ts": ts, "message": message}

    def _chat_update(self, call: ApiCall) -> Params:
        message = self._existing_message(call)
        message.update({"text": call.params.get("text", message["text"]), "edited": {}})
        message.update(_message_fields(call.params))
        return {"channel": call.params["channel"], "ts": message["ts"], "text": message["text"]}

    def _chat_post_ephemeral(self, call: ApiCall) -> Params:
        _required(call, "channel", "channel_not_found")
        _required(call, "user", "user_not_in_channel")
        return {"message_ts": self.next_ts()}

    def _chat_delete(self, call: ApiCall) -> Params:
        message = self._existing_message(call)
        del self._messages[call.params["channel"]][message["ts"]]
        return {"channel": call.params["channel"], "ts": message["ts"]}

    def _existing_message(self, call: ApiCall) -> dict[str, Any]:
        channel = _required(call, "channel", "channel_not_found")
        ts = _required(call, "ts", "message_not_found")
        message = self._messages[channel].get(ts)
        if message is None:
            raise SlackApiFailure("message_not_found")
        return message

    def _users_info(self, call: ApiCall) -> Params:
        user_id = _required(call, "user", "user_not_found")
        user = self._users.get(user_id) or SlackUser(
            user_id, user_id.lower(), is_bot=user_id == self.bot_user_id
        )
        return {"user": _user_json(user, self.team_id)}

    def _conversations_info(self, call: ApiCall) -> Params:
        channel_id = _required(call, "channel", "channel_not_found")
        channel = self._channels.get(channel_id) or SlackChannel(
            channel_id,
            channel_id.lower(),
            is_im=channel_id.startswith("D"),
            is_private=channel_id.startswith("G"),
        )
        return {"channel": _channel_json(channel, self.team_id)}

    def _conversations_history(self, call: ApiCall) -> Params:
        """Top-level messages of a channel after `oldest`, newest first (the bot's only:
        the fake keeps no one else's)."""
        channel = _required(call, "channel", "channel_not_found")
        oldest = float(call.params.get("oldest") or 0)
        found = [
            m
            for m in self._messages[channel].values()
            if float(m["ts"]) > oldest and m.get("thread_ts") in (None, m["ts"])
        ]
        found.sort(key=lambda m: float(m["ts"]), reverse=True)
        return {"messages": found[: int(call.params.get("limit") or 100)], "has_more": False}

    def _conversations_replies(self, call: ApiCall) -> Params:
        """A thread's messages after `oldest`, oldest first."""
        channel = _required(call, "channel", "channel_not_found")
        thread = _required(call, "ts", "thread_not_found")
        oldest = float(call.params.get("oldest") or 0)
        found = [
            m
            for m in self._messages[channel].values()
            if m.get("thread_ts") == thread and float(m["ts"]) > oldest
        ]
        found.sort(key=lambda m: float(m["ts"]))
        return {"messages": found[: int(call.params.get("limit") or 100)], "has_more": False}

    def _apps_connections_open(self, call: ApiCall) -> Params:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        socket_url = self.url.replace("http://", "ws://", 1)
        return {"url": f"{socket_url}/socket-mode?ticket={ticket}&app_id={self.app_id}"}

    def _assistant_threads_set_status(self, call: ApiCall) -> Params:
        _required(call, "channel_id", "channel_not_found")
        _required(call, "thread_ts", "invalid_arguments")
        if "status" not in call.params:
            raise SlackApiFailure("invalid_arguments")
        return {}

    def _assistant_threads_set_prompts(self, call: ApiCall) -> Params:
        _required(call, "channel_id", "channel_not_found")
        prompts = call.params.get("prompts")
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= 4:
            raise SlackApiFailure("invalid_arguments")
        if not all(p.get("title") and p.get("message") for p in prompts):
            raise SlackApiFailure("invalid_arguments")
        return {}

    def _assistant_threads_set_title(self, call: ApiCall) -> Params:
        _required(call, "channel_id", "channel_not_found")
        _required(call, "thread_ts", "invalid_arguments")
        _required(call, "title", "invalid_arguments")
        return {}

    def _chat_start_stream(self, call: ApiCall) -> Params:
        """A new streamed message, a reply in `thread_ts`; its text and task cards grow
        with `appendStream` until `stopStream`."""
        channel = _required(call, "channel", "channel_not_found")
        thread_ts = _required(call, "thread_ts", "invalid_arguments")
        ts = self.next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": "",
            "ts": ts,
            "thread_ts": thread_ts,
            "streaming": True,
            "tasks": {},
            "chunks": [],
            "task_display_mode": call.params.get("task_display_mode", "timeline"),
        }
        _grow(message, call.params)
        self._messages[channel][ts] = message
        return {"channel": channel, "ts": ts}

    def _chat_append_stream(self, call: ApiCall) -> Params:
        message = self._streaming_message(call)
        _grow(message, call.params)
        return {"channel": call.params["channel"], "ts": message["ts"]}

    def _chat_stop_stream(self, call: ApiCall) -> Params:
        message = self._streaming_message(call)
        _grow(message, call.params)
        message.update(_message_fields(call.params))
        message["streaming"] = False
        return {"channel": call.params["channel"], "ts": message["ts"], "message": message}

    def _streaming_message(self, call: ApiCall) -> dict[str, Any]:
        message = self._existing_message(call)
        if not message.get("streaming"):
            raise SlackApiFailure("message_not_in_streaming_state")
        return message

    def _views_open(self, call: ApiCall) -> Params:
        _required(call, "trigger_id", "invalid_trigger_id")
        view = call.params.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackApiFailure("invalid_arguments")
        view_id = f"V{next(self._ids)}"
        self.views[view_id] = {**view, "id": view_id, "team_id": self.team_id}
        return {"view": self.views[view_id]}

    def _views_update(self, call: ApiCall) -> Params:
        view_id = _required(call, "view_id", "not_found")
        if view_id not in self.views:
            raise SlackApiFailure("not_found")
        view = call.params.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        self.views[view_id] = {**view, "id": view_id, "team_id": self.team_id}
        return {"view": self.views[view_id]}

    def _chat_get_permalink(self, call: ApiCall) -> Params:
        channel = _required(call, "channel", "channel_not_found")
        ts = _required(call, "message_ts", "message_not_found")
        link = f"https://fake-team.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"channel": channel, "permalink": link}

    # -- waiting -----------------------------------------------------------------------

    async def _notify(self, change: Callable[[], object]) -> None:
        async with self._changed:
            change()
            self._changed.notify_all()

    async def _wait(
        self,
        predicate: Callable[[], bool],
        seconds: float,
        describe: Callable[[], str],
    ) -> None:
        try:
            async with asyncio.timeout(seconds), self._changed:
                await self._changed.wait_for(predicate)
        except TimeoutError:
            raise AssertionError(f"FakeSlack: {describe()} within {seconds}s") from None

    def _called(self) -> list[str]:
        return [call.method for call in self.api_calls]


# -- request parsing and JSON shapes ---------------------------------------------------


async def _parse_call(method: str, request: web.Request) -> ApiCall:
    params: Params = dict(request.query)
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.method == "POST":
        params.update({key: value for key, value in (await request.post()).items()})
    token = params.pop("token", None)
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ")
    headers = {key.lower(): value for key, value in request.headers.items()}
    return ApiCall(method, params, headers, token)


def _required(call: ApiCall, key: str, error: str) -> str:
    value = call.params.get(key)
    if not value:
        raise SlackApiFailure(error)
    return str(value)


def _message_fields(params: Params) -> dict[str, Any]:
    fields = {}
    for key in ("blocks", "attachments", "metadata"):
        if params.get(key):
            value = params[key]
            fields[key] = json.loads(value) if isinstance(value, str) else value
    if params.get("thread_ts"):
        fields["thread_ts"] = params["thread_ts"]
    return fields


def _grow(message: dict[str, Any], params: Params) -> None:
    """Apply a stream call's `markdown_text` and `chunks` to the streamed message: text is
    appended, a `task_update` replaces its card's fields by id."""
    chunks = params.get("chunks") or []
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    text = params.get("markdown_text") or ""
    if len(text) > STREAM_TEXT_LIMIT:
        raise SlackApiFailure("msg_too_long")
    message["text"] += text
    for chunk in chunks:
        message["chunks"].append(chunk)
        if chunk.get("type") == "markdown_text":
            message["text"] += chunk.get("text", "")
        elif chunk.get("type") == "task_update":
            if not chunk.get("id") or not chunk.get("title") or not chunk.get("status"):
                raise SlackApiFailure("invalid_chunks")
            message["tasks"].setdefault(chunk["id"], {}).update(chunk)
        else:
            raise SlackApiFailure("invalid_chunks")


def _failure_response(failure: _Failure) -> web.Response:
    body = {"ok": False, "error": failure.error, **failure.extra}
    return web.json_response(body, status=failure.status, headers=dict(failure.headers))


def _user_json(user: SlackUser, team_id: str) -> dict[str, Any]:
    return {
        "id": user.id,
        "team_id": team_id,
        "name": user.name,
        "real_name": user.name.title(),
        "deleted": user.deleted,
        "is_admin": user.is_admin,
        "is_owner": user.is_owner,
        "is_primary_owner": False,
        "is_bot": user.is_bot,
        "is_app_user": False,
        "profile": {
            "real_name": user.name.title(),
            "display_name": user.name,
            **({"email": user.email} if user.email else {}),
        },
    }


def _channel_json(channel: SlackChannel, team_id: str) -> dict[str, Any]:
    if channel.is_im:
        return {"id": channel.id, "is_im": True, "user": channel.user, "created": 1_700_000_000}
    return {
        "id": channel.id,
        "name": channel.name,
        "is_channel": not channel.is_private,
        "is_group": False,
        "is_im": False,
        "is_mpim": False,
        "is_private": channel.is_private,
        "is_archived": channel.is_archived,
        "is_member": channel.is_member,
        "context_team_id": team_id,
        "created": 1_700_000_000,
    }


# -- what Slack sends: events, payloads, envelopes, signatures -------------------------


def app_mention(
    text: str, user: str, channel: str, ts: str, *, thread_ts: str | None = None
) -> dict[str, Any]:
    """An `app_mention` event; `text` usually starts with `<@UBOT>`."""
    event = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": TEAM_ID,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    user: str | None,
    channel: str,
    ts: str,
    *,
    channel_type: str = "im",
    thread_ts: str | None = None,
    subtype: str | None = None,
    bot_id: str | None = None,
) -> dict[str, Any]:
    """A `message` event (a DM by default); `bot_id`/`subtype` mark bot and edited messages."""
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": TEAM_ID,
    }
    optional = {"user": user, "thread_ts": thread_ts, "subtype": subtype, "bot_id": bot_id}
    event.update({key: value for key, value in optional.items() if value is not None})
    return event


def assistant_thread_started(
    user: str, channel: str, thread_ts: str, *, context_channel: str | None = None
) -> dict[str, Any]:
    """`assistant_thread_started`: `user` opened a new thread in the app's assistant
    container (`channel` is their DM with the app)."""
    context = {"channel_id": context_channel, "team_id": TEAM_ID} if context_channel else {}
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": context,
            "channel_id": channel,
            "thread_ts": thread_ts,
        },
        "event_ts": thread_ts,
    }


def assistant_thread_context_changed(
    user: str, channel: str, thread_ts: str, *, context_channel: str
) -> dict[str, Any]:
    """`assistant_thread_context_changed`: the user looks at another channel."""
    event = assistant_thread_started(user, channel, thread_ts, context_channel=context_channel)
    return {**event, "type": "assistant_thread_context_changed"}


def event_callback(
    event: dict[str, Any], *, event_id: str, event_time: int | None = None
) -> dict[str, Any]:
    """The Events API body wrapping `event`: the HTTP request body, or an envelope's payload."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event.get('type', 'event')}-{TEAM_ID}-{event.get('channel', '')}",
    }


def events_api_envelope(
    event: dict[str, Any],
    *,
    event_id: str,
    retry_attempt: int = 0,
    retry_reason: str = "",
    envelope_id: str | None = None,
) -> dict[str, Any]:
    """A Socket Mode `events_api` envelope; Slack sends attempt 0 and reason "" first time."""
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": event_callback(event, event_id=event_id),
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
    }


def slash_command(
    command: str = "/actions",
    text: str = "list",
    *,
    user_id: str = "U1",
    channel_id: str = "C1",
    response_url: str | None = None,
    team_id: str = TEAM_ID,
) -> dict[str, str]:
    """A slash command payload: form fields over HTTP, an envelope's payload in Socket Mode.

    Without `response_url` the payload has none, so bolt's `respond()` raises instead of
    reaching the internet; pass `FakeSlack.response_url()` to observe responses.
    """
    payload = {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "team_domain": "fake-team",
        "channel_id": channel_id,
        "channel_name": "directmessage" if channel_id.startswith("D") else channel_id.lower(),
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{TEAM_ID}.fake",
    }
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def slash_command_envelope(
    command: str = "/actions",
    text: str = "list",
    *,
    user_id: str = "U1",
    channel_id: str = "C1",
    response_url: str | None = None,
    envelope_id: str | None = None,
    team_id: str = TEAM_ID,
) -> dict[str, Any]:
    """A Socket Mode `slash_commands` envelope, whose ack may carry a response payload."""
    payload = slash_command(
        command,
        text,
        user_id=user_id,
        channel_id=channel_id,
        response_url=response_url,
        team_id=team_id,
    )
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": payload,
        "type": "slash_commands",
        "accepts_response_payload": True,
    }


def block_actions(
    action_id: str,
    value: str,
    *,
    user_id: str = "U1",
    channel_id: str = "C1",
    message_ts: str = "",
    response_url: str | None = None,
    team_id: str = TEAM_ID,
    block_id: str = "actionbot_confirmation",
    ephemeral: bool = False,
) -> dict[str, Any]:
    """A `block_actions` payload: a click on a button of a message the bot posted (an
    `ephemeral` one has no `message`: the app can change it only by its response URL)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": team_id, "domain": "fake-team"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id},
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{TEAM_ID}.fake",
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": {"type": "message", "ts": message_ts, "text": ""},
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "type": "button",
                "action_ts": str(time.time()),
            }
        ],
    }
    if ephemeral:
        payload["container"]["is_ephemeral"] = True
        del payload["message"]
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def interactive_envelope(payload: dict[str, Any], envelope_id: str | None = None) -> dict[str, Any]:
    """A Socket Mode `interactive` envelope (button clicks, …)."""
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": payload,
        "type": "interactive",
        "accepts_response_payload": False,
    }


def view_submission(
    view: dict[str, Any],
    values: dict[str, dict[str, Any]],
    *,
    user_id: str = "U1",
    team_id: str = TEAM_ID,
) -> dict[str, Any]:
    """A `view_submission` payload: `view` (as the app opened it) submitted with `values`
    (block id → the element's state, e.g. `{"value": "text"}` or
    `{"selected_option": {"value": "GET"}}`); every input block the view has is in the
    state, as Slack sends it (an untouched one with its initial value, or empty)."""
    state: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        given = values.get(block["block_id"])
        if given is None:
            given = _initial_state(element)
        state[block["block_id"]] = {element["action_id"]: {"type": element["type"], **given}}
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "fake-team"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{TEAM_ID}.fake",
        "view": {**view, "state": {"values": state}},
        "response_urls": [],
        "is_enterprise_install": False,
    }


def _initial_state(element: dict[str, Any]) -> dict[str, Any]:
    kind = element.get("type")
    if kind == "plain_text_input":
        return {"value": element.get("initial_value")}
    if kind == "static_select":
        return {"selected_option": element.get("initial_option")}
    if kind == "checkboxes":
        return {"selected_options": list(element.get("initial_options", []))}
    return {}


def view_submission_envelope(
    payload: dict[str, Any], envelope_id: str | None = None
) -> dict[str, Any]:
    """A Socket Mode `interactive` envelope for a view submission: its ack may carry the
    response (`response_action`), as for a Request URL's HTTP response."""
    return {**interactive_envelope(payload, envelope_id), "accepts_response_payload": True}


def sign(signing_secret: str, timestamp: str, body: str | bytes) -> str:
    """Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    body: str | bytes,
    *,
    timestamp: str | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
) -> dict[str, str]:
    """Headers Slack sends with `body` to a Request URL (content type guessed from the body)."""
    timestamp = timestamp or str(int(time.time()))
    raw = body.encode() if isinstance(body, str) else body
    is_json = raw.lstrip().startswith(b"{")
    headers = {
        "Content-Type": "application/json" if is_json else "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(secret, timestamp, raw),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    return headers
