"""The `/actions` admin operations: parsing, execution against a real store and a real HTTPS
webhook fake, and the plain-text rendering the shell and the console show."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.actions.models import Action, ActionSet
from bot.admin.operations import (
    USAGE,
    ActionDetail,
    ActionList,
    Admin,
    AdminCommand,
    Notice,
    StatsReport,
    TestReport,
    Toggled,
    parse_command,
    render_text,
)
from bot.errors import AdminUsageError
from bot.outbound.webhooks import WebhookClient
from bot.store import Store
from bot.store.sqlite import SQLiteStore
from bot.types import ActionResult, IncomingMessage, Outcome
from fakes.https_server import WebhookServer, json_handler

MakeAction = Callable[..., Action]
INVENTORY_PATH = "/inventory/check"
STOCK = {"in_stock": True, "quantity": 4, "price": "$129"}
SECRET = "sekrit-123"
ACTOR = "slack:U123"
SEED_TEST = 'test check_inventory part_name="screen" device_model="iPhone 15 Pro"'


def shop_actions(server: WebhookServer, make_action: MakeAction) -> ActionSet:
    """The seed's inventory action on the fake, plus a CRM action holding a secret header."""
    inventory = make_action(
        server.url(INVENTORY_PATH),
        name="check_inventory",
        parameters=["part_name", "device_model"],
    )
    loyalty = make_action(
        server.url("/crm/loyalty"),
        name="loyalty_status",
        parameters=["customer_id"],
        headers={"Authorization": "Bearer ${CRM_TOKEN}"},
        header_values={"Authorization": f"Bearer {SECRET}"},
    )
    return ActionSet([inventory, loyalty], source="test")


@pytest.fixture
def admin(
    webhook_server: WebhookServer, make_action: MakeAction, store: Store, webhooks: WebhookClient
) -> Admin:
    """An `Admin` over the shop actions, a real SQLite store and the HTTPS webhook fake."""
    webhook_server.route(INVENTORY_PATH, json_handler(STOCK))
    return Admin(
        actions=shop_actions(webhook_server, make_action),
        store=store,
        webhooks=webhooks,
        result_chars=4000,
    )


def row_for(listing: ActionList, name: str) -> tuple[bool, int]:
    row = next(r for r in listing.rows if r.name == name)
    return row.active, row.calls


# --- parse_command ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("list", AdminCommand("list")),
        ("/actions list", AdminCommand("list")),
        ("actions LIST", AdminCommand("list")),
        ("show check_inventory", AdminCommand("show", "check_inventory")),
        ("/actions enable check_inventory", AdminCommand("enable", "check_inventory")),
        ("disable check_inventory", AdminCommand("disable", "check_inventory")),
        ("stats", AdminCommand("stats")),
        ("/actions stats check_inventory", AdminCommand("stats", "check_inventory")),
        ("help", AdminCommand("help")),
        ("", AdminCommand("console")),
        ("/actions", AdminCommand("console")),
        ("resume", AdminCommand("resume")),
        ("resume slack:C1:1.0", AdminCommand("resume", "slack:C1:1.0")),
    ],
)
def test_parse_command_reads_every_verb(text: str, expected: AdminCommand) -> None:
    """Every verb parses, with or without the `/actions` prefix, and empty input is the
    console."""
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        SEED_TEST,
        "/actions " + SEED_TEST,
        "/actions test check_inventory part_name=screen device_model=“iPhone 15 Pro”",
        "/actions test check_inventory part_name=‘screen’ device_model='iPhone 15 Pro'",
    ],
)
def test_parse_command_reads_quoted_values(text: str) -> None:
    """`test` arguments keep quoted spaces, straight or typographic as chat clients send them."""
    command = parse_command(text)
    assert command == AdminCommand(
        "test",
        "check_inventory",
        {"part_name": "screen", "device_model": "iPhone 15 Pro"},
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("show", "needs an action name"),
        ("/actions enable", "needs an action name"),
        ("disable", "needs an action name"),
        ("test", "needs an action name"),
        ("remove check_inventory", "Unknown subcommand 'remove'"),
        ("delete", "`delete` needs an action name"),
        ("test check_inventory screen", "'screen' is not one"),
        ("test check_inventory =screen", "'=screen' is not one"),
        ("show check_inventory extra", "Too many words"),
        ("list everything", "Too many words"),
        ('test check_inventory part_name="screen', "Could not read the command"),
    ],
)
def test_parse_command_rejects_bad_input(text: str, says: str) -> None:
    """Missing names, unknown subcommands, bad key=value pairs and stray quotes are usage errors."""
    with pytest.raises(AdminUsageError, match=says):
        parse_command(text)


# --- execute ------------------------------------------------------------------------------


async def test_unknown_subcommand_gives_usage(admin: Admin) -> None:
    """An unknown subcommand comes back as an error notice carrying the usage text."""
    result = await admin.execute("/actions frobnicate", actor=ACTOR)
    assert isinstance(result, Notice)
    assert result.error
    assert "frobnicate" in result.text
    assert USAGE in render_text(result)


async def test_help_is_the_usage_and_not_an_error(admin: Admin) -> None:
    """`/actions help` shows the usage text without flagging an error."""
    result = await admin.execute("/actions help", actor=ACTOR)
    assert result == Notice(USAGE)


@pytest.mark.parametrize("text", ["show nope", "enable nope", "stats nope", "test nope a=b"])
async def test_unknown_action_names_the_known_ones(admin: Admin, text: str) -> None:
    """A name that is not an action gives an error notice listing the actions that exist."""
    result = await admin.execute(text, actor=ACTOR)
    assert isinstance(result, Notice)
    assert result.error
    assert "'nope'" in result.text
    assert "check_inventory" in result.text
    assert "loyalty_status" in result.text


async def test_list_shows_state_and_call_counts(admin: Admin) -> None:
    """`list` has every action with its method, host, state and number of calls."""
    await admin.execute(SEED_TEST, actor=ACTOR)
    listing = await admin.execute("list", actor=ACTOR)
    assert isinstance(listing, ActionList)
    assert [r.name for r in listing.rows] == ["check_inventory", "loyalty_status"]
    assert row_for(listing, "check_inventory") == (True, 1)
    assert row_for(listing, "loyalty_status") == (True, 0)
    assert listing.rows[0].method == "GET"
    assert listing.rows[0].host == "127.0.0.1"
    lines = render_text(listing).splitlines()
    assert lines[0].split() == [
        "NAME",
        "DISPLAY",
        "NAME",
        "METHOD",
        "HOST",
        "FROM",
        "MODE",
        "BREAKER",
        "STATE",
        "CALLS",
    ]
    inventory = next(line for line in lines if line.startswith("check_inventory"))
    assert inventory.split()[-2:] == ["active", "1"]


async def test_show_masks_secrets(admin: Admin) -> None:
    """`show` gives the definition with the `${VAR}` reference, never the secret value."""
    detail = await admin.execute("show loyalty_status", actor=ACTOR)
    assert isinstance(detail, ActionDetail)
    text = render_text(detail)
    assert "${CRM_TOKEN}" in text
    assert "Authorization" in text
    assert SECRET not in text
    assert SECRET not in repr(detail)
    assert "customer_id" in text
    assert "https://127.0.0.1:" in text
    assert "concurrency: at most 10 calls at once" in text


async def test_a_toggle_is_logged_once(
    store: Store,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    webhooks: WebhookClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Disabling an action writes one log line with who did it, not one per layer."""
    admin = Admin(
        actions=shop_actions(webhook_server, make_action),
        store=store,
        webhooks=webhooks,
        result_chars=4000,
    )
    with caplog.at_level(logging.INFO):
        await admin.execute("disable check_inventory", actor=ACTOR)
    lines = [r.getMessage() for r in caplog.records if "check_inventory" in r.getMessage()]
    assert lines == [f"action check_inventory disabled by {ACTOR}"]


async def test_disable_persists_with_the_actor(
    tmp_path: Path,
    webhook_server: WebhookServer,
    make_action: MakeAction,
    webhooks: WebhookClient,
) -> None:
    """`disable` makes the action inactive, and a reopened store still says so and by whom."""
    actions = shop_actions(webhook_server, make_action)
    path = tmp_path / "admin.db"
    async with await SQLiteStore.open(path) as first:
        admin = Admin(actions=actions, store=first, webhooks=webhooks, result_chars=4000)
        toggled = await admin.execute("/actions disable check_inventory", actor=ACTOR)
        assert toggled == Toggled("check_inventory", active=False, changed=True)
        listing = await admin.execute("list", actor=ACTOR)
        assert isinstance(listing, ActionList)
        assert row_for(listing, "check_inventory") == (False, 0)
    async with await SQLiteStore.open(path) as reopened:
        admin = Admin(actions=actions, store=reopened, webhooks=webhooks, result_chars=4000)
        listing = await admin.execute("list", actor="console:local")
        assert isinstance(listing, ActionList)
        assert row_for(listing, "check_inventory") == (False, 0)
        assert row_for(listing, "loyalty_status") == (True, 0)
        detail = await admin.execute("show check_inventory", actor="console:local")
        assert isinstance(detail, ActionDetail)
        assert not detail.active
        assert detail.changed_by == ACTOR
        assert detail.changed_at is not None
        assert f"inactive (set by {ACTOR}" in render_text(detail)


async def test_enable_when_already_enabled_changes_nothing(admin: Admin) -> None:
    """`enable` on an active action reports that it already was; after `disable` it changes."""
    already = await admin.execute("enable check_inventory", actor=ACTOR)
    assert already == Toggled("check_inventory", active=True, changed=False)
    assert "(it already was)" in render_text(already)
    await admin.execute("disable check_inventory", actor=ACTOR)
    again = await admin.execute("enable check_inventory", actor=ACTOR)
    assert again == Toggled("check_inventory", active=True, changed=True)
    assert render_text(again) == "check_inventory is now enabled."


async def test_test_calls_the_endpoint_once_and_counts(
    admin: Admin, webhook_server: WebhookServer
) -> None:
    """`test` calls the real endpoint once with the arguments, reports success and is counted."""
    report = await admin.execute(SEED_TEST, actor=ACTOR)
    assert isinstance(report, TestReport)
    assert report.result.outcome is Outcome.SUCCESS
    assert report.result.status == 200
    assert report.arguments == {"part_name": "screen", "device_model": "iPhone 15 Pro"}
    assert len(webhook_server.requests) == 1
    request = webhook_server.requests[0]
    assert request.path == INVENTORY_PATH
    assert request.query == {"part_name": "screen", "device_model": "iPhone 15 Pro"}
    text = render_text(report)
    assert "check_inventory: success · HTTP 200" in text
    assert '"in_stock":true' in text
    stats = await admin.execute("stats check_inventory", actor=ACTOR)
    assert isinstance(stats, StatsReport)
    assert [(s.action, s.calls, s.successes, s.failures) for s in stats.rows] == [
        ("check_inventory", 1, 1, {})
    ]
    row = next(line for line in render_text(stats).splitlines() if line.startswith("check_"))
    assert row.split()[1:4] == ["1", "1", "0"]


async def test_test_with_a_missing_argument_calls_nothing(
    admin: Admin, webhook_server: WebhookServer
) -> None:
    """`test` without a required argument is refused, naming it, and the endpoint is not called."""
    result = await admin.execute("test check_inventory part_name=screen", actor=ACTOR)
    assert isinstance(result, Notice)
    assert result.error
    assert "device_model" in result.text
    assert webhook_server.requests == []
    stats = await admin.execute("stats check_inventory", actor=ACTOR)
    assert isinstance(stats, StatsReport)
    assert stats.rows[0].calls == 0


async def test_stats_show_a_failing_endpoint(admin: Admin, webhook_server: WebhookServer) -> None:
    """A 500 from the endpoint is recorded as `http_error` and shown with the last error."""
    webhook_server.route(INVENTORY_PATH, json_handler({"error": "database down"}, status=500))
    report = await admin.execute(SEED_TEST, actor=ACTOR)
    assert isinstance(report, TestReport)
    assert report.result.outcome is Outcome.HTTP_ERROR
    assert report.result.status == 500
    assert "http_error · HTTP 500" in render_text(report)
    stats = await admin.execute("/actions stats", actor=ACTOR)
    assert isinstance(stats, StatsReport)
    [row] = stats.rows
    assert (row.action, row.calls, row.successes, row.failures) == (
        "check_inventory",
        1,
        0,
        {"http_error": 1},
    )
    assert row.last_error
    text = render_text(stats)
    assert "http_error 1" in text
    assert row.last_error in text


async def test_stats_before_any_call(admin: Admin) -> None:
    """`stats` with nothing recorded says so instead of printing an empty table."""
    result = await admin.execute("stats", actor=ACTOR)
    assert isinstance(result, StatsReport)
    assert render_text(result) == "No calls recorded yet."


async def test_stats_say_what_they_cover_with_retries_and_failed_messages(
    admin: Admin, store: Store
) -> None:
    """Stats say which window p95 covers, how many extra tries retries made, and how
    customer messages fared (a message given up counts as failed)."""
    retried = ActionResult(
        action="check_inventory", call_id="k", outcome=Outcome.SUCCESS, latency_ms=5, attempts=3
    )
    await store.record_call(retried)
    lost = IncomingMessage(
        platform="slack", conversation="D1", user_id="U1", text="hi", event_id="E1"
    )
    await store.receive(lost, route={}, owner="h:1", lease_seconds=60)
    await store.settle("slack:E1", failed=True)
    admin.call_log_days = 90

    text = render_text(await admin.execute("stats", actor=ACTOR))

    assert "p95 covers the latest calls of the last 90 days" in text
    assert "Extra tries (retries): check_inventory 2." in text
    assert "Customer messages: 0 answered, 1 failed, 0 waiting." in text
