"""Discord rendering: `/actions` results as embeds within every Discord limit, never showing a
secret, never pinging, and with endpoint text unable to break out of a code block."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
from conftest import SECRET, secret_action

from adapters.discord.console import console_message
from adapters.discord.format import admin_reply
from adapters.discord.markdown import to_discord_markdown
from bot.actions.models import Parameter, ParameterType
from bot.admin.console import Console, ConsoleRow, sparkline
from bot.admin.operations import (
    USAGE,
    ActionDetail,
    ActionList,
    ActionRow,
    AdminResult,
    Notice,
    StatsReport,
    Toggled,
)
from bot.admin.operations import TestReport as ActionTestReport  # a Test* name would be collected
from bot.store import ActionStats, RecentActivity
from bot.types import ActionResult, Outcome

WHEN = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
STAMP = f"<t:{int(WHEN.timestamp())}:f>"


def detail(**changes: Any) -> ActionDetail:
    return ActionDetail(
        action=secret_action(**changes),
        active=False,
        changed_by="discord:42",
        changed_at=WHEN,
        calls=7,
    )


def listing(count: int) -> ActionList:
    return ActionList(
        [
            ActionRow(f"action_{i}", f"Action {i}", "GET", "api.example.com", i % 2 == 0, i)
            for i in range(count)
        ]
    )


def stats(name: str, **changes: Any) -> ActionStats:
    fields: dict[str, Any] = {
        "action": name,
        "calls": 12,
        "successes": 9,
        "failures": {"http_error": 2, "timeout": 1},
        "avg_latency_ms": 120.4,
        "p95_latency_ms": 310.0,
        "last_call_at": WHEN,
        "last_error": "HTTP 503 from api.yourshop.com",
        "last_error_at": WHEN,
    }
    return ActionStats(**(fields | changes))


def report_of(
    body: str, *, outcome: Outcome = Outcome.SUCCESS, error: str | None = None
) -> ActionTestReport:
    result = ActionResult(
        action="check_inventory",
        call_id="c1",
        outcome=outcome,
        latency_ms=123.4,
        status=200 if outcome is Outcome.SUCCESS else 503,
        text=body or None,
        error=error,
    )
    return ActionTestReport({"part_name": "screen"}, result, body)


def discord_length(embeds: list[discord.Embed]) -> int:
    """Characters as Discord counts them: title, description, field names and values, footer
    text and author name, over every embed of the message."""
    total = 0
    for data in (e.to_dict() for e in embeds):
        total += len(data.get("title", "")) + len(data.get("description", ""))
        total += sum(len(f["name"]) + len(f["value"]) for f in data.get("fields", []))
        total += len(data.get("footer", {}).get("text", ""))
        total += len(data.get("author", {}).get("name", ""))
    return total


def assert_within_limits(content: str | None, embeds: list[discord.Embed]) -> None:
    """Every limit Discord enforces on an interaction reply's content and embeds."""
    assert content is not None or embeds
    assert content is None or 0 < len(content) <= 2000
    assert len(embeds) <= 10
    assert discord_length(embeds) <= 6000
    for data in (e.to_dict() for e in embeds):
        assert len(data.get("title", "")) <= 256
        assert len(data.get("description", "")) <= 4096
        assert len(data.get("footer", {}).get("text", "")) <= 2048
        assert len(data.get("fields", [])) <= 25
        for f in data.get("fields", []):
            assert 0 < len(f["name"]) <= 256
            assert 0 < len(f["value"]) <= 1024
    for text in [*texts_of(embeds), content or ""]:
        assert text.count("```") % 2 == 0, "every code block is closed"


def texts_of(embeds: list[discord.Embed]) -> list[str]:
    """Every text in the embeds: titles, descriptions, field names and values, footers."""
    found: list[str] = []
    for data in (e.to_dict() for e in embeds):
        found += [data.get("title", ""), data.get("description", "")]
        found += [text for f in data.get("fields", []) for text in (f["name"], f["value"])]
        found.append(data.get("footer", {}).get("text", ""))
    return [t for t in found if t]


def rendered(result: AdminResult) -> tuple[str | None, list[discord.Embed], str]:
    """The reply, checked against the limits, and everything in it as one string."""
    content, embeds = admin_reply(result)
    assert_within_limits(content, embeds)
    dump = json.dumps([e.to_dict() for e in embeds], ensure_ascii=False) + (content or "")
    return content, embeds, dump


def test_list_has_one_field_per_action_with_state_calls_and_origin() -> None:
    """A short list is one "Custom Actions" embed with a field per action, saying whether
    it comes from the actions file or was made in chat."""
    made = ActionRow("action_2", "Action 2", "GET", "api.example.com", True, 2, origin="chat")
    content, embeds, _ = rendered(ActionList([*listing(2).rows, made]))
    assert content is None
    assert [e.title for e in embeds] == ["Custom Actions"]
    fields = embeds[0].fields
    assert [f.name for f in fields] == [
        "Action 0 (action_0)",
        "Action 1 (action_1)",
        "Action 2 (action_2)",
    ]
    assert fields[0].value == "GET api.example.com · 🟢 active · 0 calls · actions file"
    assert fields[1].value == "GET api.example.com · ⚪ inactive · 1 call · actions file"
    assert fields[2].value == "GET api.example.com · 🟢 active · 2 calls · made in chat"


def test_list_of_60_actions_splits_across_embeds() -> None:
    """More than 25 actions spread over several embeds, each within the field limit."""
    _, embeds, dump = rendered(listing(60))
    assert len(embeds) == 3
    assert sum(len(e.fields) for e in embeds) == 60
    assert "action_59" in dump


def test_list_of_100_actions_falls_back_to_a_table_with_a_note() -> None:
    """Past what embeds can hold, the list is a code-block table cut at a row, with a note."""
    _, embeds, _ = rendered(listing(100))
    (embed,) = embeds
    description = embed.description or ""
    assert description.startswith("```\nNAME")
    shown = len(re.findall(r"^action_\d+ ", description, re.MULTILINE))
    assert 0 < shown < 100
    assert f"\n```\n…and {100 - shown} more. `actionbot actions list`" in description


def test_empty_list_says_how_to_add_actions() -> None:
    """No actions: a sentence, not an empty embed."""
    _, embeds, _ = rendered(ActionList([]))
    assert "actions.example.toml" in (embeds[0].description or "")


def test_detail_masks_the_secret_header() -> None:
    """`show` names the header and its variable but never the resolved secret."""
    _, embeds, dump = rendered(detail())
    assert SECRET not in dump
    assert "sekrit" not in dump
    values = {f.name: f.value for f in embeds[0].fields}
    assert values["Headers"] == "`Authorization`: ${TOKEN} (from the environment)"


def test_detail_masks_a_literal_header_value() -> None:
    """A literal secret written in the file is hidden too."""
    _, _, dump = rendered(detail(headers={"X-Key": "literal-sekrit"}, header_values={}))
    assert "literal-sekrit" not in dump
    assert "•••• (set in the file)" in dump


def test_detail_shows_the_definition() -> None:
    """Title, AI description, endpoint, state with who and when, timeout, calls, parameters."""
    _, embeds, _ = rendered(detail())
    embed = embeds[0]
    values = {f.name: f.value or "" for f in embed.fields}
    assert embed.title == "Check Inventory"
    assert embed.description == secret_action().description
    assert values["Name"] == "`check_inventory`"
    assert values["Endpoint"] == "`GET https://api.yourshop.com/inventory/check`"
    assert values["State"] == f"⚪ inactive\nset by discord:42, {STAMP}"
    assert values["Timeout"] == "5 s"
    assert values["Calls"] == "7"
    assert "• `part_name` (string, required) — The part, e.g. 'screen'" in values["Parameters"]
    assert embed.colour == discord.Colour.light_grey()


def test_detail_with_2000_character_descriptions_stays_within_limits() -> None:
    """Long descriptions fit: the AI description whole, parameters up to a budget and a count."""
    long = "word " * 400
    parameters = [
        Parameter(name=f"p{i}", type=ParameterType.STRING, description=long) for i in range(20)
    ]
    _, embeds, dump = rendered(
        detail(display_name="D" * 300, description=long, parameters=parameters)
    )
    assert SECRET not in dump
    assert embeds[0].description == long
    assert embeds[0].title == "D" * 255 + "…"
    assert "…and 12 more (see the actions file)" in dump


def test_limits_hold_for_oversized_everything() -> None:
    """Every result stays within Discord's limits however long the text in it."""
    huge = "@everyone ```" + "z" * 9000
    results: list[AdminResult] = [
        ActionList(
            [ActionRow(f"a{i}", "N" * 300, "POST", "h" * 250, True, 10**9) for i in range(100)]
        ),
        detail(description="d" * 4000, url="https://example.com/" + "p" * 5000),
        StatsReport(
            [stats(f"a{i}", last_error=huge, failures={"x" * 500: 1}) for i in range(60)], None
        ),
        StatsReport([stats("a", last_error=huge)], "a"),
        ActionTestReport(
            {f"k{i}": "v" * 500 for i in range(30)},
            report_of("", outcome=Outcome.ERROR, error=huge).result,
            "b" * 50_000,
        ),
        Notice(huge + USAGE, True),
        Toggled("n" * 3000, True, changed=True),
    ]
    for result in results:
        _, _, dump = rendered(result)
        assert "@everyone" not in dump


def test_stats_fields_use_discord_timestamps() -> None:
    """Each action's stats: calls, ok, failures by outcome, latency, last call and error."""
    _, embeds, _ = rendered(StatsReport([stats("check_inventory")], None))
    embed = embeds[0]
    assert embed.title == "Action stats"
    (stat,) = embed.fields
    assert stat.name == "check_inventory"
    assert stat.value is not None
    assert "12 calls · 9 ok · failed: `http_error` 2, `timeout` 1" in stat.value
    assert "avg 120 ms · p95 310 ms" in stat.value
    assert f"last call {STAMP}" in stat.value
    assert f"last error {STAMP}: HTTP 503" in stat.value


def test_stats_for_60_actions_stays_within_limits() -> None:
    """Sixty actions with long last errors still fit, as a table with UTC times."""
    rows = [stats(f"action_{i:02d}", last_error="x" * 300) for i in range(60)]
    _, _, dump = rendered(StatsReport(rows, None))
    assert "action_00" in dump
    assert "LAST CALL (UTC)" in dump


def test_stats_without_calls_says_so() -> None:
    """No calls at all: a sentence, not a table of zeros."""
    _, embeds, _ = rendered(StatsReport([ActionStats(action="a")], None))
    assert embeds[0].description == "No calls recorded yet."


def test_successful_test_is_green_with_body_in_a_code_block() -> None:
    """A successful test: green, status and latency fields, the body as a code block."""
    _, embeds, _ = rendered(report_of('{"in_stock": true}'))
    embed = embeds[0]
    assert embed.colour == discord.Colour.green()
    assert embed.title == "✅ check_inventory: success"
    values = {f.name: f.value for f in embed.fields}
    assert values["Status"] == "HTTP 200"
    assert values["Latency"] == "123 ms"
    assert embed.description == '```\n{"in_stock": true}\n```'


def test_failed_test_is_orange_with_the_error() -> None:
    """A failed test: orange, the outcome in the title and the error as a field."""
    error = "HTTP 503 *Service Unavailable*"
    _, embeds, _ = rendered(report_of("", outcome=Outcome.HTTP_ERROR, error=error))
    embed = embeds[0]
    assert embed.colour == discord.Colour.orange()
    assert embed.title == "⚠️ check_inventory: http_error"
    values = {f.name: f.value for f in embed.fields}
    assert values["Error"] == r"HTTP 503 \*Service Unavailable\*"
    assert embed.description == "*The response had no body.*"


def test_50kb_body_is_cut_to_fit() -> None:
    """A huge body fits the description limit, stays a closed code block, and says it is cut."""
    _, embeds, _ = rendered(report_of("b" * 50_000))
    description = embeds[0].description or ""
    assert len(description) <= 4096
    assert description.startswith("```\nbbb")
    assert description.endswith("…\n```")


@pytest.mark.parametrize("fence", ["```", "````", "\n```\n", "``` ```"])
def test_body_cannot_break_out_of_its_code_block(fence: str) -> None:
    """Backticks in an endpoint's body never close the code block early."""
    body = f"start{fence}**bold** @everyone{fence}end"
    _, embeds, _ = rendered(report_of(body))
    description = embeds[0].description or ""
    inner = description.removeprefix("```\n").removesuffix("\n```")
    assert "``" not in inner
    assert inner.replace("\u200b", "") == body


def test_cut_body_cannot_break_out_either() -> None:
    """A body full of backticks, cut to fit, still has exactly one opening and closing fence."""
    _, embeds, _ = rendered(report_of("`" * 50_000))
    assert (embeds[0].description or "").count("```") == 2


def test_toggled_is_plain_content() -> None:
    """enable/disable answer with a line of content and no embed."""
    content, embeds, _ = rendered(Toggled("check_inventory", True, changed=True))
    assert embeds == []
    assert content == "✅ `check_inventory` is now enabled."
    content, _, _ = rendered(Toggled("check_inventory", False, changed=False))
    assert content == "✅ `check_inventory` is now disabled (it already was)."


def test_error_notice_has_a_warning_and_the_usage_in_a_code_block() -> None:
    """A refused command: ⚠️, the reason, then the usage as a code block."""
    content, embeds, _ = rendered(Notice(f"Unknown subcommand 'frob'.\n\n{USAGE}", True))
    assert embeds == []
    assert content == f"⚠️ Unknown subcommand 'frob'.\n\n```\n{USAGE}\n```"


def test_notice_escapes_mass_mentions_and_fits() -> None:
    """A notice quoting admin input cannot ping @everyone and is cut to 2000 characters."""
    content, _, _ = rendered(Notice("No action named '@everyone @here'. " + "x" * 5000, True))
    assert content is not None
    assert "@everyone" not in content
    assert "@here" not in content
    assert "@\u200beveryone" in content
    assert content.endswith("…")


def test_mentions_in_embeds_are_escaped() -> None:
    """Admin-written names and endpoint errors cannot form a mention inside embeds either."""
    row = ActionRow("a", "@everyone deal", "GET", "h", True, 1)
    _, _, dump = rendered(ActionList([row]))
    _, _, error_dump = rendered(report_of("", outcome=Outcome.ERROR, error="ping @here"))
    assert "@everyone" not in dump
    assert "@here" not in error_dump


def test_to_discord_markdown_keeps_markdown_and_escapes_mass_mentions() -> None:
    """The model's Markdown passes through; only mentions are neutralised."""
    text = "**Bold**, `code` and [a link](https://example.com)\n```json\n{}\n```"
    assert to_discord_markdown(text) == text
    assert to_discord_markdown("hey @everyone and @here") == "hey @\u200beveryone and @\u200bhere"


def console_of(count: int, *, notice: str = "") -> Console:
    rows = [
        ConsoleRow(f"action_{i}", f"Action {i} " + "x" * 60, i % 3 != 0, i, 0.5, 120.0)
        for i in range(count)
    ]
    return Console(rows, notice)


@pytest.mark.parametrize("count", [1, 25, 26, 300])
def test_console_fits_discord_with_a_control_per_action(count: int) -> None:
    """Any number of actions renders within Discord's limits: a button each up to 25, else
    a Disable and an Enable select of at most 25 options; the last click's notice shows."""
    console = console_of(count, notice="action_1 is now disabled.")
    _, embeds, _ = rendered(console)  # checked against every limit
    shown, view = console_message(console)

    assert [e.to_dict() for e in shown] == [e.to_dict() for e in embeds]
    assert embeds[0].description == "action_1 is now disabled."
    controls = [item.to_component_dict() for item in view.children]
    if count <= 25:
        assert [c["custom_id"] for c in controls] == [
            f"actionbot:console:{'disable' if i % 3 else 'enable'}:action_{i}" for i in range(count)
        ]
        assert all(len(c["label"]) <= 80 for c in controls)
    else:
        assert [c["custom_id"] for c in controls] == [
            "actionbot:console-pick:disable",
            "actionbot:console-pick:enable",
        ]
        assert all(1 <= len(c["options"]) <= 25 for c in controls)


def test_stats_of_one_action_shows_its_last_24_hours() -> None:
    """`/actions stats NAME` adds the sparkline of calls per hour, the peak and outcomes."""
    hourly = [0] * 20 + [1, 0, 4, 2]
    recent = RecentActivity(
        action="check_inventory", hourly=hourly, outcomes={"success": 6, "timeout": 1}
    )
    _, embeds, _ = rendered(
        StatsReport([stats("check_inventory")], "check_inventory", {}, 0, recent)
    )

    fields = {f.name: f.value for f in embeds[0].fields}
    assert fields["Last 24 h, calls per hour (oldest first)"] == (
        f"`{sparkline(hourly)}` peak 4/h\noutcomes: `success` 6 · `timeout` 1"
    )
