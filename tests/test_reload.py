"""Hot reload of the actions file: a real `actionbot run` process picks up an edited file
(and SIGHUP), keeps the actions in use when the file is invalid, and `/actions reload`
reports what changed; in-process, a reloaded action's secrets are protected at once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from aiohttp import web
from conftest import make_settings
from deployment import ACTIONS, Deployment

from actionbot.app import load_configured_actions
from actionbot.catalogue import Catalogue
from bot.admin.operations import NO_RELOAD, Admin, Reloaded, render_text
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from fakes.https_server import WebhookServer, json_handler

ORDER_STATUS = """
[[actions]]
name = "order_status"
display_name = "Order Status"
description = "Look up an order."
url = "{url}"
headers = {{ "X-Order-Key" = "${{ORDER_KEY}}" }}

[[actions.parameters]]
name = "order_id"
type = "string"
description = "The order"
required = true
"""


def tool_names(request: dict[str, object]) -> list[str]:
    tools = request.get("tools") or []
    assert isinstance(tools, list)
    return [t["function"]["name"] for t in tools]


async def test_an_edited_file_is_used_from_the_next_turn_and_a_broken_one_is_not(
    deployment: Deployment,
) -> None:
    """While `actionbot run` runs, an action added to the file is offered on the next turn
    and called; a file broken afterwards is logged with its line and changes nothing; SIGHUP
    reads the file again too."""
    inventory = deployment.server.url("/inventory/check")
    orders = deployment.server.url("/orders")
    deployment.server.route("/orders", json_handler({"status": "shipped"}))
    path = deployment.cwd / "actions.toml"
    env = {"ORDER_KEY": "order-key-secret-4711"}

    async with deployment.running(**env) as bot:
        port = await bot.port()
        await bot.wait_for_log("watching .* for changes")
        path.write_text(ACTIONS.format(url=inventory) + ORDER_STATUS.format(url=orders))
        await bot.wait_for_log(r"actions reloaded from .*added order_status")
        deployment.llm.tool_calls(("order_status", {"order_id": "A-1"}))
        deployment.llm.reply("Your order has shipped.")
        await deployment.send_event(port, "Where is order A-1?", event_id="Ev1")
        await deployment.slack.wait_for_call("chat.update", count=1)

        path.write_text(ACTIONS.format(url=inventory) + 'oops = "\n')
        broken = await bot.wait_for_log(r"not reloaded \(the actions changed\)")
        bot.process.send_signal(signal.SIGHUP)
        await bot.wait_for_log(r"not reloaded \(SIGHUP\)")
        deployment.llm.reply("Still here.")
        await deployment.send_event(port, "Anything else?", event_id="Ev2")
        await deployment.llm.wait_for_requests(3)
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0

    first, _, third = deployment.llm.requests
    assert tool_names(first) == ["check_inventory", "order_status"]
    assert tool_names(third) == ["check_inventory", "order_status"]  # the broken file: kept
    [call] = [r for r in deployment.server.requests if r.path == "/orders"]
    assert call.query == {"order_id": "A-1"}
    assert call.headers["X-Order-Key"] == env["ORDER_KEY"]
    assert broken is not None
    reported = [line for line in bot.logs if "not reloaded" in line]
    line = len(ACTIONS.format(url=inventory).splitlines()) + 1  # the broken one
    assert any(f"actions.toml:{line}: " in entry for entry in reported), reported
    assert "order-key-secret-4711" not in "\n".join(bot.logs)


async def test_reload_reports_changes_and_protects_new_secrets(
    tmp_path: Path, webhook_server: WebhookServer, webhooks: WebhookClient, store: Store
) -> None:
    """`/actions reload` lists what was added, changed and removed; a broken file comes back
    as its problems with nothing changed; a secret of an action added by the reload is
    blanked out of an endpoint's echo, as one loaded at start is."""
    path = tmp_path / "actions.toml"
    path.write_text(ORDER_STATUS.format(url=webhook_server.url("/orders")))
    environ = {"ORDER_KEY": "order-key-secret-4711"}
    settings = make_settings(actions_path=path, egress_allow="127.0.0.1")
    actions = load_configured_actions(settings, environ=environ)
    reloader = Catalogue(settings, actions, webhooks=webhooks, store=store, environ=environ)
    admin = Admin(actions=actions, store=store, webhooks=webhooks, result_chars=4000)
    admin.editing.catalogue = reloader

    async def echo_headers(request: web.Request) -> web.Response:
        return web.json_response({"seen": dict(request.headers)})

    webhook_server.route("/echo", echo_headers)
    path.write_text(
        ORDER_STATUS.format(url=webhook_server.url("/orders")).replace("Look up", "Find")
        + ORDER_STATUS.format(url=webhook_server.url("/echo"))
        .replace('"order_status"', '"echo_status"')
        .replace("ORDER_KEY", "ECHO_KEY")
    )
    environ["ECHO_KEY"] = "echo-key-secret-4712"

    reloaded = await admin.execute("reload", actor="slack:UADMIN")

    assert reloaded == Reloaded(str(path), added=["echo_status"], changed=["order_status"])
    assert render_text(reloaded) == (f"Reloaded {path}: added echo_status; changed order_status.")
    assert actions.names() == ["order_status", "echo_status"]
    tested = await admin.execute("test echo_status order_id=1", actor="slack:UADMIN")
    body = render_text(tested)
    assert "echo-key-secret-4712" not in body
    assert "[redacted]" in body

    path.write_text("[[actions]]\nname = 3\n")
    refused = await admin.execute("reload", actor="slack:UADMIN")
    assert isinstance(refused, Reloaded)
    assert not refused.ok
    assert any(p.startswith(f"{path}:2: ") for p in refused.problems)  # with its line
    assert actions.names() == ["order_status", "echo_status"]
    assert "not reloaded" in render_text(refused)


async def test_the_watcher_reloads_when_the_file_is_replaced(
    tmp_path: Path, webhook_server: WebhookServer, webhooks: WebhookClient, store: Store
) -> None:
    """A file replaced by a rename (as editors and config maps do) is seen and used; an
    unrelated file in the same folder is not a reason to reload."""
    path = tmp_path / "actions.toml"
    path.write_text(ORDER_STATUS.format(url=webhook_server.url("/a")))
    environ = {"ORDER_KEY": "k" * 8}
    settings = make_settings(actions_path=path, egress_allow="127.0.0.1")
    actions = load_configured_actions(settings, environ=environ)
    reloader = Catalogue(settings, actions, webhooks=webhooks, store=store, environ=environ)
    changed = asyncio.Event()
    actions.on_change(changed.set)
    stop = asyncio.Event()
    watching = asyncio.create_task(reloader.watch(stop))
    try:
        (tmp_path / "notes.txt").write_text("not actions")
        staged = tmp_path / "actions.toml.new"
        # The watcher starts a moment after its task: replace the file until it is seen.
        async with asyncio.timeout(15):
            while not changed.is_set():
                staged.write_text(ORDER_STATUS.format(url=webhook_server.url("/b")))
                staged.replace(path)
                try:
                    await asyncio.wait_for(changed.wait(), 1.0)
                except TimeoutError:
                    continue
    finally:
        stop.set()
        await asyncio.wait_for(watching, 5)
    assert actions.get("order_status").url.endswith("/b")
    assert actions.version == 1


async def test_the_shell_says_only_the_running_bot_reloads(deployment: Deployment) -> None:
    """`actionbot actions reload` is refused with where reloads happen, exit 1."""
    code, out = await deployment.cli("actions", "reload")
    assert code == 1
    assert "SIGHUP" in out
    assert NO_RELOAD.split(":")[0] in out
