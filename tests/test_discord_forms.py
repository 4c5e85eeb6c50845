"""`/actions new`, `edit`, `delete` and `reload` on Discord (`adapters.discord.editor`,
`forms`, `draft_card`, `drafts`) under real discord.py: commands, modal submits and card
clicks arrive as INTERACTION_CREATE from the fake gateway, modal submits built from the
modal the bot sent
(`fakes.discord_server.modal_submit`), which the fake holds to Discord's modal rules. The
catalogue is the running bot's (`actionbot.catalogue.Catalogue`) over a real actions file,
and the engine holds the same action set, so what is saved is what the AI is offered."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from deployment import ACTIONS
from test_discord import CHANNEL, GUILD, Harness, discord_harness

from actionbot.app import load_configured_actions
from actionbot.catalogue import Catalogue
from adapters.discord import wording as discord_wording
from adapters.discord.drafts import DRAFT_SECONDS, Drafts, field_label, parse_headers
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from fakes.discord_server import (
    CHANNEL_MESSAGE,
    DEFAULT_USER,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    MANAGE_GUILD,
    MODAL,
    UPDATE_MESSAGE,
    USER_ID,
    component_interaction,
    interaction_create,
    modal_submit,
)
from fakes.https_server import WebhookServer
from fakes.openai_server import ScriptedLLM

ENV = {"INVENTORY_TOKEN": "inventory-secret-4711", "ORDERS_TOKEN": "orders-secret-4711"}
ADMIN_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_GUILD


@pytest.fixture
async def harness(
    tmp_path: Path,
    webhook_server: WebhookServer,
    llm: ScriptedLLM,
    store: Store,
    webhooks: WebhookClient,
    chat_model: OpenAIChatModel,
) -> AsyncIterator[Harness]:
    """A connected adapter over the actions file's `check_inventory`, with the catalogue
    `actionbot run` wires (egress allows the loopback webhook fake)."""
    path = tmp_path / "actions.toml"
    path.write_text(ACTIONS.format(url=webhook_server.url("/inventory/check")))
    files = {"actions_path": path, "egress_allow": "127.0.0.1"}
    actions = load_configured_actions(make_settings(**files), environ=ENV)
    async with discord_harness(
        list(actions),
        server=webhook_server,
        llm=llm,
        store=store,
        webhooks=webhooks,
        chat_model=chat_model,
        **files,
    ) as opened:
        admin = opened.adapter.admin
        admin.editing.catalogue = Catalogue(
            opened.adapter.settings, admin.actions, webhooks=webhooks, store=store, environ=ENV
        )
        yield opened


class Form:
    """One admin going through the forms: the modal last shown, and the draft card."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.modal: dict[str, Any] = {}
        self.from_card = False
        self.card_token: str | None = None

    @property
    def card(self) -> dict[str, Any]:
        """The card as the admin sees it now."""
        assert self.card_token is not None
        shown = self.harness.fake.interaction_message(self.card_token)
        assert shown is not None
        return copy.deepcopy(shown)

    async def command(self, subcommand: str, **options: str) -> dict[str, Any]:
        """`/actions …` by an admin; the callback it got (a modal is kept as `modal`)."""
        payload = interaction_create(
            f"actions {subcommand}",
            channel_id=CHANNEL,
            guild_id=GUILD,
            command_guild_id=GUILD,
            options=options or None,
            permissions=ADMIN_PERMISSIONS,
        )
        callback = await self.send(payload)
        self.from_card = False
        return callback

    async def press(
        self, step: str, *, permissions: int = ADMIN_PERMISSIONS, value: str | None = None
    ) -> dict[str, Any]:
        """Click the card's `step` button (or choose `value` in its `step` select)."""
        custom_id = next(i for i in custom_ids(self.card) if i.split(":")[2] == step)
        payload = component_interaction(
            custom_id,
            self.card,
            guild_id=GUILD,
            permissions=permissions,
            values=None if value is None else [value],
        )
        callback = await self.send(payload)
        self.from_card = True
        return callback

    async def submit(
        self, values: dict[str, str], *, permissions: int = ADMIN_PERMISSIONS, twice: bool = False
    ) -> dict[str, Any]:
        """Submit the modal last shown with `values` typed over what it showed; with `twice`
        the gateway delivers the submit a second time."""
        payload = modal_submit(
            self.modal,
            values,
            channel_id=CHANNEL,
            guild_id=GUILD,
            permissions=permissions,
            message=self.card if self.from_card else None,
        )
        callback = await self.send(payload, twice=twice)
        if (
            callback["type"] == CHANNEL_MESSAGE
            and not self.from_card
            and "embeds" in callback.get("data", {})
        ):
            self.card_token = payload["token"]
        return callback

    async def send(self, payload: dict[str, Any], *, twice: bool = False) -> dict[str, Any]:
        fake = self.harness.fake
        await fake.dispatch("INTERACTION_CREATE", payload)
        path = f"/interactions/{payload['id']}/{payload['token']}/callback"
        [callback] = await fake.wait_for("POST", path)
        if twice:
            await fake.dispatch("INTERACTION_CREATE", payload)
            await self.harness.barrier()
            assert len(fake.requests_to("POST", path)) == 1
        answer: dict[str, Any] = callback.json or {}
        if answer.get("type") == MODAL:
            self.modal = answer["data"]
        return answer


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def steps(message: dict[str, Any]) -> list[str]:
    """The card's buttons and selects by step: `save`, `fix`, `change`…"""
    return [custom_id.split(":")[2] for custom_id in custom_ids(message)]


def inputs(modal: dict[str, Any]) -> dict[str, Any]:
    """Each input of a modal by custom_id: its pre-filled text, or its chosen option."""
    found: dict[str, Any] = {}
    for label in modal["components"]:
        component = label["component"]
        if component["type"] == 4:
            found[component["custom_id"]] = component.get("value")
        else:
            chosen = [o["value"] for o in component["options"] if o.get("default")]
            found[component["custom_id"]] = chosen[0] if chosen else None
    return found


def card_field(message: dict[str, Any], name: str) -> str:
    return "\n".join(
        f["value"] for e in message["embeds"] for f in e.get("fields", []) if f["name"] == name
    )


def details(url: str, **changes: str) -> dict[str, str]:
    typed = {
        "display_name": "Order Status",
        "description": "Look up where an order is. Use when a customer asks about an order.",
        "url": url,
        "method": "GET",
    }
    return typed | changes


def order_form(url: str, **changes: Any) -> dict[str, Any]:
    """A chat-made action as the core keeps it."""
    form: dict[str, Any] = {
        "display_name": "Order Status",
        "description": "Look up where an order is.",
        "url": url,
        "method": "GET",
        "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"},
        "parameters": [
            {"name": "order_id", "type": "string", "description": "The order", "required": True}
        ],
    }
    return form | changes


async def test_an_admin_makes_an_action_with_a_parameter_and_the_ai_is_offered_it(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """`/actions new` opens the details modal; its submit shows the draft card; Add parameter
    opens the parameter modal; Save keeps the action, which lists as made in chat and is
    offered to the model on the next message."""
    form = Form(harness)
    assert (await form.command("new"))["type"] == MODAL
    labels = [c["label"] for c in form.modal["components"]]
    assert labels == ["Display name", "Name (optional)", "AI description", "URL", "Method"]

    answer = await form.submit(details(webhook_server.url("/orders/{order_id}")))
    assert answer["type"] == CHANNEL_MESSAGE
    assert answer["data"]["flags"] & EPHEMERAL
    assert "`order_status` (from the display name)" in card_field(form.card, "Name")
    assert "{order_id}" in card_field(form.card, "Before saving")
    assert steps(form.card) == ["parameter", "settings", "details", "save", "cancel"]

    assert (await form.press("parameter"))["type"] == MODAL
    assert [c["label"] for c in form.modal["components"]] == [
        "Name",
        "Type",
        "AI description",
        "Required",
    ]
    typed = {"name": "order_id", "type": "string", "description": "The order number"}
    assert (await form.submit(typed | {"required": "yes"}))["type"] == UPDATE_MESSAGE
    assert "`order_id` (string, required) — The order number" in card_field(form.card, "Parameters")
    assert card_field(form.card, "Before saving") == ""
    assert steps(form.card)[-2:] == ["change", "remove"]

    saved = await form.press("save")
    assert saved["type"] == UPDATE_MESSAGE
    assert saved["data"]["content"] == (
        "✅ order_status is made; the AI can use it from the next message."
    )
    assert saved["data"]["components"] == []
    [kept] = await harness.store.chat_actions()
    assert kept.name == "order_status"
    assert kept.updated_by == f"discord:{USER_ID}"
    assert kept.definition["parameters"] == [typed | {"required": True}]

    listing = await harness.command("list", permissions=MANAGE_GUILD)
    rows = {f["name"]: f["value"] for f in listing["embeds"][0]["fields"]}
    assert rows["Order Status (order_status)"].endswith("· made in chat")
    assert rows["Check Inventory (check_inventory)"].endswith("· actions file")
    await harness.barrier()
    [tool] = [
        t for t in harness.llm.requests[0]["tools"] if t["function"]["name"] == "order_status"
    ]
    assert list(tool["function"]["parameters"]["properties"]) == ["order_id"]


@pytest.mark.parametrize(
    ("typed", "label", "words"),
    [
        ({"url": "http://127.0.0.1/orders"}, "URL", "must use https://"),
        ({"url": "https://10.1.2.3/orders"}, "URL", "private"),
        ({"display_name": "Check Inventory"}, "Name", "another action already has this name"),
    ],
)
async def test_bad_details_show_each_problem_by_its_field_and_fix_reopens_what_was_typed(
    harness: Harness, webhook_server: WebhookServer, typed: dict[str, str], label: str, words: str
) -> None:
    """An `http://` URL, a private address or a taken name: the card lists the problem by
    its field with only Fix and Cancel, nothing is saved, and Fix opens the details form
    with what was typed."""
    form = Form(harness)
    await form.command("new")
    submitted = details(webhook_server.url("/orders")) | typed
    await form.submit(submitted)

    problems = card_field(form.card, "Not saved: fix these")
    assert f"**{label}**: " in problems
    assert words in problems
    assert steps(form.card) == ["fix", "cancel"]
    assert await harness.store.chat_actions() == []

    assert (await form.press("fix"))["type"] == MODAL
    assert form.modal["title"] == "New action"
    shown = inputs(form.modal)
    assert {key: shown[key] for key in submitted} == submitted
    assert harness.adapter.admin.actions.names() == ["check_inventory"]


async def test_a_secret_typed_into_a_header_is_refused_and_never_shown(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """A literal header value: the card names the header and says to use `${VAR}`, without
    showing the value; Save saves nothing; Fix opens timeout and headers as typed."""
    form = Form(harness)
    await form.command("new")
    await form.submit(details(webhook_server.url("/orders")))
    assert (await form.press("settings"))["type"] == MODAL
    typed = {"timeout": "5", "headers": "Authorization: Bearer sk-live-123"}
    await form.submit(typed)

    problems = card_field(form.card, "Not saved: fix these")
    assert "**Header Authorization**: may only reference a ${VAR}" in problems
    assert "sk-live-123" not in json.dumps(form.card)
    await form.press("save")
    assert "**Header Authorization**" in card_field(form.card, "Not saved: fix these")
    assert await harness.store.chat_actions() == []

    assert (await form.press("fix"))["type"] == MODAL
    assert inputs(form.modal) == typed
    await form.submit({"headers": "Authorization: Bearer ${ORDERS_TOKEN}"})
    assert card_field(form.card, "Not saved: fix these") == ""
    await form.press("save")
    [kept] = await harness.store.chat_actions()
    assert kept.definition["headers"] == {"Authorization": "Bearer ${ORDERS_TOKEN}"}
    assert kept.definition["timeout"] == 5


async def test_edit_prefills_the_kept_action_and_a_rename_replaces_it(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """`/actions edit` offers only chat-made actions, opens the details form filled from the
    kept definition, keeps its parameters and headers, and saving a new name renames it; a
    file action is refused with a pointer to the file."""
    admin = harness.adapter.admin
    await admin.editing.save(order_form(webhook_server.url("/orders")), actor="discord:1")
    suggest = interaction_create(
        "actions edit",
        channel_id=CHANNEL,
        guild_id=GUILD,
        command_guild_id=GUILD,
        options={"name": ""},
        focused="name",
        permissions=ADMIN_PERMISSIONS,
    )
    offered = await Form(harness).send(suggest)
    assert offered["data"]["choices"] == [{"name": "order_status", "value": "order_status"}]

    form = Form(harness)
    await form.command("edit", name="order_status")
    assert form.modal["title"] == "Edit order_status"
    assert inputs(form.modal) == {
        "display_name": "Order Status",
        "name": "order_status",
        "description": "Look up where an order is.",
        "url": webhook_server.url("/orders"),
        "method": "GET",
    }
    await form.submit({"name": "where_is_my_order"})
    assert "`order_id` (string, required)" in card_field(form.card, "Parameters")
    saved = await form.press("save")

    assert saved["data"]["content"] == (
        "✅ where_is_my_order is changed (renamed from order_status); the AI can use it from "
        "the next message."
    )
    [kept] = await harness.store.chat_actions()
    assert kept.name == "where_is_my_order"
    assert kept.definition["parameters"] == order_form("")["parameters"]
    assert kept.definition["headers"] == {"Authorization": "Bearer ${ORDERS_TOKEN}"}
    assert admin.actions.names() == ["check_inventory", "where_is_my_order"]

    refused = await Form(harness).command("edit", name="check_inventory")
    assert refused["type"] == CHANNEL_MESSAGE
    assert "defined in the actions file: edit it there" in refused["data"]["content"]


async def test_a_parameter_is_changed_and_removed_from_the_card(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """Change a parameter… opens its form filled in, and Remove a parameter… drops it."""
    admin = harness.adapter.admin
    form_data = order_form(webhook_server.url("/orders"))
    form_data["parameters"].append(
        {"name": "email", "type": "string", "description": "The email", "required": False}
    )
    await admin.editing.save(form_data, actor="discord:1")
    form = Form(harness)
    await form.command("edit", name="order_status")
    await form.submit({})

    assert (await form.press("change", value="1"))["type"] == MODAL
    assert inputs(form.modal) == {
        "name": "email",
        "type": "string",
        "description": "The email",
        "required": "no",
    }
    await form.submit({"type": "boolean", "description": "Wants mail"})
    assert "`email` (boolean, optional) — Wants mail" in card_field(form.card, "Parameters")
    await form.press("remove", value="0")
    assert "order_id" not in card_field(form.card, "Parameters")
    await form.press("save")

    [kept] = await harness.store.chat_actions()
    assert [p["name"] for p in kept.definition["parameters"]] == ["email"]
    assert kept.definition["parameters"][0]["type"] == "boolean"


async def test_delete_removes_a_chat_action_and_refuses_a_file_action(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """`/actions delete` deletes a chat-made action from the store and the set in use; a
    file action is refused with the reason and stays."""
    admin = harness.adapter.admin
    await admin.editing.save(order_form(webhook_server.url("/orders")), actor="discord:1")

    deleted = await harness.command("delete", permissions=MANAGE_GUILD, name="order_status")
    assert deleted["content"] == "🗑️ `order_status` is deleted; its calls stay in the stats."
    assert deleted["flags"] & EPHEMERAL
    assert await harness.store.chat_actions() == []
    assert admin.actions.names() == ["check_inventory"]

    refused = await harness.command("delete", permissions=MANAGE_GUILD, name="check_inventory")
    assert "defined in the actions file: remove it there" in refused["content"]
    assert admin.actions.names() == ["check_inventory"]


async def test_reload_reports_a_change_to_the_actions_file(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """`/actions reload` after the file changed names what was added and changed; after a
    broken save it lists the problem and keeps the actions in use."""
    path = harness.adapter.settings.actions_path
    text = ACTIONS.format(url=webhook_server.url("/inventory/check"))
    extra = text.split("\n\n")[0].replace("check_inventory", "check_stock")
    path.write_text(text.replace("Check if a specific", "Look up whether a") + "\n" + extra)

    reloaded = await harness.command("reload", permissions=MANAGE_GUILD)
    [embed] = reloaded["embeds"]
    assert embed["title"] == "Actions reloaded"
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Added": "`check_stock`",
        "Changed": "`check_inventory`",
    }
    assert harness.adapter.admin.actions.names() == ["check_inventory", "check_stock"]

    path.write_text(text + "\nnot toml at all\n")
    refused = await harness.command("reload", permissions=MANAGE_GUILD)
    [embed] = refused["embeds"]
    assert embed["title"] == "Actions file not reloaded"
    assert "TOML syntax error" in embed["fields"][0]["value"]
    assert harness.adapter.admin.actions.names() == ["check_inventory", "check_stock"]


async def test_a_non_admin_is_refused_at_every_step(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """Someone who is not an admin gets the usual refusal for `/actions new`; an admin whose
    permission is taken away after the form opened is refused on submit and on Save, and
    nothing is saved."""
    refused = await harness.command("new", permissions=EVERYONE_PERMISSIONS)
    assert refused["content"] == discord_wording.NOT_ADMIN_DISCORD

    form = Form(harness)
    await form.command("new")
    await form.submit(details(webhook_server.url("/orders")))
    card = form.card
    await form.press("parameter")
    typed = {"name": "order_id", "type": "string", "description": "The order", "required": "yes"}
    answer = await form.submit(typed, permissions=EVERYONE_PERMISSIONS)
    assert answer["type"] == CHANNEL_MESSAGE
    assert answer["data"]["content"] == discord_wording.NOT_ADMIN_DISCORD
    assert form.card == card

    answer = await form.press("save", permissions=EVERYONE_PERMISSIONS)
    assert answer["data"]["content"] == discord_wording.NOT_ADMIN_DISCORD
    assert await harness.store.chat_actions() == []


async def test_a_submit_delivered_twice_adds_the_parameter_once(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """The same modal submit delivered again (a gateway replay) is answered and applied
    once: the action is saved with one parameter."""
    form = Form(harness)
    await form.command("new")
    await form.submit(details(webhook_server.url("/orders")))
    await form.press("parameter")
    typed = {"name": "order_id", "type": "string", "description": "The order", "required": "yes"}
    await form.submit(typed, twice=True)
    await form.press("save")

    [kept] = await harness.store.chat_actions()
    assert [p["name"] for p in kept.definition["parameters"]] == ["order_id"]


async def test_a_form_whose_draft_expired_says_so_and_saves_nothing(
    harness: Harness, webhook_server: WebhookServer
) -> None:
    """After `DRAFT_SECONDS` without a step (or a restart) the draft is gone: a submit and a
    click on the old card are answered with a line saying to start again."""
    now = [1000.0]
    harness.adapter.actions.editor.drafts = Drafts(clock=lambda: now[0])
    form = Form(harness)
    await form.command("new")
    await form.submit(details(webhook_server.url("/orders")))
    await form.press("details")
    now[0] += DRAFT_SECONDS + 1

    gone = discord_wording.draft_gone(DRAFT_SECONDS // 60)
    answer = await form.submit({"display_name": "Late"})
    assert (answer["type"], answer["data"]["content"]) == (CHANNEL_MESSAGE, gone)
    answer = await form.press("save")
    assert (answer["type"], answer["data"]["content"]) == (CHANNEL_MESSAGE, gone)
    assert answer["data"]["flags"] & EPHEMERAL
    assert await harness.store.chat_actions() == []


async def test_cancel_discards_the_draft(harness: Harness, webhook_server: WebhookServer) -> None:
    """Cancel replaces the card with a line and forgets the draft: nothing is saved."""
    form = Form(harness)
    await form.command("new")
    await form.submit(details(webhook_server.url("/orders")))
    card = form.card

    answer = await form.press("cancel")
    assert answer["data"]["content"] == discord_wording.DRAFT_CANCELLED
    assert form.card["components"] == []
    form.card_token = None
    payload = component_interaction(
        next(i for i in custom_ids(card) if ":save:" in i),
        card,
        guild_id=GUILD,
        permissions=ADMIN_PERMISSIONS,
        invoker=DEFAULT_USER,
    )
    answer = await form.send(payload)
    assert answer["data"]["content"].startswith("This form is no longer open")
    assert await harness.store.chat_actions() == []


def test_header_lines_are_read_and_a_bad_line_is_named_not_quoted() -> None:
    """`Name: value` lines become headers; a line without a colon is a problem on Headers
    that gives its number, not its text (it may be a pasted secret)."""
    headers, problems = parse_headers("Authorization: Bearer ${A}\n\n  X-Key :${B}\nsk-live-9")
    assert headers == {"Authorization": "Bearer ${A}", "X-Key": "${B}"}
    [problem] = problems
    assert (problem.field, problem.message) == ("headers", "line 4 is not `Name: value`")
    assert "sk-live-9" not in str(problem)


def test_fields_are_named_as_the_forms_name_them() -> None:
    """The core's field paths read as the labels an admin sees."""
    draft = Drafts().open(1, None, {"parameters": [{"name": "order_id"}, {"name": "bad.name"}]})
    assert field_label("url", draft) == "URL"
    assert field_label("headers.X-Key", draft) == "Header X-Key"
    assert (
        field_label("parameters.order_id.description", draft) == "Parameter order_id, description"
    )
    assert field_label("parameters.bad.name.name", draft) == "Parameter bad.name, name"
    assert field_label("parameters.[0].type", draft) == "Parameter order_id, type"
    assert field_label(None, draft) == "Action"
