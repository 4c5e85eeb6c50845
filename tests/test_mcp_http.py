"""`actionbot mcp --http`: a real process serving streamable HTTP behind its bearer token,
reached through the `mcp` SDK's own client; port 0, read from the process's log."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import mcp_types as types
import pytest
import trustme
from deployment import Bot
from mcp.client.subscriptions import ToolsListChanged
from mcp_deployment import (
    ACTIONS,
    ARGUMENTS,
    RETURN,
    STOCK,
    TOKEN,
    WAIT,
    Elicitations,
    McpDeployment,
    mcp_deployment,
    stats_row,
)

from fakes.https_server import WebhookServer

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}
WAREHOUSE = """
[[actions]]
name = "warehouse_hours"
display_name = "Warehouse Hours"
description = "When the warehouse is open."
url = "{base}/hours"
"""


@pytest.fixture
def mcp(tmp_path: Path, ca: trustme.CA, webhook_server: WebhookServer) -> McpDeployment:
    """The MCP deployment on the webhook fake."""
    return mcp_deployment(tmp_path, ca, webhook_server)


async def mcp_url(bot: Bot) -> str:
    """The endpoint the process logs once it listens (it was given port 0)."""
    found = await bot.wait_for_log(r"MCP server listening on (http://127\.0\.0\.1:\d+/mcp)")
    return found.group(1)


async def post(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """A raw JSON-RPC `initialize` POST: its status and `WWW-Authenticate` header."""
    headers = headers | {"Accept": "application/json, text/event-stream"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=INITIALIZE, headers=headers) as response,
    ):
        return response.status, response.headers.get("WWW-Authenticate", "")


async def test_http_without_a_token_refuses_to_start(mcp: McpDeployment) -> None:
    """`actionbot mcp --http` without `ACTIONBOT_MCP_TOKEN` exits 2 with one line naming it."""
    code, output = await mcp.cli("mcp", "--http")

    assert code == 2
    [line] = [line for line in output.splitlines() if line.strip()]
    assert line.startswith("ACTIONBOT_MCP_TOKEN is not set")


async def test_requests_without_the_right_token_get_401(mcp: McpDeployment) -> None:
    """A request with no bearer token or a wrong one is answered 401 (with a Bearer
    challenge) before MCP sees it; the SDK client with the token is served."""
    async with mcp.http_process() as bot:
        url = await mcp_url(bot)
        missing = await post(url, {})
        wrong = await post(url, {"Authorization": "Bearer not-the-token"})
        basic = await post(url, {"Authorization": f"Basic {TOKEN}"})
        right = await post(url, {"Authorization": f"Bearer {TOKEN}"})
        async with mcp.http(url) as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]

    for status, challenge in (missing, wrong, basic):
        assert status == 401
        assert challenge.startswith("Bearer")
    assert right[0] == 200
    assert tools == ["check_inventory", "create_return"]
    assert TOKEN not in "\n".join(bot.logs)


async def test_calls_over_http_reach_the_endpoint_and_are_counted(
    mcp: McpDeployment, webhook_server: WebhookServer
) -> None:
    """Over streamable HTTP a call reaches the endpoint with the caller `platform=mcp` and
    returns its JSON, a `confirm = true` call is sent once the user accepts (its
    `requestState` sealed across the two HTTP requests), and both count in the stats."""
    asked = Elicitations(["accept"])
    async with mcp.http_process() as bot:
        url = await mcp_url(bot)
        async with mcp.http(url, elicitation=asked) as client:
            stock = await client.call_tool("check_inventory", ARGUMENTS)
            returned = await client.call_tool("create_return", RETURN)

    assert stock.structured_content == {"ok": True, "status": 200, "data": STOCK}
    assert not returned.is_error
    assert len(asked.questions) == 1
    inventory, created = webhook_server.requests
    assert inventory.query == ARGUMENTS
    assert created.json() == {"order_id": "A-1001", "via": "mcp"}
    for request in (inventory, created):
        caller = request.headers["X-ActionBot-Caller"]
        assert re.fullmatch(r"platform=mcp; team=; user=; channel=http:[0-9a-f]{16}", caller)
    code, stats = await mcp.cli("actions", "stats")
    assert code == 0, stats
    assert stats_row(stats, "check_inventory")[1:3] == ["1", "1"]
    assert stats_row(stats, "create_return")[1:3] == ["1", "1"]


async def test_toggles_and_file_edits_reach_tools_list_over_http(
    mcp: McpDeployment, webhook_server: WebhookServer
) -> None:
    """A listening HTTP client gets `tools/list_changed` after `actions disable` and after
    an edit of the actions file (the file is watched), and `tools/list` then shows each
    change; a call to the disabled action sends nothing."""
    async with mcp.http_process() as bot:
        url = await mcp_url(bot)
        await bot.wait_for_log("watching .* for changes")
        async with mcp.http(url) as client, client.listen(tools_list_changed=True) as changes:
            code, output = await mcp.cli("actions", "disable", "check_inventory")
            assert code == 0, output
            async with asyncio.timeout(WAIT):
                toggled = await anext(aiter(changes))
            after_toggle = [tool.name for tool in (await client.list_tools()).tools]
            refused = await client.call_tool("check_inventory", ARGUMENTS)

            base = webhook_server.url("")
            (mcp.cwd / "actions.toml").write_text(
                ACTIONS.format(base=base) + WAREHOUSE.format(base=base)
            )
            async with asyncio.timeout(WAIT):
                edited = await anext(aiter(changes))
            after_edit = [tool.name for tool in (await client.list_tools()).tools]

    assert isinstance(toggled, ToolsListChanged)
    assert isinstance(edited, ToolsListChanged)
    assert after_toggle == ["create_return"]
    assert refused.is_error
    assert isinstance(refused.content[0], types.TextContent)
    assert "turned off" in refused.content[0].text
    assert after_edit == ["create_return", "warehouse_hours"]
    assert webhook_server.requests == []
