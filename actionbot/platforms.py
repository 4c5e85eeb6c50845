"""Which chat platforms `actionbot run` starts, from the tokens that are set.

Platform SDKs are imported only for the platforms configured, so the core and the other
adapters never load them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

from aiohttp import web

from actionbot.app import process_owner, prune_hourly
from actionbot.catalogue import Catalogue
from bot.admin.operations import Admin
from bot.delivery import CLAIM_BATCH, Inbox
from bot.engine import Engine
from bot.errors import ConfigError, StartupError
from bot.runtime.alerts import Alerts
from bot.runtime.config import Settings
from bot.runtime.http import HttpServer
from bot.runtime.metrics import CONTENT_TYPE, Metrics
from bot.runtime.rates import CustomerLimits, parse_rate
from bot.runtime.tasks import Turns
from bot.store import Store

logger = logging.getLogger(__name__)

WATCH_SECONDS = 2.0
"""How often the platforms' connections are looked at, to log when one is lost or back."""
CLOSE_SECONDS = 5.0
"""How long shutdown waits for one client to close before going on without it."""


class Platform(Protocol):
    """What `actionbot run` needs from a platform adapter."""

    async def check(self) -> None:
        """Check the tokens with the platform without connecting; `ConfigError` if not."""

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
    inbox: Inbox,
    http: HttpServer,
    alerts: Alerts,
) -> dict[str, Platform]:
    """The adapters whose tokens are set; their HTTP routes are added to `http`, and how
    they post to a channel to `alerts`."""
    platforms: dict[str, Platform] = {}
    if settings.slack_bot_token is not None:
        from adapters.slack.adapter import SlackAdapter
        from adapters.slack.alerts import alert_poster

        slack = SlackAdapter(
            settings=settings, engine=engine, admin=admin, store=store, turns=turns, inbox=inbox
        )
        alerts.register("slack", alert_poster(slack.client))
        if not slack.socket_mode:
            http.add_route("POST", "/slack/events", slack.handle_http)
        platforms["slack"] = slack
    if settings.discord_token is not None:
        from adapters.discord.adapter import DiscordAdapter
        from adapters.discord.shards import DiscordShards

        def make(shard: tuple[int, int] | None, commands: bool) -> DiscordAdapter:
            return DiscordAdapter(
                settings=settings,
                engine=engine,
                admin=admin,
                store=store,
                turns=turns,
                inbox=inbox,
                shard=shard,
                register=False,
                commands=commands,
            )

        shards = DiscordShards(
            count=settings.discord_shards,
            make=make,
            leases=store,
            inbox=inbox,
            owner=inbox.owner,
        )
        alerts.register("discord", shards.post_alert)
        platforms["discord"] = shards
    return platforms


async def serve(
    settings: Settings,
    *,
    engine: Engine,
    admin: Admin,
    store: Store,
    metrics: Metrics,
    alerts: Alerts | None = None,
    reloader: Catalogue | None = None,
) -> None:
    """Run the HTTP server and every configured platform until SIGTERM or SIGINT.

    Starting is one phase with one outcome: every problem (port, rejected token, unreachable
    platform) is collected into one `StartupError`. A signal during start stops it at once.
    Once started, messages left unanswered by an earlier run are answered first; then the
    inbox's leases are kept up and old rows deleted, periodically.
    """
    turns = Turns(limit=settings.max_turns)
    grace = 0.0  # until started, nothing may post: turns queued at start are left for later
    inbox = Inbox(
        store,
        turns,
        metrics=metrics,
        attempts=settings.turn_attempts,
        owner=process_owner(),
        started=False,
        handoff_seconds=settings.handoff_hours * 3600,
        customers=CustomerLimits(parse_rate(settings.user_rate) if settings.user_rate else None),
        handoff_platforms=frozenset(settings.handoff_channels),
    )
    http = HttpServer(port=settings.http_port, host=settings.http_host)
    token = settings.metrics_token

    async def scrape(request: web.Request) -> web.Response:
        if token is not None and not bearer_matches(request, token.get_secret_value()):
            return web.Response(
                status=401,
                text="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body = await metrics.render(store)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    http.add_route("GET", "/metrics", scrape)
    platforms = configured_platforms(
        settings,
        engine=engine,
        admin=admin,
        store=store,
        turns=turns,
        inbox=inbox,
        http=http,
        alerts=alerts or Alerts(),
    )
    http.add_check("database", store.ping)
    for name, platform in platforms.items():
        http.add_check(name, platform.ready)
    stop = _stop_on_signals()
    try:
        # Messages left by an earlier run are queued before any new one can arrive; their
        # turns wait until the platforms are connected.
        while await inbox.recover(at_start=True) == CLAIM_BATCH:
            pass
        if not await _unless_stopped(stop, _start(http, platforms)):
            logger.info("stopped while starting")
            return
        grace = settings.shutdown_grace
        inbox.platforms_started()
        logger.info("ActionBot is running: %s", ", ".join(platforms) or "no platforms")
        background = [
            asyncio.create_task(_watch(platforms), name="platform watch"),
            asyncio.create_task(inbox.keep_up(), name="inbox leases and replay"),
            asyncio.create_task(prune_hourly(store, settings), name="retention"),
        ]
        if reloader is not None:
            background.append(asyncio.create_task(reloader.watch(), name="actions file watch"))
            _reload_on_hangup(reloader, background)
        await stop.wait()
        for task in background:
            task.cancel()
        logger.info(
            "shutting down: finishing turns in progress (up to %.0f s)", settings.shutdown_grace
        )
    finally:
        inbox.hold_new()
        await _shut_down(platforms, turns=turns, http=http, grace=grace)


async def _start(http: HttpServer, platforms: dict[str, Platform]) -> None:
    """Start the HTTP server and every platform; `StartupError` lists all that failed."""
    problems: list[str] = []
    for name, start in [("http", http.start)] + [(n, p.start) for n, p in platforms.items()]:
        try:
            await start()
        except ConfigError as exc:
            problems.append(str(exc))
            logger.debug("%s failed to start", name)
    if problems:
        raise StartupError(problems)


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
    """Run `work` unless `stop` is set first (then cancel it); True when it finished."""
    task = asyncio.create_task(work, name="start")
    stopped = asyncio.create_task(stop.wait(), name="stop signal")
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        task.result()  # raises what the start raised
        return True
    task.cancel()
    await _bounded(asyncio.gather(task, return_exceptions=True), "cancelling the start")
    return False


async def _watch(platforms: dict[str, Platform]) -> None:
    """Log each platform's connection state when it changes (readiness shows it too)."""
    connected = dict.fromkeys(platforms, True)
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        for name, platform in platforms.items():
            now = await _ready(platform)
            if now == connected[name]:
                continue
            connected[name] = now
            if now:
                logger.info("%s connection restored", name.capitalize())
            else:
                logger.warning(
                    "%s connection lost; reconnecting with backoff (/readyz is 503 meanwhile)",
                    name.capitalize(),
                )


async def _ready(platform: Platform) -> bool:
    try:
        return await platform.ready()
    except Exception:
        return False


async def _shut_down(
    platforms: dict[str, Platform], *, turns: Turns, http: HttpServer, grace: float
) -> None:
    """Close the doors, let turns finish within `grace`, then close everything; a client
    that does not close within `CLOSE_SECONDS` is left behind rather than waited for."""
    for name, platform in platforms.items():
        await _bounded(platform.stop_receiving(), f"{name}: stop receiving")
    await turns.close(grace=grace)
    for name, platform in platforms.items():
        await _bounded(platform.close(), f"{name}: close")
    await _bounded(http.stop(), "HTTP server: stop")


async def _bounded(work: Awaitable[Any], what: str) -> None:
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await work
    except TimeoutError:
        logger.warning("%s took more than %.0f s; going on without it", what, CLOSE_SECONDS)
    except Exception as exc:
        logger.warning("%s failed: %s", what, exc)


def bearer_matches(request: web.Request, token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>` (compared in constant
    time)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    given = value.strip().encode("utf-8", "surrogateescape")  # any header text, no error
    return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode("utf-8"))


def _reload_on_hangup(reloader: Catalogue, tasks: list[asyncio.Task[Any]]) -> None:
    """SIGHUP reads the actions file again (each reload's task is kept with the others)."""

    def hangup() -> None:
        tasks.append(asyncio.create_task(reloader.reload("SIGHUP"), name="actions reload"))

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, hangup)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
