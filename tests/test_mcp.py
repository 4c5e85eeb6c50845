"""`actionbot mcp` over stdio: a real process, reached through the `mcp` SDK's own client,
calling the HTTPS webhook fake down the same path as a chat call (checks, egress policy,
signature, `Idempotency-Key`, stats), in both protocol eras the SDK speaks."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import mcp_types as types
import pytest
import trustme
from mcp.client.subscriptions import ToolsListChanged
from mcp_deployment import (
    ARGUMENTS,
    RETURN,
    SIGNING_SECRET,
    STOCK,
    WAIT,
    Elicitations,
    McpDeployment,
    Notifications,
    mcp_deployment,
    stats_row,
)

from adapters.mcp.wording import CONFIRM_HINT
from bot.outbound.signing import verify
from bot.outbound.webhooks import canonical_json, idempotency_key
from fakes.https_server import RecordedRequest, WebhookServer

SERVED = ["check_inventory", "create_return"]


@pytest.fixture
def mcp(tmp_path: Path, ca: trustme.CA, webhook_server: WebhookServer) -> McpDeployment:
    """The MCP deployment on the webhook fake."""
    return mcp_deployment(tmp_path, ca, webhook_server)


def request_of(request: RecordedRequest, action: str, arguments: dict[str, str]) -> int | None:
    """The MCP request id whose event key `mcp:<connection>:<id>` gives the request's
    `Idempotency-Key` (keyed as the engine keys calls), or None when none of the first
    hundred does."""
    connection = request.headers["X-ActionBot-Caller"].rpartition("channel=")[2]
    canonical = canonical_json(arguments)
    for n in range(100):
        event = f"mcp:{connection}:{n}"
        key = idempotency_key(SIGNING_SECRET.encode(), event, action, canonical, 0)
        if key == request.headers["Idempotency-Key"]:
            return n
    return None


def text_of(result: types.CallToolResult) -> str:
    [content] = result.content
    assert isinstance(content, types.TextContent)
    return content.text


async def test_tools_list_shows_the_served_actions_with_their_hints(mcp: McpDeployment) -> None:
    """`tools/list` has each active action with its AI description, its parameters as the
    input schema (context ones left out) and its hints; actions that need a verified chat
    user, or an admin, are not listed."""
    async with mcp.stdio() as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert list(tools) == SERVED
    inventory, returns = tools["check_inventory"], tools["create_return"]
    assert inventory.description == "Check if a specific part is in stock."
    assert inventory.input_schema["properties"] == {
        "part_name": {"type": "string", "description": "The part"},
        "device_model": {"type": "string", "description": "The device"},
    }
    assert inventory.input_schema["required"] == ["part_name", "device_model"]
    assert list(returns.input_schema["properties"]) == ["order_id"]  # `via` is ActionBot's
    assert inventory.annotations is not None
    assert returns.annotations is not None
    assert inventory.annotations.read_only_hint is True
    assert inventory.annotations.destructive_hint is None
    assert returns.annotations.read_only_hint is False
    assert returns.annotations.destructive_hint is True


async def test_a_call_reaches_the_endpoint_signed_keyed_and_counted(
    mcp: McpDeployment, webhook_server: WebhookServer
) -> None:
    """A `tools/call` sends the arguments with the action's header, a signature, an
    `Idempotency-Key` made from the MCP request and the caller `platform=mcp`, returns the
    endpoint's JSON, and is counted in `actionbot actions stats`."""
    async with mcp.stdio() as client:
        result = await client.call_tool("check_inventory", ARGUMENTS)
        again = await client.call_tool("check_inventory", ARGUMENTS)

    assert not result.is_error
    assert result.structured_content == {"ok": True, "status": 200, "data": STOCK}
    assert json.loads(text_of(result)) == result.structured_content
    assert not again.is_error
    first, second = webhook_server.requests
    assert first.path == "/inventory/check"
    assert first.query == ARGUMENTS
    assert first.headers["Authorization"] == "Bearer inventory-secret-4711"
    caller = first.headers["X-ActionBot-Caller"]
    match = re.fullmatch(r"platform=mcp; team=; user=; channel=(stdio:[0-9a-f]{16})", caller)
    assert match is not None, caller
    assert verify(
        first.headers,
        "GET",
        f"/inventory/check?{first.raw_query}",
        first.body,
        {"default": SIGNING_SECRET},
    )
    # The same arguments in another MCP request are another intended call: another key,
    # each the engine's HMAC over `mcp:<connection>:<request id>`.
    ids = [request_of(r, "check_inventory", ARGUMENTS) for r in (first, second)]
    assert None not in ids
    assert ids[0] != ids[1]

    code, stats = await mcp.cli("actions", "stats", "check_inventory")
    assert code == 0, stats
    assert stats_row(stats, "check_inventory")[1:4] == ["2", "2", "0"]


async def test_bad_arguments_are_a_tool_error_and_send_nothing(
    mcp: McpDeployment, webhook_server: WebhookServer
) -> None:
    """A missing required value, an unknown parameter, a value for a context parameter or a
    call of an action MCP does not serve comes back as a tool error; nothing is sent."""
    async with mcp.stdio() as client:
        missing = await client.call_tool("check_inventory", {"part_name": "screen"})
        unknown = await client.call_tool("check_inventory", ARGUMENTS | {"colour": "red"})
        forged = await client.call_tool("create_return", RETURN | {"via": "slack"})
        chat_only = await client.call_tool("my_orders", {})
        admins = await client.call_tool("refund_anything", {})
        nowhere = await client.call_tool("launch_rocket", {})

    for result in (missing, unknown, forged, chat_only, admins, nowhere):
        assert result.is_error
    assert "'device_model' is required" in text_of(missing)
    assert "unknown parameter 'colour'" in text_of(unknown)
    assert "'via' is filled by ActionBot" in text_of(forged)
    assert "user.id" in text_of(chat_only)
    assert "admins" in text_of(admins)
    assert "no available action named 'launch_rocket'" in text_of(nowhere)
    assert webhook_server.requests == []


async def test_a_disabled_action_leaves_the_list_with_list_changed_and_is_refused(
    mcp: McpDeployment, webhook_server: WebhookServer
) -> None:
    """`actionbot actions disable` while a client listens: `tools/list_changed` arrives,
    the action is gone from `tools/list`, and a call to it is a tool error with no request
    (2026-07-28 `subscriptions/listen`)."""
    async with (
        mcp.stdio() as client,
        client.listen(tools_list_changed=True) as changes,
    ):
        code, output = await mcp.cli("actions", "disable", "check_inventory")
        assert code == 0, output
        async with asyncio.timeout(WAIT):
            event = await anext(aiter(changes))
        tools = [tool.name for tool in (await client.list_tools()).tools]
        refused = await client.call_tool("check_inventory", ARGUMENTS)

    assert isinstance(event, ToolsListChanged)
    assert tools == ["create_return"]
    assert refused.is_error
    assert "turned off" in text_of(refused)
    assert webhook_server.requests == []


async def test_handshake_era_clients_get_list_changed_notifications(mcp: McpDeployment) -> None:
    """A 2025 (handshake) client is told of a toggle with `notifications/tools/list_changed`
    on its connection, and sees the action back after `actions enable`."""
    code, output = await mcp.cli("actions", "disable", "check_inventory")
    assert code == 0, output
    notifications = Notifications()
    async with mcp.stdio(mode="legacy", notifications=notifications) as client:
        before = [tool.name for tool in (await client.list_tools()).tools]
        assert client.server_capabilities.tools is not None
        advertised = client.server_capabilities.tools.list_changed
        code, output = await mcp.cli("actions", "enable", "check_inventory")
        assert code == 0, output
        await notifications.wait_for(types.ToolListChangedNotification)
        after = [tool.name for tool in (await client.list_tools()).tools]

    assert advertised is True
    assert before == ["create_return"]
    assert after == SERVED


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_confirm_action_is_sent_only_when_the_user_accepts(
    mcp: McpDeployment, webhook_server: WebhookServer, mode: str
) -> None:
    """A `confirm = true` call asks the user through elicitation, showing the action and
    its arguments: declining or cancelling sends nothing, accepting sends it once (in the
    2026-07-28 era by `input_required`, in the handshake era by `elicitation/create`)."""
    asked = Elicitations(["decline", "cancel", "accept"])
    async with mcp.stdio(mode=mode, elicitation=asked) as client:
        declined = await client.call_tool("create_return", RETURN)
        cancelled = await client.call_tool("create_return", RETURN)
        nothing_sent = list(webhook_server.requests)
        accepted = await client.call_tool("create_return", RETURN)

    for refused in (declined, cancelled):
        assert refused.is_error
        assert "did not confirm" in text_of(refused)
    assert nothing_sent == []
    assert not accepted.is_error, text_of(accepted)
    assert accepted.structured_content == {
        "ok": True,
        "status": 200,
        "data": {"return_id": "R-1"},
    }
    assert asked.questions == 3 * [
        "Confirm Create Return? (order_id = A-1001, via = mcp) " + CONFIRM_HINT
    ]
    [request] = webhook_server.requests
    assert request.method == "POST"
    assert request.json() == {"order_id": "A-1001", "via": "mcp"}
    # Keyed by the request that asked (in the 2026-07-28 era, the first of its two rounds).
    assert request_of(request, "create_return", request.json()) is not None


async def test_a_client_without_elicitation_is_sent_to_the_chat(
    mcp: McpDeployment, webhook_server: WebhookServer
) -> None:
    """A client that cannot elicit gets a refusal saying the action needs confirmation in
    chat; nothing is sent."""
    async with mcp.stdio() as client:
        result = await client.call_tool("create_return", RETURN)

    assert result.is_error
    assert "needs the user's confirmation" in text_of(result)
    assert "in chat" in text_of(result)
    assert webhook_server.requests == []
