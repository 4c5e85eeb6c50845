"""The operator's HTTP surface of a real `actionbot run`: the bind address and the token
that guards `/metrics`."""

from __future__ import annotations

import signal

import aiohttp
from deployment import Deployment, get


async def test_metrics_want_the_token_and_health_stays_open(deployment: Deployment) -> None:
    """With ACTIONBOT_METRICS_TOKEN, `/metrics` is 401 without the bearer token (or with a
    wrong one) and 200 with it; `/healthz` needs nothing; nothing is logged as an error."""
    async with deployment.running(ACTIONBOT_METRICS_TOKEN="scrape-me-4711") as bot:
        port = await bot.port()
        assert (await get(port, "/metrics"))[0] == 401
        assert (await get(port, "/healthz"))[0] == 200
        url = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as session:
            for token, status in (("wrong", 401), ("t\u00e9", 401), ("scrape-me-4711", 200)):
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(url, headers=headers) as response:
                    assert response.status == status
                    if status == 200:
                        assert "actionbot_turns" in await response.text()
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0
    assert not [line for line in bot.logs if " ERROR " in line]
    assert not [line for line in bot.logs if "scrape-me-4711" in line]


async def test_the_bind_address_is_honoured(deployment: Deployment) -> None:
    """ACTIONBOT_HTTP_HOST=127.0.0.2: the server answers there and not on 127.0.0.1."""
    async with deployment.running(ACTIONBOT_HTTP_HOST="127.0.0.2") as bot:
        port = await bot.port()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.2:{port}/healthz") as response:
                assert response.status == 200
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz"):
                    reached = True
            except aiohttp.ClientConnectionError:
                reached = False
        assert not reached
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0
