"""The bot's one HTTP server (aiohttp): health, readiness, and routes adapters add.

`/healthz` answers while the process runs; `/readyz` answers 200 only when every readiness
check passes (the database answers, each platform is connected and receiving) and 503
otherwise, with the result of each check. The bot only starts serving once its
configuration (LLM, actions file) has been checked, so those need no check of their own.
Slack's HTTP mode adds `POST /slack/events` here.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.errors import ConfigError

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
"""A readiness check: True when its part is ready."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpServer:
    """Serves health, readiness and adapter routes on one port."""

    def __init__(self, *, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requested_port = port
        self.checks: dict[str, Check] = {}
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    async def start(self) -> None:
        """Listen; `ConfigError` saying which setting to change when the port is unusable."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(_listen_problem(exc, self.requested_port)) from None
        self._runner = runner
        addresses = runner.addresses  # the bound (host, port, …) of each listening socket
        self.port = addresses[0][1] if addresses else self.requested_port
        logger.info("HTTP server listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        results = {name: await _safely(check) for name, check in self.checks.items()}
        ready = all(results.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": results},
            status=200 if ready else 503,
        )


def _listen_problem(exc: OSError, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is in use (another program, or another ActionBot, listens on it): "
            "set ACTIONBOT_HTTP_PORT to a free port"
        )
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port}: set ACTIONBOT_HTTP_PORT above 1023"
    return f"cannot listen on port {port} ({exc.strerror}): check ACTIONBOT_HTTP_PORT"


async def _safely(check: Check) -> bool:
    try:
        return await check()
    except Exception:
        logger.warning("readiness check failed", exc_info=True)
        return False
