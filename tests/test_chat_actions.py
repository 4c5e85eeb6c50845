"""Actions made in chat, in the core: a saved form is checked like the file, kept in the
database, offered from the next turn and listed as `chat`; bad forms come back field by
field with nothing saved; file actions are not edited or deleted from chat; a restart
loads the chat-made actions again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from deployment import ACTIONS

from actionbot.app import catalogue_actions, load_configured_actions
from actionbot.catalogue import Catalogue
from bot.admin.operations import (
    ActionDeleted,
    ActionForm,
    ActionList,
    ActionProblems,
    ActionSaved,
    Admin,
    Notice,
    render_text,
)
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from fakes.https_server import WebhookServer

ENV = {"INVENTORY_TOKEN": "inventory-secret-4711", "ORDERS_TOKEN": "orders-secret-4711"}


def order_form(url: str, **changes: Any) -> dict[str, Any]:
    """What a submitted form carries: every field of an `[[actions]]` table."""
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


@pytest.fixture
def admin(
    tmp_path: Path, webhook_server: WebhookServer, webhooks: WebhookClient, store: Store
) -> Admin:
    path = tmp_path / "actions.toml"
    path.write_text(ACTIONS.format(url=webhook_server.url("/inventory/check")))
    settings = make_settings(actions_path=path, egress_allow="127.0.0.1")
    actions = load_configured_actions(settings, environ=ENV)
    admin = Admin(actions=actions, store=store, webhooks=webhooks, result_chars=4000)
    admin.editing.catalogue = Catalogue(
        settings, actions, webhooks=webhooks, store=store, environ=ENV
    )
    return admin


async def test_a_saved_form_is_offered_listed_and_survives_a_restart(
    admin: Admin, webhook_server: WebhookServer, store: Store
) -> None:
    """A valid form is kept (name derived from the display name), is in the set at once,
    lists as `chat`, and is loaded again with the file's actions after a restart."""
    saved = await admin.editing.save(
        order_form(webhook_server.url("/orders")), actor="slack:UADMIN"
    )

    assert saved == ActionSaved("order_status", created=True)
    assert admin.actions.names() == ["check_inventory", "order_status"]
    assert admin.actions.get("order_status").origin == "chat"
    listing = await admin.execute("list", actor="slack:UADMIN")
    assert isinstance(listing, ActionList)
    assert [(r.name, r.origin) for r in listing.rows] == [
        ("check_inventory", "file"),
        ("order_status", "chat"),
    ]
    assert "FROM" in render_text(listing)
    [kept] = await store.chat_actions()
    assert kept.definition["headers"] == {"Authorization": "Bearer ${ORDERS_TOKEN}"}
    assert kept.updated_by == "slack:UADMIN"

    settings = admin.editing.catalogue.settings  # type: ignore[union-attr]
    file = load_configured_actions(settings, environ=ENV)
    restarted = catalogue_actions(settings, file, await store.chat_actions(), environ=ENV)
    assert restarted.names() == ["check_inventory", "order_status"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"url": "http://127.0.0.1/orders"}, "url", "https"),
        ({"url": "https://10.1.2.3/orders"}, "url", "private"),
        ({"display_name": "Check Inventory"}, "name", "already has this name"),
        ({"url": "https://127.0.0.1/orders/{order}"}, "url", "order"),
        ({"headers": {"Authorization": "Bearer sk-live-123"}}, "headers.Authorization", "${VAR}"),
        ({"headers": {"X-Key": "${NOT_SET_ANYWHERE}"}}, "headers.X-Key", "NOT_SET_ANYWHERE"),
    ],
)
async def test_a_bad_form_says_which_field_and_saves_nothing(
    admin: Admin, store: Store, change: dict[str, Any], field: str, words: str
) -> None:
    """`http://`, a private address, a taken name, a placeholder naming no parameter, a
    secret typed into a header, a variable not set: the problem names its field, nothing
    is kept and the actions in use are unchanged."""
    form = order_form("https://127.0.0.1/orders") | change
    result = await admin.editing.save(form, actor="slack:UADMIN")

    assert isinstance(result, ActionProblems)
    fields = {p.field: p.message for p in result.problems}
    assert field in fields, result.problems
    assert words.lower() in fields[field].lower()
    assert await store.chat_actions() == []
    assert admin.actions.names() == ["check_inventory"]
    assert "sk-live-123" not in render_text(result)


async def test_edit_renames_and_delete_removes_a_chat_action_but_not_a_file_action(
    admin: Admin, webhook_server: WebhookServer, store: Store
) -> None:
    """`/actions edit` opens the kept definition; saving it under a new name replaces the
    old one; file actions are refused for edit and delete with a pointer to the file."""
    await admin.editing.save(order_form(webhook_server.url("/orders")), actor="slack:UADMIN")
    form = await admin.execute("edit order_status", actor="slack:UADMIN")
    assert isinstance(form, ActionForm)
    assert form.editing == "order_status"
    assert form.definition["url"] == webhook_server.url("/orders")

    renamed = await admin.editing.save(
        form.definition | {"name": "where_is_my_order"},
        actor="slack:UADMIN",
        editing="order_status",
    )
    assert renamed == ActionSaved("where_is_my_order", created=False, previous="order_status")
    assert admin.actions.names() == ["check_inventory", "where_is_my_order"]

    refused = await admin.execute("edit check_inventory", actor="slack:UADMIN")
    assert isinstance(refused, Notice)
    assert "defined in the actions file" in refused.text
    refused = await admin.execute("delete check_inventory", actor="slack:UADMIN")
    assert isinstance(refused, Notice)
    assert "defined in the actions file" in refused.text

    deleted = await admin.execute("delete where_is_my_order", actor="slack:UADMIN")
    assert deleted == ActionDeleted("where_is_my_order")
    assert admin.actions.names() == ["check_inventory"]
    assert await store.chat_actions() == []


async def test_the_shell_cannot_open_a_form(admin: Admin) -> None:
    """Without a platform there is no form: `new` says where to make actions."""
    admin.editing.catalogue = None
    result = await admin.execute("new", actor="cli:ops")
    assert "needs a form" in render_text(result)
