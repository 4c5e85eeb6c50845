"""`/actions new`, `/actions edit NAME`, `delete` and `reload` on Slack, under real
slack-bolt in Socket Mode against the fake Slack: the command opens a modal (`views.open`),
a submitted modal (`view_submission`) is checked again and saved through the core, problems
come back inline on their inputs (`response_action: errors`) with nothing saved."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from conftest import LIMITS, make_settings
from deployment import ACTIONS
from test_slack import Harness, settings_for
from test_slack_console import slash

from actionbot.app import load_configured_actions
from actionbot.catalogue import Catalogue
from adapters.slack import wording as slack_wording
from adapters.slack.adapter import SlackAdapter
from adapters.slack.form_view import CALLBACK_ID, form_view
from adapters.slack.results import admin_blocks
from bot import wording
from bot.admin.operations import Admin
from bot.admin.results import ActionForm, ActionProblems
from bot.delivery import Inbox
from bot.engine import Engine
from bot.errors import Problem
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.http import HttpServer
from bot.runtime.tasks import Turns
from bot.store import Store
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import (
    FakeSlack,
    message,
    signed_headers,
    slash_command_envelope,
    view_submission,
    view_submission_envelope,
)

SIGNING_SECRET = "forms-signing-secret"
ENV = {"INVENTORY_TOKEN": "inventory-secret-4711", "ORDERS_TOKEN": "orders-secret-4711"}


@contextlib.asynccontextmanager
async def forms_harness(
    path: Path,
    *,
    server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """The Slack adapter over the actions of `path`, with the running bot's catalogue: the
    engine, the admin operations and the catalogue share one set of actions; `overrides`
    are settings (e.g. HTTP mode)."""
    file_settings = make_settings(actions_path=path, egress_allow="127.0.0.1")
    actions = load_configured_actions(file_settings, environ=ENV)
    engine = Engine(
        actions=actions,
        store=store,
        webhooks=webhooks,
        model=chat_model,
        limits=LIMITS,
        system_prompt="You are the assistant of Test Shop.",
    )
    admin = Admin(actions=actions, store=store, webhooks=webhooks, result_chars=4000)
    admin.editing.catalogue = Catalogue(
        file_settings, actions, webhooks=webhooks, store=store, environ=ENV
    )
    async with FakeSlack() as slack:
        turns = Turns()
        configured = settings_for(slack, actions_path=path, egress_allow="127.0.0.1", **overrides)
        inbox = Inbox(store, turns, metrics=engine.metrics)
        adapter = SlackAdapter(
            settings=configured,
            engine=engine,
            admin=admin,
            store=store,
            turns=turns,
            inbox=inbox,
        )
        await adapter.start()
        try:
            yield Harness(slack, llm, server, store, turns, adapter)
        finally:
            await adapter.close()


@pytest.fixture
async def harness(
    tmp_path: Path,
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    webhook_server.route("/inventory/check", json_handler({"in_stock": True}))
    path = tmp_path / "actions.toml"
    path.write_text(ACTIONS.format(url=webhook_server.url("/inventory/check")))
    async with forms_harness(
        path,
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
    ) as opened:
        yield opened


async def open_form(harness: Harness, text: str, *, user: str = "UADMIN") -> dict[str, Any]:
    """`/actions TEXT` (new, edit NAME): the modal it opened with its trigger id."""
    before = len(harness.slack.views)
    envelope = slash_command_envelope(text=text, user_id=user)
    trigger = envelope["payload"]["trigger_id"]
    await harness.slack.wait_for_ack(await harness.slack.push(envelope))
    await harness.turns.drain()
    [call] = harness.slack.calls("views.open")[before:]
    assert call["trigger_id"] == trigger
    view = list(harness.slack.views.values())[-1]
    assert view["callback_id"] == CALLBACK_ID
    return view


async def submit(
    harness: Harness, view: dict[str, Any], values: dict[str, Any], *, user: str = "UADMIN"
) -> dict[str, Any]:
    """Submit `view` with `values` (block id → text, or the element state as a dict); what
    the ack answered Slack (`{}` closes the modal)."""
    state = {
        block: ({"value": value} if isinstance(value, str) else value)
        for block, value in values.items()
    }
    payload = view_submission(view, state, user_id=user)
    ack = await harness.slack.wait_for_ack(
        await harness.slack.push(view_submission_envelope(payload))
    )
    await harness.turns.drain()
    return dict(ack.get("payload") or {})


def order_values(url: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "display_name": "Order Status",
        "description": "Look up where an order is.",
        "url": url,
        "headers": "Authorization: Bearer ${ORDERS_TOKEN}",
        "param_0_name": "order_id",
        "param_0_description": "The order number",
        "param_0_required": {"selected_options": [{"value": "required"}]},
    }
    return values | changes


def initial(view: dict[str, Any], block_id: str) -> Any:
    [block] = [b for b in view["blocks"] if b.get("block_id") == block_id]
    element = block["element"]
    return element.get("initial_value") or element.get("initial_option", {}).get("value")


async def test_new_opens_a_modal_and_a_valid_submission_is_saved_and_offered(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """`/actions new` opens an empty modal with every field and parameter rows; the admin's
    submission is saved (kept in the store, `chat` origin), the modal closes, the admin is
    told privately, and the next customer message offers the new action to the model."""
    view = await open_form(harness, "new")
    blocks = {b.get("block_id") for b in view["blocks"]}
    assert {"display_name", "name", "description", "url", "method", "timeout", "headers"} <= blocks
    assert {"param_4_name", "param_4_type", "param_4_description", "param_4_required"} <= blocks
    assert json.loads(view["private_metadata"]) == {"editing": None, "channel": "C1"}

    answer = await submit(harness, view, order_values(webhook_server.url("/orders")))

    assert "response_action" not in answer
    [kept] = await harness.store.chat_actions()
    assert kept.name == "order_status"
    assert kept.updated_by == "slack:UADMIN"
    assert kept.definition["headers"] == {"Authorization": "Bearer ${ORDERS_TOKEN}"}
    assert kept.definition["parameters"] == [
        {"name": "order_id", "type": "string", "required": True, "description": "The order number"}
    ]
    assert harness.adapter.admin.actions.get("order_status").origin == "chat"
    [told] = harness.slack.calls("chat.postEphemeral")
    assert (told["channel"], told["user"]) == ("C1", "UADMIN")
    assert "order_status is made" in told["text"]

    harness.llm.reply("Let me look.")
    await harness.push_event(message("order?", "U1", "D1", harness.slack.next_ts()), event_id="E1")
    assert harness.tools_offered(0) == ["check_inventory", "order_status"]


@pytest.mark.parametrize(
    ("change", "block", "words"),
    [
        ({"url": "http://127.0.0.1/orders"}, "url", "https"),
        ({"url": "https://10.1.2.3/orders"}, "url", "private"),
        ({"display_name": "Check Inventory"}, "name", "already has this name"),
        ({"url": "https://127.0.0.1/orders/{order}"}, "url", "order"),
        ({"headers": "Authorization: Bearer sk-live-123"}, "headers", "${VAR}"),
        ({"headers": "sk-live-123"}, "headers", "line 1"),
        ({"param_0_description": ""}, "param_0_description", "is required"),
        ({"timeout": "soon"}, "timeout", ""),
    ],
)
async def test_a_bad_submission_shows_the_error_on_its_input_and_saves_nothing(
    harness: Harness, change: dict[str, Any], block: str, words: str
) -> None:
    """`http://`, a private address, a taken name, a placeholder naming no parameter, a
    secret typed into a header, a header line that is not `Name: value`, a parameter without
    its AI description, a timeout that is not a number: the modal stays open with the
    problem on its input, nothing is saved and no secret is echoed."""
    view = await open_form(harness, "new")

    answer = await submit(harness, view, order_values("https://127.0.0.1/orders") | change)

    assert answer["response_action"] == "errors"
    assert block in answer["errors"], answer
    assert words.lower() in answer["errors"][block].lower()
    assert "sk-live-123" not in json.dumps(answer)
    assert await harness.store.chat_actions() == []
    assert harness.adapter.admin.actions.names() == ["check_inventory"]
    assert harness.slack.calls("chat.postEphemeral") == []


async def test_edit_prefills_the_modal_and_a_rename_replaces_the_action(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """`/actions edit NAME` opens the modal filled from the kept definition (the name travels
    in `private_metadata`); saving under a new name replaces the old action."""
    url = webhook_server.url("/orders")
    view = await open_form(harness, "new")
    await submit(harness, view, order_values(url, timeout="7"))

    view = await open_form(harness, "edit order_status")

    assert json.loads(view["private_metadata"])["editing"] == "order_status"
    assert initial(view, "display_name") == "Order Status"
    assert initial(view, "url") == url
    assert initial(view, "timeout") == "7"
    assert initial(view, "headers") == "Authorization: Bearer ${ORDERS_TOKEN}"
    assert initial(view, "param_0_name") == "order_id"
    assert initial(view, "param_0_type") == "string"
    [required] = [b for b in view["blocks"] if b.get("block_id") == "param_0_required"]
    assert required["element"]["initial_options"][0]["value"] == "required"

    answer = await submit(harness, view, {"name": "where_is_my_order"})

    assert "response_action" not in answer
    assert [k.name for k in await harness.store.chat_actions()] == ["where_is_my_order"]
    assert harness.adapter.admin.actions.names() == ["check_inventory", "where_is_my_order"]
    told = harness.slack.calls("chat.postEphemeral")[-1]["text"]
    assert "where_is_my_order is changed (renamed from order_status)" in told


async def test_a_non_admin_cannot_open_or_submit_the_form(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """A member's `/actions new` opens nothing; a member's submission of the modal (a
    replayed or forwarded payload) is refused inline and saves nothing."""
    url = harness.slack.response_url("member")
    envelope = slash_command_envelope(text="new", user_id="U1", response_url=url)
    await harness.slack.wait_for_ack(await harness.slack.push(envelope))
    await harness.turns.drain()
    assert harness.slack.responses("member")[0]["text"] == wording.NOT_ADMIN
    assert harness.slack.calls("views.open") == []

    view = await open_form(harness, "new")
    answer = await submit(harness, view, order_values(webhook_server.url("/orders")), user="U1")

    assert answer == {
        "response_action": "errors",
        "errors": {"display_name": wording.NOT_ADMIN},
    }
    assert await harness.store.chat_actions() == []
    assert harness.adapter.admin.actions.names() == ["check_inventory"]


async def test_list_delete_and_reload_answer_in_block_kit(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """`/actions list` marks the actions made in chat; `delete` removes a chat-made
    action and refuses a file action; `reload` says what changed, and with a broken file
    says why the actions in use were kept."""
    view = await open_form(harness, "new")
    await submit(harness, view, order_values(webhook_server.url("/orders")))

    listed = (await harness.slash("list", user="UADMIN"))["blocks"]
    rows = [b["text"]["text"] for b in listed if b["type"] == "section"]
    assert rows[0].startswith("*Check Inventory*")
    assert "from" not in rows[0]
    assert rows[1].startswith("*Order Status*")
    assert rows[1].endswith(" · from chat")

    refused = json.dumps((await harness.slash("delete check_inventory", user="UADMIN"))["blocks"])
    assert "defined in the actions file" in refused
    deleted = json.dumps((await harness.slash("delete order_status", user="UADMIN"))["blocks"])
    assert "order_status is deleted" in deleted
    assert await harness.store.chat_actions() == []
    assert harness.adapter.admin.actions.names() == ["check_inventory"]

    reloaded = json.dumps((await harness.slash("reload", user="UADMIN"))["blocks"])
    assert "Reloaded" in reloaded
    assert "no change" in reloaded

    path = harness.adapter.settings.actions_path
    assert path is not None
    path.write_text("[[actions]\nname = 1\n")
    broken = (await slash(harness, "reload", user="UADMIN", key="broken"))["blocks"]
    text = json.dumps(broken)
    assert ":warning:" in text
    assert "was not reloaded" in text
    assert "TOML syntax error" in text
    assert harness.adapter.admin.actions.names() == ["check_inventory"]


def test_problems_render_by_field_in_block_kit() -> None:
    """A form's problems, when shown as a message, name each field."""
    problems = ActionProblems([Problem("must use https://", "chat", "x", field="url")])
    text = json.dumps(admin_blocks(problems))
    assert "Not saved" in text
    assert "`url`: must use https://" in text


async def test_http_mode_answers_a_signed_submission_and_refuses_a_forged_one(
    tmp_path: Path,
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> None:
    """On the Request URL (HTTP mode) a signed submission with problems gets them back in the
    HTTP response (`response_action: errors`), a forged one gets 401 and saves nothing, and
    a signed valid one is saved."""
    path = tmp_path / "actions.toml"
    path.write_text(ACTIONS.format(url=webhook_server.url("/inventory/check")))
    view = form_view(ActionForm(), channel="C1")
    good = order_values(webhook_server.url("/orders"))

    def body(values: dict[str, Any]) -> str:
        state = {k: ({"value": v} if isinstance(v, str) else v) for k, v in values.items()}
        payload = view_submission(view, state, user_id="UADMIN")
        return urlencode({"payload": json.dumps(payload)})

    async with forms_harness(
        path,
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
        slack_app_token=None,
        slack_signing_secret=SIGNING_SECRET,
    ) as harness:
        http = HttpServer(port=0, host="127.0.0.1")
        http.add_route("POST", "/slack/events", harness.adapter.handle_http)
        await http.start()
        url = f"http://127.0.0.1:{http.port}/slack/events"
        try:
            async with aiohttp.ClientSession() as session:
                bad = body(good | {"url": "http://127.0.0.1/orders"})
                headers = signed_headers(SIGNING_SECRET, bad)
                async with session.post(url, data=bad, headers=headers) as response:
                    assert response.status == 200
                    answer = await response.json()
                assert answer["response_action"] == "errors"
                assert "https" in answer["errors"]["url"]

                forged = body(good)
                headers = signed_headers("not-the-secret", forged)
                async with session.post(url, data=forged, headers=headers) as response:
                    assert response.status == 401
                assert await store.chat_actions() == []

                headers = signed_headers(SIGNING_SECRET, forged)
                async with session.post(url, data=forged, headers=headers) as response:
                    assert response.status == 200
                await harness.turns.drain()
        finally:
            await http.stop()

        assert [k.name for k in await store.chat_actions()] == ["order_status"]
        assert "order_status is made" in harness.slack.calls("chat.postEphemeral")[0]["text"]


async def test_a_form_slack_did_not_open_says_to_run_the_command_again(harness: Harness) -> None:
    """When Slack refuses `views.open` (the trigger expired), the admin is told privately
    to run the command again, rather than nothing happening."""
    harness.slack.fail_next("views.open", "expired_trigger_id")

    answer = await slash(harness, "new", user="UADMIN", key="expired")

    assert answer["text"] == slack_wording.FORM_NOT_OPENED
    assert answer["response_type"] == "ephemeral"
    assert harness.slack.views == {}


async def test_an_edit_keeps_what_the_modal_does_not_show_and_dms_when_it_cannot_post(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """Editing an action made with fields the modal has no input for (`confirm`, a
    parameter's `from`) keeps them; when the private reply cannot be posted in the channel,
    the admin gets it as a DM."""
    definition = {
        "display_name": "Order Status",
        "description": "Look up where an order is.",
        "url": webhook_server.url("/orders"),
        "confirm": True,
        "parameters": [
            {"name": "order_id", "type": "string", "description": "The order", "required": True},
            {"name": "who", "description": "The asking user", "from": "user.id"},
        ],
    }
    await harness.adapter.admin.editing.save(definition, actor="slack:UADMIN")
    view = await open_form(harness, "edit order_status")
    harness.slack.fail_next("chat.postEphemeral", "channel_not_found")

    answer = await submit(harness, view, {"description": "Where an order is, by number."})

    assert "response_action" not in answer
    [kept] = await harness.store.chat_actions()
    assert kept.definition["confirm"] is True
    assert kept.definition["description"] == "Where an order is, by number."
    assert kept.definition["parameters"][1]["from"] == "user.id"
    assert harness.adapter.admin.actions.get("order_status").confirm is True
    [dm] = harness.slack.calls("chat.postMessage")
    assert dm["channel"] == "UADMIN"
    assert "order_status is changed" in dm["text"]
