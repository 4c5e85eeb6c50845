"""Exporting actions as an actions file: every field written, read back to the same actions,
secrets never in it, and `actionbot actions export` from the shell."""

from __future__ import annotations

import asyncio
import os
import sys
import tomllib
from pathlib import Path

from pydantic import SecretStr

from bot.actions.export import action_fields, export_toml
from bot.actions.loader import load_actions, parse_actions
from bot.actions.models import (
    Action,
    ActionConfig,
    Audience,
    ContextSource,
    Method,
    Parameter,
    ParameterType,
)
from bot.outbound.egress import EgressPolicy
from bot.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parent.parent
ACTIONBOT = Path(sys.executable).parent / "actionbot"
EXAMPLE_ENV = {"CRM_TOKEN": "crm-secret-4711"}
TRICKY = 'quote " backslash \\ tab \t newline \n return \r bell \x07 del \x7f unicode ✓ """'


def every_field() -> Action:
    """An action with every field away from its default, and text that TOML must escape."""
    return Action(
        name="every-field_1",
        display_name=f"Display {TRICKY}",
        description=f"Description {TRICKY}",
        url="https://api.example.com/customers/{customer_id}/orders/{order_id}?fixed=1",
        method=Method.POST,
        active=False,
        timeout=2.5,
        max_concurrency=3,
        confirm=True,
        channels=["slack:C0123ABC", "discord:98765", "console:local"],
        audience=Audience.ADMINS,
        response_fields=["status", "items[].name"],
        retries=4,
        mode="dry_run",
        rate="30/minute",
        headers={
            "Authorization": "Bearer ${SHOP_TOKEN}",
            "X.Shop-Id": "static ${SHOP_ID}",
            "X-Plain": 'a "quoted" value',
        },
        header_values={
            "Authorization": SecretStr("Bearer shop-secret-4711"),
            "X.Shop-Id": SecretStr("static 42"),
            "X-Plain": SecretStr('a "quoted" value'),
        },
        parameters=[
            Parameter(
                name="order_id",
                type=ParameterType.STRING,
                description=f"The order {TRICKY}",
                required=True,
            ),
            Parameter(name="count", type=ParameterType.NUMBER, description="How many"),
            Parameter(name="gift", type=ParameterType.BOOLEAN, description="Gift wrap"),
            Parameter(name="note", type=ParameterType.STRING, description="Optional text"),
            Parameter(
                name="customer_id",
                source=ContextSource.USER_ID,
                description="The chat user asking",
            ),
        ],
    )


EVERY_FIELD_ENV = {"SHOP_TOKEN": "shop-secret-4711", "SHOP_ID": "42"}


def test_the_example_file_round_trips() -> None:
    """The shipped example, exported and loaded again, gives exactly the same actions."""
    policy = EgressPolicy()
    original = load_actions(REPO / "actions.example.toml", environ=EXAMPLE_ENV, policy=policy)
    text = export_toml(original)
    again = parse_actions(text, source="exported", environ=EXAMPLE_ENV, policy=policy)
    assert list(again) == list(original)
    assert len(again) == 4


def test_every_field_and_awkward_text_round_trip() -> None:
    """An action with every field set and quotes, backslashes and control characters in its
    text loads back equal from the export."""
    action = every_field()
    text = export_toml([action], header=["a header line"], comments={action.name: ["why"]})
    again = parse_actions(text, source="exported", environ=EVERY_FIELD_ENV, policy=EgressPolicy())
    assert list(again) == [action]
    assert text.startswith("# a header line\n")
    assert "# why\n[[actions]]" in text


def test_every_field_of_the_file_is_written() -> None:
    """Every field an actions file may hold is written for an action that sets it (a new
    field the exporter drops fails here)."""
    written = action_fields(every_field())
    assert set(written) == set(ActionConfig.model_fields)


def test_defaults_are_left_out() -> None:
    """A plain action is written without its defaults, but with method and parameter type."""
    action = ActionConfig(
        name="ping",
        display_name="Ping",
        description="Ping the shop.",
        url="https://api.example.com/ping",
        parameters=[Parameter(name="who", type=ParameterType.STRING, description="Who")],
    )
    document = tomllib.loads(export_toml([action]))
    assert document["actions"][0] == {
        "name": "ping",
        "display_name": "Ping",
        "description": "Ping the shop.",
        "url": "https://api.example.com/ping",
        "method": "GET",
        "parameters": [{"name": "who", "type": "string", "description": "Who"}],
    }


def test_secrets_stay_templates() -> None:
    """Exported headers keep their `${VAR}` templates; no resolved secret is written."""
    text = export_toml([every_field()])
    assert 'Authorization = "Bearer ${SHOP_TOKEN}"' in text
    assert '"X.Shop-Id" = "static ${SHOP_ID}"' in text
    assert "shop-secret-4711" not in text
    assert "static 42" not in text


async def test_export_command_prints_a_valid_file_without_the_secrets(tmp_path: Path) -> None:
    """`actionbot actions export` prints the configured actions as a file that loads to the
    same actions, even where the secrets the headers name are not set."""
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    env["ACTIONBOT_ACTIONS"] = str(REPO / "actions.example.toml")
    process = await asyncio.create_subprocess_exec(
        str(ACTIONBOT),
        "actions",
        "export",
        "--format",
        "toml",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    policy = EgressPolicy()
    original = load_actions(REPO / "actions.example.toml", environ=EXAMPLE_ENV, policy=policy)
    again = parse_actions(out.decode(), source="exported", environ=EXAMPLE_ENV, policy=policy)
    assert list(again) == list(original)
    assert "${CRM_TOKEN}" in out.decode()


async def test_export_includes_the_actions_made_in_chat(tmp_path: Path) -> None:
    """Actions made in chat are exported after the file's, as they were written (their
    header still names its ${VAR}), and the whole output loads as one actions file."""
    db = tmp_path / "actionbot.db"
    made = {
        "name": "order_status",
        "display_name": "Order Status",
        "description": "Where an order is.",
        "url": "https://orders.example.com/orders/{order_id}",
        "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"},
        "parameters": [
            {"name": "order_id", "type": "string", "description": "The order", "required": True}
        ],
    }
    async with await SQLiteStore.open(db) as store:
        await store.save_chat_action("order_status", made, actor="slack:UADMIN")
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    env |= {"ACTIONBOT_ACTIONS": str(REPO / "actions.example.toml"), "ACTIONBOT_DB": str(db)}
    process = await asyncio.create_subprocess_exec(
        str(ACTIONBOT),
        "actions",
        "export",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    environ = EXAMPLE_ENV | {"ORDERS_TOKEN": "orders-secret"}
    again = parse_actions(out.decode(), source="exported", environ=environ, policy=EgressPolicy())
    assert again.names()[-1] == "order_status"
    assert again.get("order_status").headers == {"Authorization": "Bearer ${ORDERS_TOKEN}"}
    assert "# Made in chat: order_status." in out.decode()
