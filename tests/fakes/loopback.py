"""The lifecycle every fake shares: an aiohttp app on 127.0.0.1, on a free port."""

from __future__ import annotations

import ssl
from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer:
    """Serves `build_app()` on 127.0.0.1 port 0; `async with` starts and stops it.

    Subclasses build their app, may serve TLS (`tls_context`), let go of anything held open
    before shutdown (`release`), and check their script after a clean exit (`on_clean_exit`).
    """

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    def build_app(self) -> web.Application:
        raise NotImplementedError

    def tls_context(self) -> ssl.SSLContext | None:
        return None

    async def release(self) -> None:
        """Let go of hanging handlers or open websockets so shutdown does not wait."""

    def on_clean_exit(self) -> None:
        """Called after `async with` ends without an exception (e.g. script checks)."""

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        self._runner = web.AppRunner(self.build_app(), shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls_context())
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Release what is held open, then shut the server down."""
        await self.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if exc_type is None:
            self.on_clean_exit()
