"""A fake Discord REST API and gateway websocket on loopback, for tests under real discord.py.

One aiohttp server plays both halves of Discord: the REST API under ``/api/v10`` and the
gateway websocket at ``/ws`` (``/ws/resume`` is the ``resume_gateway_url``). Every REST
request is recorded; every gateway payload the client sends is recorded. Tests drive the
gateway with `FakeDiscord.dispatch` and the payload builders at the bottom of this module::

    guild = guild_create(GUILD_ID, channels=[text_channel(CHANNEL_ID, "support")])
    async with FakeDiscord(guilds=[guild]) as fake:
        with fake.patched():  # discord.py now talks to the fake
            client = discord.Client(intents=intents, guild_ready_timeout=0.05)
            async with client_running(client, fake.token):
                await asyncio.wait_for(client.wait_until_ready(), 5)
                hello = message_create("hi", channel_id=CHANNEL_ID, guild_id=GUILD_ID)
                await fake.dispatch("MESSAGE_CREATE", hello)
                (reply,) = await fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages")
                assert reply.json["allowed_mentions"] == {"parse": []}

What Discord does that the fake does too: IDENTIFY → READY (+ a GUILD_CREATE per known
guild), heartbeat ACKs, RESUME with replay of missed events, close code 4004 for a wrong
token and 4014 for intents in `deny_intents`, 401 for a wrong bot token on REST, Discord's
error JSON (`{"message", "code"}`), 429 with ``retry_after`` and a ``Via`` header (without
one discord.py assumes a Cloudflare ban and does not retry), a MESSAGE_CREATE echo of the
bot's own channel messages, THREAD_CREATE for threads it creates, "Unknown interaction" for
a callback to an interaction never dispatched, "already acknowledged" on a second one, an
UPDATE_MESSAGE callback editing the message whose button (or whose button's modal) was used,
a MODAL callback kept as the modal the user sees (`interaction_modal`), and refused, as
Discord refuses it, when it breaks a modal rule (title and label lengths, at most five
top-level components, a pre-filled value longer than its input allows…), and a guild and its
members (with their roles) over REST, from which a client computes its own permissions.
`modal_submit` builds the MODAL_SUBMIT a user's client sends for a modal the bot showed.
It does not enforce permissions (not even a command's ``default_member_permissions``), rate
limits you did not script, or message content rules.

Frames are JSON text: discord.py asks for ``compress=zlib-stream`` in the URL but only
decompresses binary frames, so text frames need no compression.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import WSMsgType, web

from fakes.loopback import LoopbackServer

API_PREFIX = "/api/v10"
BOT_USER_ID = "1000"
APPLICATION_ID = "2000"
OWNER_USER_ID = "3000"
USER_ID = "4000"
DEFAULT_TOKEN = "fake-bot-token"

# Gateway intent bits; the last three are privileged.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_MESSAGE_CONTENT = 1 << 15

# Permission bits, as Discord sends them (decimal strings on the wire).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_MESSAGE_HISTORY
    | EMBED_LINKS
    | ATTACH_FILES
    | ADD_REACTIONS
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)

GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19  # application flag of an unverified bot with the intent
EPHEMERAL = 1 << 6  # message flag
LOADING = 1 << 7  # message flag of a deferred ("thinking") response

# Interaction types and callback types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5
MODAL = 9
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE = 4
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
AUTOCOMPLETE_RESULT = 8

_DISCORD_EPOCH_MS = 1_420_070_400_000
_snowflake_counter = itertools.count(1)


def new_snowflake() -> str:
    """A unique, time-ordered Discord snowflake id, as the decimal string Discord sends."""
    millis = int(time.time() * 1000) - _DISCORD_EPOCH_MS
    return str((millis << 22) | (next(_snowflake_counter) & 0x3FFFFF))


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class RecordedRequest:
    """One REST request as the fake saw it; `path` is relative to ``/api/v10``."""

    method: str
    path: str
    query: Mapping[str, str]
    json: Any
    headers: Mapping[str, str]
    status: int
    files: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class GatewayConnection:
    """One websocket connection: the path (``/ws`` or ``/ws/resume``) and its URL query."""

    path: str
    query: Mapping[str, str]


@dataclass
class _Failure:
    method: str
    path: str | re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        if isinstance(self.path, str):
            return path == self.path
        return self.path.fullmatch(path) is not None


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: Mapping[str, Any]) -> None:
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(json.dumps(payload))


@dataclass
class _Interaction:
    data: dict[str, Any]
    acknowledged: bool = False
    original: dict[str, Any] | None = None
    modal: dict[str, Any] | None = None


class DiscordError(Exception):
    """Raised inside a handler to answer with Discord's error JSON."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class FakeDiscord(LoopbackServer):
    """Discord's REST API and gateway on 127.0.0.1, recording what discord.py sends."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        guilds: Iterable[Mapping[str, Any]] = (),
        deny_intents: int = 0,
        heartbeat_interval_ms: int = 45_000,
        application_flags: int = GATEWAY_MESSAGE_CONTENT_LIMITED,
        echo_own_messages: bool = True,
    ) -> None:
        super().__init__()
        self.token = token
        self.deny_intents = deny_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.application_flags = application_flags
        self.echo_own_messages = echo_own_messages
        self.bot_user = user(BOT_USER_ID, "actionbot", bot=True)
        self.requests: list[RecordedRequest] = []
        self.unexpected: list[str] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.connections: list[GatewayConnection] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {BOT_USER_ID: self.bot_user}
        self._guilds: list[dict[str, Any]] = []
        self._commands: dict[str | None, list[dict[str, Any]]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._failures: list[_Failure] = []
        self._identify_rejections: list[tuple[int, str]] = []
        self._changed = asyncio.Condition()
        self._sockets: set[web.WebSocketResponse] = set()
        self._live: _Conn | None = None
        self._session_id: str | None = None
        self._seq = 0
        self._events: list[dict[str, Any]] = []
        self._replay_from: int | None = None
        self._emit_lock = asyncio.Lock()
        for guild in guilds:
            self.add_guild(guild)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def rest_base(self) -> str:
        """The value for `discord.http.Route.BASE`."""
        return self.origin + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The value for `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`."""
        return self.origin.replace("http://", "ws://") + "/ws"

    @property
    def resume_gateway_url(self) -> str:
        """The ``resume_gateway_url`` sent in READY; a RESUME arrives here."""
        return self.gateway_url + "/resume"

    def build_app(self) -> web.Application:
        """REST routes and the gateway websocket."""
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        return app

    async def release(self) -> None:
        """Close open websockets (code 1001)."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server stopping")

    def on_clean_exit(self) -> None:
        self.assert_done()

    @contextlib.contextmanager
    def patched(self) -> Iterator[Self]:
        """Point discord.py's REST base and default gateway at this fake; restore on exit."""
        route, gateway = discord.http.Route, discord.gateway.DiscordWebSocket
        old_base, old_gateway = route.BASE, gateway.DEFAULT_GATEWAY
        route.BASE = self.rest_base
        gateway.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield self
        finally:
            route.BASE = old_base
            gateway.DEFAULT_GATEWAY = old_gateway

    def assert_done(self) -> None:
        """Raise AssertionError on requests to unknown routes or unused scripted failures."""
        problems = list(self.unexpected)
        problems += [f"unused fail_next: {f.method} {f.path}" for f in self._failures]
        if problems:
            raise AssertionError("FakeDiscord mismatch:\n  " + "\n  ".join(problems))

    # -- scripting and observing REST -----------------------------------------------------

    def add_guild(self, guild: Mapping[str, Any]) -> None:
        """Know a guild (a `guild_create` payload): sent after READY, its channels resolvable."""
        self._guilds = [g for g in self._guilds if g["id"] != str(guild["id"])]
        self._guilds.append(dict(guild))
        self._learn_guild(guild)

    def fail_next(
        self,
        method: str,
        path: str | re.Pattern[str],
        *,
        status: int,
        code: int = 0,
        message: str = "scripted failure",
        retry_after: float = 0.01,
        is_global: bool = False,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests to exactly `path` (or a fullmatch regex) with an error.

        A 429 carries ``retry_after``/``global`` in the body and ``Retry-After`` and ``Via``
        headers, so discord.py sleeps and retries; other statuses get ``{"message", "code"}``.
        """
        body: dict[str, Any] = {"message": message, "code": code}
        headers: dict[str, str] = {}
        if status == 429:
            body = {"message": "You are being rate limited.", "retry_after": retry_after}
            body |= {"global": is_global, "code": code}
            headers = {"Retry-After": str(retry_after), "Via": "1.1 google"}
            headers["X-RateLimit-Scope"] = "global" if is_global else "user"
        self._failures.append(_Failure(method, path, status, body, headers, times))

    def requests_to(self, method: str, path: str | re.Pattern[str]) -> list[RecordedRequest]:
        """Recorded requests with this method whose path starts with `path` (or matches regex)."""
        return [r for r in self.requests if r.method == method and _path_matches(path, r.path)]

    async def wait_for(
        self,
        method: str,
        path: str | re.Pattern[str],
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is the point of this test helper
    ) -> list[RecordedRequest]:
        """Wait until `count` matching requests were answered; return the first `count`."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(self.requests_to(method, path)) >= count)
        except TimeoutError:
            seen = [f"{r.method} {r.path}" for r in self.requests]
            raise AssertionError(
                f"expected {count} x {method} {path} within {timeout}s; saw {seen}"
            ) from None
        return self.requests_to(method, path)[:count]

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        what: str = "a condition",
        timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is the point of this test helper
    ) -> None:
        """Wait until `predicate()` holds; it is looked at again after every REST request
        and gateway payload (state such as `messages` changes only then)."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(predicate)
        except TimeoutError:
            seen = [f"{r.method} {r.path}" for r in self.requests]
            raise AssertionError(f"expected {what} within {timeout}s; saw {seen}") from None

    def interaction_message(self, token: str) -> dict[str, Any] | None:
        """The message an interaction's response created (ephemeral ones too), as it is now."""
        interaction = self._interactions.get(token)
        return None if interaction is None else interaction.original

    def interaction_modal(self, token: str) -> dict[str, Any] | None:
        """The modal an interaction was answered with (``custom_id``, ``title``,
        ``components``), as the user sees it."""
        interaction = self._interactions.get(token)
        return None if interaction is None else interaction.modal

    def commands(self, guild_id: str | int | None = None) -> list[dict[str, Any]]:
        """The application commands last bulk-overwritten globally or for `guild_id`."""
        return list(self._commands.get(None if guild_id is None else str(guild_id), []))

    # -- scripting and observing the gateway ----------------------------------------------

    @property
    def identifies(self) -> list[dict[str, Any]]:
        """The ``d`` of every IDENTIFY received (``intents``, ``token``, ``properties``…)."""
        return [p["d"] for p in self.gateway_received if p.get("op") == 2]

    @property
    def resumes(self) -> list[dict[str, Any]]:
        """The ``d`` of every RESUME received (``session_id``, ``seq``, ``token``)."""
        return [p["d"] for p in self.gateway_received if p.get("op") == 6]

    @property
    def session_id(self) -> str | None:
        """The current gateway session, set by the last successful IDENTIFY."""
        return self._session_id

    @property
    def sequence(self) -> int:
        """The sequence number of the last event sent in this session."""
        return self._seq

    def reject_identify(self, code: int, reason: str = "scripted close") -> None:
        """Answer the next IDENTIFY by closing the socket with `code` (4004, 4013, 4014…)."""
        self._identify_rejections.append((code, reason))

    async def wait_gateway(
        self,
        op: int,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is the point of this test helper
    ) -> list[Any]:
        """Wait until the client sent `count` payloads with opcode `op`; return their ``d``."""

        def received() -> list[Any]:
            return [p.get("d") for p in self.gateway_received if p.get("op") == op]

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(received()) >= count)
        except TimeoutError:
            raise AssertionError(f"expected {count} gateway op {op} within {timeout}s") from None
        return received()[:count]

    async def dispatch(
        self,
        event: str,
        data: Mapping[str, Any],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is the point of this test helper
    ) -> int:
        """Send a DISPATCH (op 0) once the client has identified or resumed; return its ``s``."""
        conn = await self._wait_live(timeout)
        self._learn_event(event, data)
        return await self._emit(conn, event, data)

    async def reconnect(
        self,
        *,
        close_code: int | None = None,
        replay_from: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is the point of this test helper
    ) -> None:
        """Make the client reconnect and RESUME; return once RESUMED was sent.

        Without `close_code` Discord's op 7 RECONNECT is sent, else the socket is closed with
        that (resumable) code. On RESUME the events after the client's ``seq`` are replayed,
        or those after `replay_from` if given: pass an already-delivered sequence number to
        deliver an event twice, as Discord may after a reconnect.
        """
        conn = await self._wait_live(timeout)
        resumed = len(self.resumes)
        self._live, self._replay_from = None, replay_from
        if close_code is None:
            async with conn.lock:
                await conn.send({"op": 7, "d": None, "s": None, "t": None})
        else:
            await conn.ws.close(code=close_code, message=b"scripted close")
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(
                    lambda: len(self.resumes) > resumed and self._live is not None
                )
        except TimeoutError:
            raise AssertionError(f"client did not RESUME within {timeout}s") from None

    async def close_gateway(self, code: int, reason: str = "scripted close") -> None:
        """Close the current gateway connection with `code` (4014 makes discord.py give up)."""
        conn = self._live
        self._live = None
        if conn is not None:
            await conn.ws.close(code=code, message=reason.encode())

    # -- gateway internals ----------------------------------------------------------------

    async def _wait_live(self, within: float) -> _Conn:
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: self._live is not None)
        except TimeoutError:
            raise AssertionError(f"no identified gateway session within {within}s") from None
        assert self._live is not None
        return self._live

    async def _emit(self, conn: _Conn | None, event: str, data: Mapping[str, Any]) -> int:
        """Log one dispatch with the next sequence number (for replay) and send it if connected."""
        async with self._emit_lock:
            self._seq += 1
            payload = {"op": 0, "s": self._seq, "t": event, "d": data}
            self._events.append(payload)
            if conn is not None:
                async with conn.lock:
                    await conn.send(payload)
            return self._seq

    async def _emit_to_session(self, event: str, data: Mapping[str, Any]) -> None:
        """An event Discord itself causes: sent now, or replayed on RESUME if disconnected."""
        if self._session_id is not None:
            await self._emit(self._live, event, data)

    async def _handle_gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Conn(ws)
        async with self._changed:
            self.connections.append(GatewayConnection(request.path, dict(request.query)))
            self._sockets.add(ws)
            self._changed.notify_all()
        try:
            hello = {"heartbeat_interval": self.heartbeat_interval_ms}
            await conn.send({"op": 10, "d": hello, "s": None, "t": None})
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_gateway_payload(conn, json.loads(message.data))
        finally:
            self._sockets.discard(ws)
            if self._live is conn:
                self._live = None
        return ws

    async def _on_gateway_payload(self, conn: _Conn, payload: dict[str, Any]) -> None:
        async with self._changed:
            self.gateway_received.append(payload)
            self._changed.notify_all()
        match payload.get("op"):
            case 1:
                async with conn.lock:
                    await conn.send({"op": 11, "d": None, "s": None, "t": None})
            case 2:
                await self._identify(conn, payload["d"])
            case 6:
                await self._resume(conn, payload["d"])

    async def _identify(self, conn: _Conn, data: Mapping[str, Any]) -> None:
        if self._identify_rejections:
            code, reason = self._identify_rejections.pop(0)
            await conn.ws.close(code=code, message=reason.encode())
        elif data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
        elif data.get("intents", 0) & self.deny_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
        else:
            self._session_id, self._seq, self._events = uuid.uuid4().hex, 0, []
            await self._emit(conn, "READY", self._ready_payload(data))
            for guild in self._guilds:
                await self._emit(conn, "GUILD_CREATE", guild)
            await self._go_live(conn)

    async def _resume(self, conn: _Conn, data: Mapping[str, Any]) -> None:
        if data.get("session_id") != self._session_id or data.get("token") != self.token:
            async with conn.lock:
                await conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        start = (data.get("seq") or 0) if self._replay_from is None else self._replay_from
        self._replay_from = None
        async with self._emit_lock, conn.lock:
            for event in self._events:
                if event["s"] > start:
                    await conn.send(event)
        await self._emit(conn, "RESUMED", {})
        await self._go_live(conn)

    async def _go_live(self, conn: _Conn) -> None:
        async with self._changed:
            self._live = conn
            self._changed.notify_all()

    def _ready_payload(self, identify: Mapping[str, Any]) -> dict[str, Any]:
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot_user,
            "session_id": self._session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "guilds": [{"id": g["id"], "unavailable": True} for g in self._guilds],
            "private_channels": [],
            "application": {"id": APPLICATION_ID, "flags": self.application_flags},
        }
        if "shard" in identify:
            ready["shard"] = identify["shard"]
        return ready

    def _learn_guild(self, guild: Mapping[str, Any]) -> None:
        for channel in [*guild.get("channels", []), *guild.get("threads", [])]:
            self.channels[str(channel["id"])] = {**channel, "guild_id": str(guild["id"])}
        for member_data in guild.get("members", []):
            self._learn_user(member_data.get("user"))

    def _learn_user(self, data: Mapping[str, Any] | None) -> None:
        if data is not None:
            self.users.setdefault(str(data["id"]), dict(data))

    def _learn_event(self, event: str, data: Mapping[str, Any]) -> None:
        if event == "GUILD_CREATE":
            self.add_guild(data)
        elif event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            self.messages[str(data["id"])] = dict(data)
            self._learn_user(data.get("author"))
            channel_id = str(data["channel_id"])
            if data.get("guild_id") is None and channel_id not in self.channels:
                # A DM exists once someone wrote in it; GET /channels/{id} then finds it.
                self.channels[channel_id] = {
                    "id": channel_id,
                    "type": 1,
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": [data["author"]],
                }
        elif event == "THREAD_CREATE":
            self.channels[str(data["id"])] = dict(data)
        elif event == "INTERACTION_CREATE":
            self._interactions[str(data["token"])] = _Interaction(dict(data))
            self._learn_user(data.get("user") or data.get("member", {}).get("user"))

    # -- REST plumbing --------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            result: web.StreamResponse = await handler(request)
            return result
        path = request.path.removeprefix(API_PREFIX)
        body, files = await _read_body(request)
        response = await self._respond(request, handler, path)
        record = RecordedRequest(
            request.method,
            path,
            dict(request.query),
            body,
            {k.lower(): v for k, v in request.headers.items()},
            response.status,
            files,
        )
        async with self._changed:
            self.requests.append(record)
            self._changed.notify_all()
        return response

    async def _respond(self, request: web.Request, handler: Any, path: str) -> web.StreamResponse:
        failure = self._take_failure(request.method, path)
        if failure is not None:
            return _json(failure.body, status=failure.status, headers=failure.headers)
        if _needs_bot_token(path) and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        try:
            result: web.StreamResponse = await handler(request)
            return result
        except DiscordError as error:
            return _json({"message": error.message, "code": error.code}, status=error.status)
        except web.HTTPException as error:
            self.unexpected.append(f"{request.method} {path} -> {error.status}")
            return _json({"message": f"{error.status}: {error.reason}", "code": 0}, error.status)
        except Exception as error:
            # A bug in the fake: fail the test, and answer 503, which discord.py does not retry.
            self.unexpected.append(f"{request.method} {path} crashed the fake: {error!r}")
            return _json({"message": f"FakeDiscord error: {error!r}", "code": 0}, status=503)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.matches(method, path):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _add_routes(self, app: web.Application) -> None:
        p = API_PREFIX
        channel, message = p + "/channels/{channel_id}", "/messages/{message_id}"
        webhook, app_path = p + "/webhooks/{app_id}/{token}", p + "/applications/{app_id}"
        app.router.add_get("/ws", self._handle_gateway)
        app.router.add_get("/ws/resume", self._handle_gateway)
        app.router.add_get(p + "/users/@me", self._get_me)
        app.router.add_get(p + "/oauth2/applications/@me", self._get_application)
        app.router.add_get(p + "/gateway", self._get_gateway)
        app.router.add_get(p + "/gateway/bot", self._get_gateway)
        app.router.add_post(p + "/users/@me/channels", self._create_dm)
        app.router.add_get(p + "/guilds/{guild_id}", self._get_guild)
        app.router.add_get(p + "/guilds/{guild_id}/members/{user_id}", self._get_member)
        app.router.add_get(channel, self._get_channel)
        app.router.add_post(channel + "/typing", _no_content)
        app.router.add_get(channel + "/messages", self._get_history)
        app.router.add_post(channel + "/messages", self._create_message)
        app.router.add_get(channel + message, self._get_message)
        app.router.add_patch(channel + message, self._edit_message)
        app.router.add_delete(channel + message, self._delete_message)
        app.router.add_post(channel + message + "/threads", self._create_thread)
        app.router.add_route("*", channel + message + "/reactions/{emoji}/@me", _no_content)
        app.router.add_put(app_path + "/commands", self._put_commands)
        app.router.add_get(app_path + "/commands", self._get_commands)
        app.router.add_put(app_path + "/guilds/{guild_id}/commands", self._put_commands)
        app.router.add_get(app_path + "/guilds/{guild_id}/commands", self._get_commands)
        app.router.add_post(p + "/interactions/{interaction_id}/{token}/callback", self._callback)
        app.router.add_post(webhook, self._create_followup)
        app.router.add_get(webhook + message, self._get_webhook_message)
        app.router.add_patch(webhook + message, self._edit_webhook_message)
        app.router.add_delete(webhook + message, self._delete_webhook_message)

    # -- REST: identity and gateway discovery ---------------------------------------------

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json(self.bot_user)

    async def _get_application(self, request: web.Request) -> web.Response:
        owner = user(OWNER_USER_ID, "owner")
        return _json(
            {
                "id": APPLICATION_ID,
                "name": "ActionBot",
                "icon": None,
                "description": "",
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": owner,
                "verify_key": "0" * 64,
                "team": None,
                "flags": self.application_flags,
                "bot": self.bot_user,
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    # -- REST: guilds ---------------------------------------------------------------------

    async def _get_guild(self, request: web.Request) -> web.Response:
        """A guild as REST gives it: with its roles, without channels or members."""
        guild = self._guild(request.match_info["guild_id"])
        live = ("channels", "threads", "members", "presences", "voice_states")
        return _json({k: v for k, v in guild.items() if k not in live})

    async def _get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request.match_info["guild_id"])
        wanted = request.match_info["user_id"]
        for found in guild.get("members", []):
            if found["user"]["id"] == wanted:
                return _json(found)
        raise DiscordError(404, 10007, "Unknown Member")

    def _guild(self, guild_id: str) -> dict[str, Any]:
        for guild in self._guilds:
            if guild["id"] == guild_id:
                return guild
        raise DiscordError(404, 10004, "Unknown Guild")

    # -- REST: channels and messages ------------------------------------------------------

    async def _get_channel(self, request: web.Request) -> web.Response:
        return _json(self._channel(request.match_info["channel_id"]))

    async def _create_dm(self, request: web.Request) -> web.Response:
        recipient = str((await _body(request))["recipient_id"])
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == recipient:
                return _json(channel)
        someone = self.users.get(recipient) or user(recipient, f"user{recipient}")
        channel = {"id": new_snowflake(), "type": 1, "last_message_id": None, "flags": 0}
        channel["recipients"] = [someone]
        self.channels[channel["id"]] = channel
        return _json(channel)

    async def _get_history(self, request: web.Request) -> web.Response:
        channel_id = self._channel(request.match_info["channel_id"])["id"]
        limit = int(request.query.get("limit", "50"))
        found = [m for m in self.messages.values() if m["channel_id"] == channel_id]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        return _json(found[:limit])

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request.match_info["channel_id"])
        body, files = await _read_body(request)
        message = self._new_message(channel["id"], body or {}, guild_id=channel.get("guild_id"))
        message["attachments"] = [self._attachment(name, data) for name, data in files]
        self.messages[message["id"]] = message
        if self.echo_own_messages:
            await self._emit_to_session("MESSAGE_CREATE", message)
        return _json(message)

    async def _get_message(self, request: web.Request) -> web.Response:
        return _json(self._message(request.match_info["message_id"]))

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self._message(request.match_info["message_id"])
        if message["author"]["id"] != BOT_USER_ID:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        message.update(_message_fields(await _body(request) or {}), edited_timestamp=_now())
        return _json(message)

    async def _delete_message(self, request: web.Request) -> web.Response:
        del self.messages[self._message(request.match_info["message_id"])["id"]]
        return web.Response(status=204)

    async def _create_thread(self, request: web.Request) -> web.Response:
        parent = self._channel(request.match_info["channel_id"])
        self._message(request.match_info["message_id"])
        body = await _body(request) or {}
        thread = {
            "id": request.match_info["message_id"],  # Discord reuses the message id
            "type": 11,
            "guild_id": parent.get("guild_id"),
            "parent_id": parent["id"],
            "owner_id": BOT_USER_ID,
            "name": body.get("name", "thread"),
            "last_message_id": None,
            "rate_limit_per_user": body.get("rate_limit_per_user", 0),
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration", 1440),
                "archive_timestamp": _now(),
                "locked": False,
                "create_timestamp": _now(),
            },
        }
        self.channels[thread["id"]] = thread
        await self._emit_to_session("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, status=201)

    def _attachment(self, filename: str, data: bytes) -> dict[str, Any]:
        attachment_id = new_snowflake()
        url = f"{self.origin}/attachments/{attachment_id}/{filename}"
        return {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
        }

    def _channel(self, channel_id: str) -> dict[str, Any]:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise DiscordError(404, 10003, "Unknown Channel") from None

    def _message(self, message_id: str) -> dict[str, Any]:
        try:
            return self.messages[message_id]
        except KeyError:
            raise DiscordError(404, 10008, "Unknown Message") from None

    def _new_message(
        self, channel_id: str, body: Mapping[str, Any], *, guild_id: str | None
    ) -> dict[str, Any]:
        message = message_create(
            body.get("content") or "",
            channel_id=channel_id,
            author=self.bot_user,
            guild_id=guild_id,
            member=None,
        )
        message.update(_message_fields(body))
        reference = body.get("message_reference")
        if reference:
            ids = {k: str(v) for k, v in reference.items() if k.endswith("_id") and v is not None}
            message["type"] = 19
            message["message_reference"] = {"type": 0, "channel_id": channel_id, **ids}
            message["referenced_message"] = self.messages.get(ids.get("message_id", ""))
        return message

    # -- REST: application commands -------------------------------------------------------

    async def _put_commands(self, request: web.Request) -> web.Response:
        self._check_application(request)
        guild_id = request.match_info.get("guild_id")
        previous = {c["name"]: c for c in self._commands.get(guild_id, [])}
        commands = [
            self._registered_command(dict(c), guild_id, previous.get(c["name"]))
            for c in await _body(request)
        ]
        self._commands[guild_id] = commands
        return _json(commands)

    async def _get_commands(self, request: web.Request) -> web.Response:
        self._check_application(request)
        return _json(self._commands.get(request.match_info.get("guild_id"), []))

    def _registered_command(
        self, command: dict[str, Any], guild_id: str | None, previous: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        command.setdefault("type", 1)
        permissions = command.get("default_member_permissions")
        command["default_member_permissions"] = None if permissions is None else str(permissions)
        command.setdefault("nsfw", False)
        command["id"] = previous["id"] if previous else new_snowflake()
        command["application_id"] = APPLICATION_ID
        command["version"] = new_snowflake()
        if guild_id is not None:
            command["guild_id"] = guild_id
        return command

    def _check_application(self, request: web.Request) -> None:
        if request.match_info["app_id"] != APPLICATION_ID:
            raise DiscordError(403, 50001, "Missing Access")

    # -- REST: interactions and their webhooks --------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request.match_info["token"])
        if interaction.data["id"] != request.match_info["interaction_id"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body = await _body(request) or {}
        kind, data = body.get("type"), body.get("data") or {}
        if kind == MODAL:
            _check_modal(data, opened_by=interaction.data["type"])
        if kind in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            _check_components(data.get("components") or [])
        interaction.acknowledged = True
        if kind == MODAL:
            interaction.modal = data
        elif kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            interaction.original = self._interaction_message(interaction, data, kind)
        elif kind == UPDATE_MESSAGE:
            self._update_clicked_message(interaction, data)
        if request.query.get("with_response") not in ("1", "true"):
            return web.Response(status=204)
        return _json(_callback_result(interaction, kind))

    def _interaction_message(
        self, interaction: _Interaction, data: Mapping[str, Any], kind: int
    ) -> dict[str, Any]:
        source = interaction.data
        channel_id = str(source.get("channel_id") or source["channel"]["id"])
        message = self._new_message(channel_id, data, guild_id=source.get("guild_id"))
        message.update(webhook_id=APPLICATION_ID, application_id=APPLICATION_ID, type=20)
        if kind == DEFERRED_CHANNEL_MESSAGE:
            message["flags"] = LOADING | (data.get("flags", 0) & EPHEMERAL)
        return message

    def _update_clicked_message(self, interaction: _Interaction, data: Mapping[str, Any]) -> None:
        """UPDATE_MESSAGE: the message whose component was used is edited, wherever the
        fake keeps it (a channel message, or another interaction's response)."""
        clicked = str((interaction.data.get("message") or {}).get("id"))
        changes = {**_message_fields(data), "edited_timestamp": _now()}
        if clicked in self.messages:
            self.messages[clicked].update(changes)
        for other in self._interactions.values():
            if other.original is not None and other.original["id"] == clicked:
                other.original.update(changes)

    async def _create_followup(self, request: web.Request) -> web.Response:
        interaction = self._acknowledged(request)
        message = self._interaction_message(
            interaction, await _body(request) or {}, CHANNEL_MESSAGE
        )
        self.messages[message["id"]] = message
        if request.query.get("wait") in ("1", "true", "True"):
            return _json(message)
        return web.Response(status=204)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        return _json(self._webhook_message(request))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_message(request)
        message.update(_message_fields(await _body(request) or {}), edited_timestamp=_now())
        message["flags"] = message.get("flags", 0) & ~LOADING
        return _json(message)

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._acknowledged(request)
        if request.match_info["message_id"] == "@original":
            interaction.original = None
        else:
            self.messages.pop(request.match_info["message_id"], None)
        return web.Response(status=204)

    def _interaction(self, token: str) -> _Interaction:
        try:
            return self._interactions[token]
        except KeyError:
            raise DiscordError(404, 10062, "Unknown interaction") from None

    def _acknowledged(self, request: web.Request) -> _Interaction:
        interaction = self._interactions.get(request.match_info["token"])
        if request.match_info["app_id"] != APPLICATION_ID or interaction is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if not interaction.acknowledged:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_message(self, request: web.Request) -> dict[str, Any]:
        interaction = self._acknowledged(request)
        if request.match_info["message_id"] != "@original":
            return self._message(request.match_info["message_id"])
        if interaction.original is None:
            raise DiscordError(404, 10008, "Unknown Message")
        return interaction.original


# -- discord.py client helper ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def client_running(client: discord.Client, token: str = DEFAULT_TOKEN) -> AsyncIterator[None]:
    """Run ``client.start(token)`` in a task; on exit ``client.close()`` and await the task.

    An exception the client task raised (a crash, or a startup error) propagates on exit. To
    assert a startup error, await ``client.start(token)`` directly and ``close()`` after.
    """
    task = asyncio.create_task(client.start(token), name="discord-client")
    try:
        yield
    finally:
        await client.close()
        await task


# -- payload builders -----------------------------------------------------------------------


def user(user_id: str | int, username: str, *, bot: bool = False) -> dict[str, Any]:
    """A Discord user object."""
    return {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "global_name": username.title(),
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


DEFAULT_USER = user(USER_ID, "alice")


def role(
    role_id: str | int, name: str, *, permissions: int = 0, position: int = 0
) -> dict[str, Any]:
    """A role object; the ``@everyone`` role's id equals its guild's id."""
    return {
        "id": str(role_id),
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def member(
    member_user: Mapping[str, Any],
    *,
    roles: Sequence[str | int] = (),
    nick: str | None = None,
    permissions: int | None = None,
) -> dict[str, Any]:
    """A guild member object; `permissions` is only present in interaction payloads."""
    data: dict[str, Any] = {
        "user": dict(member_user),
        "roles": [str(r) for r in roles],
        "nick": nick,
        "joined_at": _now(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
    }
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def text_channel(
    channel_id: str | int,
    name: str = "general",
    *,
    position: int = 0,
    parent_id: str | int | None = None,
    topic: str | None = None,
    permission_overwrites: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A guild text channel (type 0) as it appears in GUILD_CREATE's ``channels``."""
    return {
        "id": str(channel_id),
        "type": 0,
        "name": name,
        "position": position,
        "parent_id": None if parent_id is None else str(parent_id),
        "topic": topic,
        "nsfw": False,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "permission_overwrites": list(permission_overwrites),
        "flags": 0,
    }


def guild_create(
    guild_id: str | int,
    *,
    name: str = "Test Guild",
    channels: Sequence[Mapping[str, Any]] = (),
    members: Sequence[Mapping[str, Any]] = (),
    roles: Sequence[Mapping[str, Any]] = (),
    owner_id: str | int = OWNER_USER_ID,
    everyone_permissions: int = EVERYONE_PERMISSIONS,
) -> dict[str, Any]:
    """A GUILD_CREATE payload; the ``@everyone`` role and the bot's own member are added."""
    gid = str(guild_id)
    all_members = [member(user(BOT_USER_ID, "actionbot", bot=True)), *members]
    return {
        "id": gid,
        "name": name,
        "icon": None,
        "owner_id": str(owner_id),
        "unavailable": False,
        "large": False,
        "member_count": len(all_members),
        "joined_at": _now(),
        "features": [],
        "roles": [role(gid, "@everyone", permissions=everyone_permissions), *roles],
        "channels": [dict(c) for c in channels],
        "threads": [],
        "members": all_members,
        "presences": [],
        "voice_states": [],
        "emojis": [],
        "stickers": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "system_channel_id": None,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "preferred_locale": "en-US",
    }


def message_create(
    content: str,
    *,
    channel_id: str | int,
    author: Mapping[str, Any] = DEFAULT_USER,
    guild_id: str | int | None = None,
    mentions: Sequence[Mapping[str, Any]] = (),
    message_id: str | int | None = None,
    member: Mapping[str, Any] | None = None,
    message_reference: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A MESSAGE_CREATE payload; in a guild a partial ``member`` is added unless given.

    `mentions` are user objects; put the matching ``<@id>`` in `content` yourself, as
    Discord's clients do.
    """
    message: dict[str, Any] = {
        "id": str(message_id) if message_id is not None else new_snowflake(),
        "channel_id": str(channel_id),
        "author": dict(author),
        "content": content,
        "timestamp": _now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [dict(m) for m in mentions],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
    }
    if guild_id is not None:
        message["guild_id"] = str(guild_id)
        if member is None and not author.get("bot"):
            member = {"roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0}
    if member is not None:
        message["member"] = dict(member)
    if message_reference is not None:
        message.update(type=19, message_reference=dict(message_reference))
    return message


def interaction_create(
    command: str,
    *,
    channel_id: str | int,
    guild_id: str | int | None = None,
    options: Mapping[str, str | int | float | bool] | None = None,
    focused: str | None = None,
    invoker: Mapping[str, Any] = DEFAULT_USER,
    permissions: int = EVERYONE_PERMISSIONS,
    command_guild_id: str | int | None = None,
    command_id: str | int | None = None,
    interaction_id: str | int | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """An INTERACTION_CREATE for a slash command, or its autocomplete when `focused` is set.

    `command` is the path as typed, e.g. ``"actions disable"`` (command, optional group,
    subcommand); `options` are the leaf options. `permissions` are the invoker's resolved
    permissions in the channel (what discord.py exposes as ``interaction.permissions``).
    Set `command_guild_id` for a command synced to a guild: discord.py looks it up there.
    """
    name, *path = command.split()
    data: dict[str, Any] = {
        "id": str(command_id) if command_id is not None else new_snowflake(),
        "name": name,
        "type": 1,
        "options": _options(path, options or {}, focused),
    }
    if command_guild_id is not None:
        data["guild_id"] = str(command_guild_id)
    payload: dict[str, Any] = {
        "id": str(interaction_id) if interaction_id is not None else new_snowflake(),
        "application_id": APPLICATION_ID,
        "type": AUTOCOMPLETE if focused is not None else APPLICATION_COMMAND,
        "data": data,
        "channel_id": str(channel_id),
        "token": token or f"itoken-{uuid.uuid4().hex}",
        "version": 1,
        "locale": "en-US",
        "app_permissions": str(EVERYONE_PERMISSIONS),
        "attachment_size_limit": 10 * 1024 * 1024,
        "entitlements": [],
    }
    payload |= _interaction_context(channel_id, guild_id, invoker, permissions)
    return payload


def component_interaction(
    custom_id: str,
    message: Mapping[str, Any],
    *,
    guild_id: str | int | None = None,
    invoker: Mapping[str, Any] = DEFAULT_USER,
    permissions: int = EVERYONE_PERMISSIONS,
    values: Sequence[str] | None = None,
) -> dict[str, Any]:
    """An INTERACTION_CREATE for a click on a button (`custom_id`) of `message`, a message
    the bot posted (as the fake keeps it), or with `values` a choice in a string select."""
    channel_id = str(message["channel_id"])
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
    if values is not None:
        data = {"custom_id": custom_id, "component_type": 3, "values": list(values)}
    payload: dict[str, Any] = {
        "id": new_snowflake(),
        "application_id": APPLICATION_ID,
        "type": MESSAGE_COMPONENT,
        "data": data,
        "message": dict(message),
        "channel_id": channel_id,
        "token": f"itoken-{uuid.uuid4().hex}",
        "version": 1,
        "locale": "en-US",
        "app_permissions": str(EVERYONE_PERMISSIONS),
        "attachment_size_limit": 10 * 1024 * 1024,
        "entitlements": [],
    }
    return payload | _interaction_context(channel_id, guild_id, invoker, permissions)


def modal_submit(
    modal: Mapping[str, Any],
    values: Mapping[str, str],
    *,
    channel_id: str | int,
    guild_id: str | int | None = None,
    invoker: Mapping[str, Any] = DEFAULT_USER,
    permissions: int = EVERYONE_PERMISSIONS,
    message: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The INTERACTION_CREATE a client sends when the user submits `modal` (as the bot sent
    it): each input as Discord reports it, inside its label, with the pre-filled value or
    the default options unless `values` (by input ``custom_id``) says what the user typed or
    chose. `message` is the message whose component opened the modal, if one did."""
    ids = itertools.count(1)

    def answered(component: Mapping[str, Any]) -> dict[str, Any]:
        custom_id = component["custom_id"]
        item: dict[str, Any] = {"type": component["type"], "id": next(ids)}
        item["custom_id"] = custom_id
        if component["type"] == 4:
            item["value"] = values.get(custom_id, component.get("value") or "")
        else:
            chosen = [o["value"] for o in component.get("options", []) if o.get("default")]
            item["values"] = [values[custom_id]] if custom_id in values else chosen
        return item

    components = []
    for top in modal["components"]:
        if top["type"] == 18:
            label_id = next(ids)
            components.append({"type": 18, "id": label_id, "component": answered(top["component"])})
        elif top["type"] == 1:
            components.append({"type": 1, "components": [answered(c) for c in top["components"]]})
    payload: dict[str, Any] = {
        "id": new_snowflake(),
        "application_id": APPLICATION_ID,
        "type": MODAL_SUBMIT,
        "data": {"custom_id": modal["custom_id"], "components": components},
        "channel_id": str(channel_id),
        "token": f"itoken-{uuid.uuid4().hex}",
        "version": 1,
        "locale": "en-US",
        "app_permissions": str(EVERYONE_PERMISSIONS),
        "attachment_size_limit": 10 * 1024 * 1024,
        "entitlements": [],
    }
    if message is not None:
        payload["message"] = dict(message)
    return payload | _interaction_context(channel_id, guild_id, invoker, permissions)


def _interaction_context(
    channel_id: str | int,
    guild_id: str | int | None,
    invoker: Mapping[str, Any],
    permissions: int,
) -> dict[str, Any]:
    if guild_id is None:
        channel = {"id": str(channel_id), "type": 1, "recipients": [dict(invoker)], "flags": 0}
        owners = {"1": invoker["id"]}
        return {
            "user": dict(invoker),
            "channel": channel,
            "context": 1,
            "authorizing_integration_owners": owners,
        }
    channel = {**text_channel(channel_id, "channel"), "guild_id": str(guild_id)}
    return {
        "guild_id": str(guild_id),
        "guild_locale": "en-US",
        "member": member(invoker, permissions=permissions),
        "channel": channel,
        "context": 0,
        "authorizing_integration_owners": {"0": str(guild_id)},
    }


def _options(
    path: Sequence[str], leaves: Mapping[str, str | int | float | bool], focused: str | None
) -> list[dict[str, Any]]:
    if path:
        kind = 2 if len(path) > 1 else 1  # subcommand group, subcommand
        nested = _options(path[1:], leaves, focused)
        return [{"type": kind, "name": path[0], "options": nested}]
    result = []
    for name, value in leaves.items():
        option: dict[str, Any] = {"type": _option_type(value), "name": name, "value": value}
        if name == focused:
            option["focused"] = True
        result.append(option)
    return result


def _option_type(value: str | int | float | bool) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


# -- Discord's rules for what the bot sends -----------------------------------------------


def _check_modal(data: Mapping[str, Any], *, opened_by: int) -> None:
    """Refuse a modal as Discord does (400, Invalid Form Body) when it breaks a rule."""
    problems = []
    if opened_by == MODAL_SUBMIT:
        problems.append("a modal submit cannot be answered with a modal")
    if not 1 <= len(data.get("title") or "") <= 45:
        problems.append("title: 1 to 45 characters")
    if not 1 <= len(data.get("custom_id") or "") <= 100:
        problems.append("custom_id: 1 to 100 characters")
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        problems.append(f"components: 1 to 5 (got {len(components)})")
    inputs: list[str] = []
    for top in components:
        if top.get("type") != 18:
            problems.append(f"a top-level component of type {top.get('type')} (use labels)")
            continue
        if not 1 <= len(top.get("label") or "") <= 45:
            problems.append(f"label {top.get('label')!r}: 1 to 45 characters")
        if len(top.get("description") or "") > 100:
            problems.append(f"label {top.get('label')!r}: description over 100 characters")
        inner = top.get("component") or {}
        inputs.append(str(inner.get("custom_id")))
        problems += _input_problems(inner)
    if len(set(inputs)) != len(inputs):
        problems.append("custom_id: each input needs its own")
    if problems:
        raise DiscordError(400, 50035, "Invalid Form Body: " + "; ".join(problems))


def _input_problems(component: Mapping[str, Any]) -> list[str]:
    name = component.get("custom_id")
    if not 1 <= len(name or "") <= 100:
        return [f"input custom_id {name!r}: 1 to 100 characters"]
    if component.get("type") == 4:
        value, most = component.get("value") or "", component.get("max_length") or 4000
        problems = [] if most <= 4000 else [f"{name}: max_length over 4000"]
        if len(value) > most:
            problems.append(f"{name}: value longer than max_length")
        if len(component.get("placeholder") or "") > 100:
            problems.append(f"{name}: placeholder over 100 characters")
        return problems
    if component.get("type") == 3:
        return _select_problems(component)
    return [f"{name}: type {component.get('type')} is not an input"]


def _select_problems(component: Mapping[str, Any]) -> list[str]:
    name, options = component.get("custom_id"), component.get("options") or []
    problems = [] if 1 <= len(options) <= 25 else [f"{name}: 1 to 25 options"]
    for option in options:
        if not 1 <= len(option.get("label") or "") <= 100:
            problems.append(f"{name}: option label 1 to 100 characters")
        if len(option.get("description") or "") > 100:
            problems.append(f"{name}: option description over 100 characters")
    if len({o.get("value") for o in options}) != len(options):
        problems.append(f"{name}: option values must differ")
    return problems


def _check_components(rows: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a message's components as Discord does: at most 5 rows, each of at most 5
    buttons or one select, custom_ids unique and at most 100 characters."""
    problems = [] if len(rows) <= 5 else [f"components: at most 5 rows (got {len(rows)})"]
    custom_ids: list[str] = []
    for row in rows:
        items = row.get("components") or []
        selects = [c for c in items if c.get("type") != 2]
        if len(items) > 5 or (selects and len(items) != 1):
            problems.append("a row holds up to 5 buttons or one select")
        for item in items:
            custom_ids.append(str(item.get("custom_id")))
            if len(item.get("custom_id") or "") > 100 or len(item.get("label") or "") > 80:
                problems.append(f"{item.get('custom_id')!r}: custom_id ≤ 100, label ≤ 80")
            if item.get("type") == 3:
                problems += _select_problems(item)
    if len(set(custom_ids)) != len(custom_ids):
        problems.append("custom_id: each component needs its own")
    if problems:
        raise DiscordError(400, 50035, "Invalid Form Body: " + "; ".join(problems))


# -- small helpers --------------------------------------------------------------------------


_MESSAGE_FIELDS = ("content", "embeds", "components", "flags")


def _message_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a create/edit body that end up on the message object."""
    fields = {key: body[key] for key in _MESSAGE_FIELDS if key in body}
    if "content" in fields and fields["content"] is None:
        fields["content"] = ""
    return fields


def _callback_result(interaction: _Interaction, kind: int | None) -> dict[str, Any]:
    result: dict[str, Any] = {"interaction": {"id": interaction.data["id"]}}
    result["interaction"]["type"] = interaction.data["type"]
    original = interaction.original
    if original is not None:
        result["interaction"] |= {
            "response_message_id": original["id"],
            "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(original.get("flags", 0) & EPHEMERAL),
        }
        result["resource"] = {"type": kind, "message": original}
    return result


def _path_matches(pattern: str | re.Pattern[str], path: str) -> bool:
    if isinstance(pattern, str):
        return path.startswith(pattern)
    return pattern.search(path) is not None


def _needs_bot_token(path: str) -> bool:
    return not path.startswith(("/interactions/", "/webhooks/"))


def _json(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    # discord.py parses a body as JSON only if Content-Type is exactly "application/json".
    merged = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(payload).encode(), status=status, headers=merged)


async def _no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _body(request: web.Request) -> Any:
    """The parsed body for a handler; aiohttp caches the raw bytes, so reading twice is cheap."""
    body, _ = await _read_body(request)
    return body


async def _read_body(request: web.Request) -> tuple[Any, tuple[tuple[str, bytes], ...]]:
    """The JSON body, or ``payload_json`` plus files of a multipart upload."""
    if request.content_type == "application/json":
        return await request.json(), ()
    if request.content_type != "multipart/form-data":
        return None, ()
    form = await request.post()
    files = tuple(
        (value.filename, value.file.read())
        for value in form.values()
        if isinstance(value, web.FileField)
    )
    payload = form.get("payload_json")
    return (json.loads(payload) if isinstance(payload, str) else None), files
