"""Who is asking: context parameters (`from = "user.id"` …) filled by ActionBot from the
verified platform event, hidden from the model, refused when the model forges them."""

from __future__ import annotations

import json
import logging
import signal
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import inventory_action, loopback_only, make_engine, make_settings
from deployment import SECRETS, Deployment
from pydantic import SecretStr

from actionbot.app import configuration_problems
from bot.actions.loader import parse_actions
from bot.actions.models import Action, project, tool_schema
from bot.errors import ActionsFileError
from bot.llm.client import OpenAIChatModel
from bot.outbound.egress import EgressPolicy
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.types import ActionResult, IncomingMessage, Outcome
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import TEAM_ID, app_mention, event_callback, message, signed_headers

LOYALTY = """\
[[actions]]
name = "loyalty_status"
display_name = "Loyalty Status"
description = "The asking customer's loyalty tier."
url = "{url}/{{requester}}"

[[actions.parameters]]
name = "requester"
from = "user.id"
description = "The customer asking"

[[actions.parameters]]
name = "email"
from = "user.email"
description = "Their email"

[[actions.parameters]]
name = "workspace"
from = "team.id"
description = "Their workspace"

[[actions.parameters]]
name = "who"
from = "user.name"
description = "Their name"

[[actions.parameters]]
name = "program"
type = "string"
description = "Which loyalty program"
required = true
"""


def loyalty(url: str = "https://api.example.com/loyalty") -> Action:
    [action] = parse_actions(
        LOYALTY.format(url=url), source="actions.toml", environ={}, policy=EgressPolicy()
    )
    return action


def test_context_parameters_are_not_offered_to_the_model() -> None:
    """The tool schema holds only what the model should extract from the chat."""
    schema = tool_schema(loyalty())["function"]["parameters"]
    assert list(schema["properties"]) == ["program"]
    assert schema["required"] == ["program"]


def test_user_email_on_discord_is_a_startup_problem(tmp_path: Path) -> None:
    """Discord never shares a user's email: an action that needs it cannot start there."""
    path = tmp_path / "actions.toml"
    path.write_text(LOYALTY.format(url="https://api.example.com/loyalty"))
    settings = make_settings(
        actions_path=str(path), discord_token=SecretStr("d"), openai_api_key="sk-x"
    )
    [problem] = [p for p in configuration_problems(settings) if "user.email" in p]
    assert "'loyalty_status'" in problem
    assert "'email'" in problem
    assert "Discord" in problem


async def test_the_endpoint_gets_the_verified_user_and_a_forged_one_is_refused(
    deployment: Deployment,
) -> None:
    """On Slack: the model first tries to send `requester` itself (refused, not sent), then
    calls properly; the endpoint gets the id from the signed event, the email from the
    user's profile and the workspace, and the path uses the verified id."""
    deployment.server.route("/loyalty/U1", json_handler({"tier": "gold"}))
    deployment.slack.add_user("U1", name="ana", email="ana@example.com")
    (deployment.cwd / "actions.toml").write_text(
        LOYALTY.format(url=deployment.server.url("/loyalty"))
    )
    deployment.llm.tool_calls(("loyalty_status", {"program": "gold", "requester": "U999"}))
    deployment.llm.tool_calls(("loyalty_status", {"program": "gold"}))
    deployment.llm.reply("You are gold.")

    async with deployment.running() as bot:
        port = await bot.port()
        await deployment.send_event(port, "What is my tier?", event_id="Ev1")
        await deployment.slack.wait_for_call("chat.update", count=2)
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0

    [request] = deployment.server.requests
    assert request.path == "/loyalty/U1"
    assert request.query == {
        "email": "ana@example.com",
        "workspace": TEAM_ID,
        "who": "ana",
        "program": "gold",
    }
    refusal = json.loads(tool_results(deployment.llm.requests[1])[0])
    assert refusal["ok"] is False
    assert "filled by ActionBot" in refusal["error"]


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


@pytest.mark.parametrize("source", ["user.phone", "User.Id"])
def test_unknown_sources_are_load_errors(source: str) -> None:
    text = LOYALTY.format(url="https://api.example.com/l").replace('"team.id"', f'"{source}"')
    with pytest.raises(ActionsFileError, match=r"parameters\.workspace\.from"):
        parse_actions(text, source="actions.toml", environ={}, policy=EgressPolicy())


# --- what goes back to the model ------------------------------------------------------------


def test_response_fields_keep_only_the_named_paths() -> None:
    """Dotted paths walk objects, `[]` every element of an array; the rest is dropped, and
    a body that is not an object keeps nothing."""
    data = {
        "in_stock": True,
        "cost_price": 51.2,
        "items": [{"name": "screen", "sku": "S1"}, {"name": "glass", "sku": "G1"}],
        "store": {"city": "Lyon", "manager": "Bob"},
    }
    paths = ["in_stock", "items[].name", "store.city", "missing.field"]
    assert project(data, paths) == {
        "in_stock": True,
        "items": [{"name": "screen"}, {"name": "glass"}],
        "store": {"city": "Lyon"},
    }
    assert project([1, 2], ["in_stock"]) == {}
    assert project({"items": "not a list"}, ["items[].name"]) == {}
    # A shorter path keeps the whole field, in whatever order the paths are written.
    whole = {"store": {"city": "Lyon", "manager": "Bob"}, "items": data["items"]}
    assert project(data, ["store.city", "store", "items[].name", "items"]) == whole
    assert project(data, ["store", "store.city", "items", "items[].name"]) == whole


def test_response_fields_hide_a_body_that_is_not_json() -> None:
    """With response_fields set, a text body (an HTML error page, say) shows nothing."""
    page = ActionResult(
        action="a",
        call_id="k",
        outcome=Outcome.HTTP_ERROR,
        latency_ms=1,
        status=500,
        text="<html>cost_price=12; staff_note=call Bob</html>",
        error="HTTP 500 Internal Server Error",
    )
    shown = json.loads(page.for_model(4000, lambda data: project(data, ["in_stock"])))
    assert shown == {"ok": False, "status": 500, "error": "HTTP 500 Internal Server Error"}


@pytest.mark.parametrize("path", ["", "a..b", "items[]name", "a b", "a[0]"])
def test_bad_response_field_paths_are_load_errors(path: str) -> None:
    text = LOYALTY.format(url="https://api.example.com/l").replace(
        'url = "https', f'response_fields = [{json.dumps(path)}]\nurl = "https', 1
    )
    with pytest.raises(ActionsFileError, match="response_fields"):
        parse_actions(text, source="actions.toml", environ={}, policy=EgressPolicy())


async def test_the_model_sees_only_response_fields_and_never_an_echoed_secret(
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    client_ssl_context: ssl.SSLContext,
    chat_model: OpenAIChatModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The endpoint answers more than the action lets through, and echoes the action's
    secret header: the model gets the named fields only, and `[redacted]` for the secret,
    which does not appear in the logs either (DEBUG included)."""
    secret = "Bearer sk-live-echoed-4711"

    async def echo(request: web.Request) -> web.Response:
        token = request.headers["Authorization"]
        return web.json_response(
            {"in_stock": True, "cost_price": 51.2, "debug": {"auth": token}, "note": token}
        )

    webhook_server.route("/inventory/check", echo)
    action = inventory_action(webhook_server, header_values={"Authorization": secret})
    action = action.model_copy(update={"response_fields": ["in_stock", "note"]})
    async with WebhookClient(
        policy=loopback_only(), recorder=store, ssl_context=client_ssl_context, secrets=[secret]
    ) as webhooks:
        engine = make_engine([action], store=store, webhooks=webhooks, model=chat_model)
        llm.tool_calls(("check_inventory", {"part_name": "screen", "device_model": "X"}))
        llm.reply("In stock.")
        with caplog.at_level(logging.DEBUG):
            await engine.handle(
                IncomingMessage(platform="slack", conversation="C1", user_id="U1", text="hi")
            )
    [content] = tool_results(llm.requests[-1])
    assert json.loads(content)["data"] == {"in_stock": True, "note": "[redacted]"}
    assert "sk-live-echoed-4711" not in caplog.text


# --- where and for whom an action is offered -------------------------------------------------

SCOPED = """\
[[actions]]
name = "refund_order"
display_name = "Refund Order"
description = "Refund an order (staff only)."
url = "{url}/refund"
audience = "Admins"

[[actions]]
name = "vip_offers"
display_name = "VIP Offers"
description = "Offers for the VIP channel."
url = "{url}/vip"
channels = ["slack:CVIP", "discord:98765"]
"""


def tool_names(request: dict[str, Any]) -> list[str]:
    return sorted(t["function"]["name"] for t in request.get("tools", []))


async def test_actions_are_offered_only_in_their_channels_and_to_their_audience(
    deployment: Deployment,
) -> None:
    """A customer in a DM sees neither action, and a call the model forges to one is
    refused without a request; an admin (ACTIONBOT_ADMINS) sees the admins' action; in the
    VIP channel the channel's action is offered."""
    (deployment.cwd / "actions.toml").write_text(SCOPED.format(url=deployment.server.url("")))
    deployment.server.route("/refund", json_handler({"refunded": True}))
    deployment.llm.tool_calls(("refund_order", {}))  # forged by a customer's chat
    deployment.llm.reply("I cannot do that.")
    deployment.llm.reply("Hello admin.")
    deployment.llm.reply("Hello VIP.")
    events = [("U1", "D1", "im"), ("UADMIN", "D2", "im"), ("U1", "CVIP", "channel")]

    async with deployment.running(ACTIONBOT_ADMINS="slack:UADMIN") as bot:
        port = await bot.port()
        for n, (user, channel, kind) in enumerate(events):
            await deliver(deployment, port, user, channel, kind, event_id=f"Ev{n}")
            await deployment.slack.wait_for_call("chat.update", count=n + 1)
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0

    customer, _, admin, vip = deployment.llm.requests
    assert tool_names(customer) == []
    assert "refund_order" in json.loads(tool_results(deployment.llm.requests[1])[0])["error"]
    assert deployment.server.requests == []
    assert tool_names(admin) == ["refund_order"]
    assert tool_names(vip) == ["vip_offers"]


async def deliver(
    deployment: Deployment, port: int, user: str, channel: str, kind: str, *, event_id: str
) -> None:
    """A signed Slack event: a DM, or a mention of the bot in a channel."""
    ts = deployment.slack.next_ts()
    if kind == "im":
        event = message("hi", user, channel, ts)
    else:
        event = app_mention("<@UBOT> hi", user, channel, ts)
    body = json.dumps(event_callback(event, event_id=event_id))
    headers = signed_headers(SECRETS["SLACK_SIGNING_SECRET"], body)
    url = f"http://127.0.0.1:{port}/slack/events"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        assert r.status == 200


@pytest.mark.parametrize("entry", ["C123", "teams:C1", "slack:", "slack:C 1"])
def test_channels_entries_must_be_platform_and_id(entry: str) -> None:
    text = SCOPED.format(url="https://api.example.com").replace("slack:CVIP", entry)
    with pytest.raises(ActionsFileError, match="channels"):
        parse_actions(text, source="actions.toml", environ={}, policy=EgressPolicy())
