"""The MCP server over the core: `tools/list` and `tools/call` handlers on the official SDK's
low-level `Server`, served over stdio or streamable HTTP, in both protocol eras the SDK
speaks (the 2025 handshake and 2026-07-28).

Clients hear when the served tools change: every `POLL_SECONDS` (the toggles live in the
database, where an admin's `/actions disable` on any replica lands) and at once after a
reload (`ActionSet.on_change`), the tool list is built again and compared with the last one.
A change is published to `subscriptions/listen` streams (2026-07-28) and sent as
`notifications/tools/list_changed` to the handshake-era connections seen so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from adapters.mcp.calls import Caller, PlannedCall, ToolCalls
from adapters.mcp.confirm import Decision, confirmed
from adapters.mcp.tools import input_schema

logger = logging.getLogger(__name__)

Context = ServerRequestContext[dict[str, Any], Any]

SERVER_NAME = "actionbot"
POLL_SECONDS = 2.0
"""How often the toggles are looked at for a change of the served tools."""
MAX_HANDSHAKE_CONNECTIONS = 1024
"""Handshake-era connections remembered for `list_changed` (the oldest is forgotten first)."""


class _Server(Server[dict[str, Any]]):
    """The SDK's `Server`, advertising `tools.listChanged` to handshake-era clients on every
    transport (the HTTP session manager asks for initialization options without any)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


class ActionServer:
    """Serves the active actions as MCP tools (one instance for every connection)."""

    def __init__(
        self, *, calls: ToolCalls, state_key: bytes, confirm_ttl: float, version: str
    ) -> None:
        self.calls = calls
        self.offered = calls.offered
        self.confirm_ttl = confirm_ttl
        self.bus = InMemorySubscriptionBus()
        self.listeners = ListenHandler(self.bus)
        self.sdk = _Server(
            SERVER_NAME,
            version=version,
            title="ActionBot",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=self.listeners,
            get_tool_input_schema=self._input_schema,
        )
        # The 2026-07-28 confirmation round trip carries its state through the client:
        # sealed under a key derived from the instance key, so any replica can read it.
        security = RequestStateSecurity(keys=[state_key], ttl=confirm_ttl)
        self.sdk.middleware.append(RequestStateBoundary(security, default_audience=SERVER_NAME))
        self.stdio = f"stdio:{secrets.token_hex(8)}"
        """This process's one stdio connection."""
        self._handshake: dict[str, ServerSession] = {}
        self._changed = asyncio.Event()
        self.offered.actions.on_change(self._changed.set)

    async def serve_stdio(self) -> None:
        """Serve one client on stdin and stdout, until it closes stdin."""
        async with stdio_server() as (read, write):
            await self.sdk.run(read, write, self.sdk.create_initialization_options())

    def close(self) -> None:
        """End the `subscriptions/listen` streams (clients listen again after a restart)."""
        self.listeners.close()

    def caller(self, ctx: Context) -> Caller:
        """The connection a request came on. An HTTP session's id is a credential, so only a
        hash of it is used; a 2026-07-28 HTTP request has no session and stands alone."""
        headers = getattr(ctx.request, "headers", None)
        if headers is None:
            return Caller(self.stdio)
        session = headers.get("mcp-session-id")
        if not session:
            return Caller(f"http:{secrets.token_hex(8)}")
        return Caller(f"http:{hashlib.sha256(session.encode()).hexdigest()[:16]}")

    async def _list_tools(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._remember(ctx)
        return types.ListToolsResult(tools=await self.offered.tools())

    async def _call_tool(
        self, ctx: Context, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        self._remember(ctx)
        caller = self.caller(ctx)
        request = str(ctx.request_id)
        planned: Decision = await self.calls.plan(
            params.name, params.arguments, caller=caller, request=request
        )
        if isinstance(planned, PlannedCall) and planned.action.confirm:
            planned = await confirmed(ctx, params, planned=planned, ttl=self.confirm_ttl)
        if not isinstance(planned, PlannedCall):
            return planned  # refused, or waiting for the user's answer
        return await self.calls.send(planned, caller)

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        actions = self.offered.actions
        return input_schema(actions.get(name)) if name in actions else None

    def _remember(self, ctx: Context) -> None:
        """Keep a handshake-era connection's session, to tell it of tool changes."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return  # told through its subscriptions/listen stream
        key = self.caller(ctx).connection
        self._handshake.pop(key, None)
        self._handshake[key] = ctx.session
        while len(self._handshake) > MAX_HANDSHAKE_CONNECTIONS:
            self._handshake.pop(next(iter(self._handshake)))

    async def watch_tools(self, since: str | None, every: float = POLL_SECONDS) -> None:
        """Tell clients whenever the served tools change from `since` (a `listing`), until
        cancelled."""
        seen = since
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._changed.wait()
            self._changed.clear()
            now = await self.listing()
            if now is not None and now != seen:
                seen = now
                await self.announce()

    async def listing(self) -> str | None:
        """The served tools as comparable text (None when the states cannot be read now)."""
        try:
            tools = await self.offered.tools()
        except Exception:  # the database is down: look again next time
            logger.warning("could not read the actions' states", exc_info=True)
            return None
        return json.dumps([tool.model_dump(mode="json") for tool in tools], sort_keys=True)

    async def announce(self) -> None:
        """`tools/list_changed` to every listening client."""
        logger.info("the actions served over MCP changed: telling the clients")
        await self.bus.publish(ToolsListChanged())
        for key, session in list(self._handshake.items()):
            try:
                await session.send_notification(types.ToolListChangedNotification())
            except Exception:  # that connection is gone (a closed stream raises)
                logger.debug("MCP connection %s gone", key, exc_info=True)
                self._handshake.pop(key, None)
