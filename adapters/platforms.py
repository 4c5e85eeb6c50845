"""Which chat platforms `actionbot run` starts, from the tokens that are set.

Platform SDKs are imported only for the platforms configured, so the core and the other
adapters never load them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

from aiohttp import web

from bot.admin import Admin
from bot.config import Settings
from bot.engine import Engine
from bot.http import HttpServer
from bot.metrics import CONTENT_TYPE, Metrics
from bot.store import Store
from bot.tasks import Turns

logger = logging.getLogger(__name__)


class Platform(Protocol):
    """What `actionbot run` needs from a platform adapter."""

    async def start(self) -> None:
        """Connect, checking the tokens; `ConfigError` with what to fix."""

    async def stop_receiving(self) -> None:
        """Take no new messages; turns in progress go on."""

    async def close(self) -> None:
        """Close connections."""

    async def ready(self) -> bool:
        """Connected and receiving."""


def configured_platforms(
    settings: Settings,
    *,
    engine: Engine,
    admin: Admin,
    store: Store,
    turns: Turns,
    http: HttpServer,
) -> dict[str, Platform]:
    """The adapters whose tokens are set; their HTTP routes are added to `http`."""
    platforms: dict[str, Platform] = {}
    if settings.slack_bot_token is not None:
        from adapters.slack.adapter import SlackAdapter

        slack = SlackAdapter(
            settings=settings, engine=engine, admin=admin, store=store, turns=turns
        )
        if not slack.socket_mode:
            http.add_route("POST", "/slack/events", slack.handle_http)
        platforms["slack"] = slack
    if settings.discord_token is not None:
        from adapters.discord.adapter import DiscordAdapter

        discord = DiscordAdapter(
            settings=settings, engine=engine, admin=admin, store=store, turns=turns
        )
        platforms["discord"] = discord
    return platforms


async def serve(
    settings: Settings, *, engine: Engine, admin: Admin, store: Store, metrics: Metrics
) -> None:
    """Run the HTTP server and every configured platform until SIGTERM or SIGINT."""
    turns = Turns(limit=settings.max_turns)
    http = HttpServer(port=settings.http_port)

    async def scrape(_: web.Request) -> web.Response:
        body = await metrics.render(store)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    http.add_route("GET", "/metrics", scrape)
    platforms = configured_platforms(
        settings, engine=engine, admin=admin, store=store, turns=turns, http=http
    )
    http.add_check("database", store.ping)
    for name, platform in platforms.items():
        http.add_check(name, platform.ready)
    stop = _stop_on_signals()
    await http.start()
    try:
        for platform in platforms.values():
            await platform.start()
        logger.info("ActionBot is running: %s", ", ".join(platforms) or "no platforms")
        await stop.wait()
        logger.info(
            "shutting down: finishing turns in progress (up to %.0f s)", settings.shutdown_grace
        )
    finally:
        for platform in platforms.values():
            await platform.stop_receiving()
        await turns.close(grace=settings.shutdown_grace)
        for platform in platforms.values():
            await platform.close()
        await http.stop()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
