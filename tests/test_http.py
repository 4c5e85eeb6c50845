"""The HTTP server: liveness always, readiness only when every check passes."""

from __future__ import annotations

import aiohttp

from bot.runtime.http import HttpServer


async def test_readiness_reflects_every_check() -> None:
    """/readyz is 503 naming the failing check, 200 once all pass; /healthz is always 200."""
    state = {"slack": False}

    async def database() -> bool:
        return True

    async def slack() -> bool:
        return state["slack"]

    async def broken() -> bool:
        raise RuntimeError("check crashed")

    server = HttpServer(port=0, host="127.0.0.1")
    server.add_check("database", database)
    server.add_check("slack", slack)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as health:
                assert health.status == 200
            async with session.get(f"{base}/readyz") as not_ready:
                assert not_ready.status == 503
                assert (await not_ready.json())["checks"] == {"database": True, "slack": False}
            state["slack"] = True
            async with session.get(f"{base}/readyz") as ready:
                assert ready.status == 200
            server.add_check("broken", broken)
            async with session.get(f"{base}/readyz") as crashed:
                assert crashed.status == 503
    finally:
        await server.stop()
