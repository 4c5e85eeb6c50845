"""`actionbot mcp [--http]`: the active actions served as MCP tools to other agents.

Wires the same services as `actionbot run` (store, webhook client with its recorder, admin
toggles, the living catalogue) into the MCP adapter, and serves until the client closes
stdin (stdio) or until SIGTERM/SIGINT (HTTP). No LLM is needed: the calling agent is the
model. The actions file and the actions made in chat are watched as in `actionbot run`, so
an edit reaches `tools/list` in both modes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from actionbot.app import open_services
from actionbot.catalogue import Catalogue
from adapters.mcp.calls import ToolCalls
from adapters.mcp.http import guarded_app, listening_socket, serve_http
from adapters.mcp.server import ActionServer
from adapters.mcp.tools import Offered
from bot import __version__
from bot.runtime.config import Settings
from bot.store import Store

logger = logging.getLogger(__name__)

HTTP_NEEDS_BEARER = (
    "ACTIONBOT_MCP_TOKEN is not set: `actionbot mcp --http` serves only clients that send "
    "`Authorization: Bearer <token>`; set it to a long random value (`openssl rand -hex 32`)."
)


async def instance_key(settings: Settings, store: Store) -> bytes:
    """The key of `Idempotency-Key`s, as the engine has it: the signing secret, else the
    database's own instance key (the same on every replica)."""
    secret = settings.webhook_secret
    if secret is not None:
        return secret.get_secret_value().encode("utf-8")
    return await store.instance_key()


def state_key(key: bytes) -> bytes:
    """The key that seals confirmation round trips, derived from the instance key."""
    return hmac.new(key, b"actionbot mcp request state", hashlib.sha256).digest()


async def serve_mcp(settings: Settings, *, http: bool) -> None:
    """Serve MCP clients over stdio, or over HTTP with `http`, until told to stop."""
    if logging.getLogger().level > logging.DEBUG:
        # The SDK logs HTTP session ids (credentials, with the token) at INFO.
        logging.getLogger("mcp").setLevel(logging.WARNING)
    async with open_services(settings) as services:
        key = await instance_key(settings, services.store)
        offered = Offered(services.actions, services.admin.active_flags)
        calls = ToolCalls(
            offered=offered,
            webhooks=services.webhooks,
            instance_key=key,
            result_chars=settings.result_chars,
            dry_run=services.admin.dry_run_flags,
        )
        server = ActionServer(
            calls=calls,
            state_key=state_key(key),
            confirm_ttl=settings.confirm_ttl,
            version=__version__,
        )
        catalogue = Catalogue(
            settings, services.actions, webhooks=services.webhooks, store=services.store
        )
        services.admin.editing.catalogue = catalogue
        stop = _stop_on_signals()
        served = await server.listing()  # before any client: every later change is news
        background = [
            asyncio.create_task(catalogue.watch(stop), name="actions file watch"),
            asyncio.create_task(server.watch_tools(served), name="MCP tool list watch"),
        ]
        try:
            await _serve(server, settings, stop=stop, http=http)
        finally:
            stop.set()  # the file watcher lets go at once, rather than at its next timeout
            server.close()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)


async def _serve(
    server: ActionServer, settings: Settings, *, stop: asyncio.Event, http: bool
) -> None:
    if not http:
        await _until(stop, server.serve_stdio())
        return
    assert settings.mcp_token is not None  # checked before starting
    sock = listening_socket(settings.http_host, settings.mcp_port)
    token = settings.mcp_token.get_secret_value()
    app = guarded_app(server.sdk, host=settings.http_host, token=token)
    await serve_http(app, sock, stop=stop)


async def _until(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Run `work` until it ends or `stop` is set (then cancel it)."""
    task = asyncio.create_task(work, name="MCP stdio")
    stopped = asyncio.create_task(stop.wait(), name="stop signal")
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        task.result()  # raises what the serving raised
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
