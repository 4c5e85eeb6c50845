"""`actionbot mcp --http`: the MCP server over streamable HTTP, behind a bearer token.

Every request must carry `Authorization: Bearer <ACTIONBOT_MCP_TOKEN>` (compared in constant
time); anything else is answered 401 before the SDK sees it. The socket is bound before the
server starts, so a port in use is a clear startup problem and port 0 can be logged as the
port actually chosen.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import socket
from typing import Any

import uvicorn
from mcp.server.lowlevel import Server
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.errors import ConfigError

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
CHALLENGE = 'Bearer realm="actionbot-mcp"'


def bearer_matches(headers: Headers, token: str) -> bool:
    """Whether the headers carry `Authorization: Bearer <token>` (constant-time compare)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    given = value.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode("utf-8"))


class BearerGuard:
    """ASGI middleware: HTTP requests without the token get 401, websockets are closed
    (lifespan passes)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not bearer_matches(Headers(scope=scope), self.token):
            await send({"type": "websocket.close", "code": 1008})  # no websocket is served
            return
        if scope["type"] == "http" and not bearer_matches(Headers(scope=scope), self.token):
            refused = PlainTextResponse(
                "unauthorized", status_code=401, headers={"WWW-Authenticate": CHALLENGE}
            )
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


def guarded_app(sdk: Server[Any], *, host: str, token: str) -> ASGIApp:
    """The SDK's streamable HTTP app on `MCP_PATH`, behind the token. Bound to loopback,
    the SDK also refuses requests whose `Host` is not a loopback name (DNS rebinding)."""
    return BearerGuard(sdk.streamable_http_app(streamable_http_path=MCP_PATH, host=host), token)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`; `ConfigError` naming the setting when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "it is in use: set ACTIONBOT_MCP_PORT to a free port"
        else:
            why = f"{exc.strerror}: check ACTIONBOT_HTTP_HOST and ACTIONBOT_MCP_PORT"
        raise ConfigError(f"cannot listen on {host}:{port} for MCP: {why}") from None


async def serve_http(app: ASGIApp, sock: socket.socket, *, stop: asyncio.Event) -> None:
    """Serve `app` on `sock` until `stop` is set; connections still open (listen streams)
    get a few seconds to end."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)

    async def exit_when_stopped() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(exit_when_stopped(), name="MCP server stop")
    logger.info("MCP server listening on http://%s:%s%s", shown, port, MCP_PATH)
    try:
        await server.serve(sockets=[sock])
    finally:
        stopper.cancel()
