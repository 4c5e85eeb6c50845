"""Slack rendering: Markdown → mrkdwn with escaping that can never ping, and Block Kit for
every `/actions` result that stays within Slack's limits and never shows a secret."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import secret_action

from adapters.slack.format import escape, stream_markdown, to_mrkdwn
from adapters.slack.results import admin_blocks, fallback_text
from bot.actions.models import Parameter, ParameterType
from bot.admin.console import Console, ConsoleRow, Resumed
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
OWN_ANGLES = re.compile(r"<(?!https?://|mailto:|!date\^\d+\^)")
"""A `<` that opens anything but a link or date token this module wrote itself."""


def rows(count: int) -> ActionList:
    return ActionList(
        [
            ActionRow(f"action_{i}", f"Action {i}", "GET", "api.example.com", i % 2 == 0, i)
            for i in range(count)
        ]
    )


def detail(**changes: Any) -> ActionDetail:
    return ActionDetail(
        action=secret_action(**changes),
        active=False,
        changed_by="slack:U42",
        changed_at=WHEN,
        calls=7,
    )


def report_of(body: str, *, outcome: Outcome = Outcome.SUCCESS) -> ActionTestReport:
    result = ActionResult(
        action="check_inventory",
        call_id="c1",
        outcome=outcome,
        latency_ms=123.4,
        status=200 if outcome is Outcome.SUCCESS else 503,
        error=None if outcome is Outcome.SUCCESS else "HTTP 503 <Service Unavailable>",
    )
    return ActionTestReport({"part_name": "screen"}, result, body)


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text string in the blocks, in order."""
    found: list[str] = []
    for block in blocks:
        objects = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        found += [o["text"] for o in objects if o is not None]
    return found


def assert_valid_blocks(blocks: list[dict[str, Any]]) -> None:
    """Shaped as Block Kit expects and within its limits."""
    assert 0 < len(blocks) <= 50
    for block in blocks:
        kind = block["type"]
        assert kind in {"header", "section", "divider", "context"}
        if kind == "header":
            assert set(block) == {"type", "text"}
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
        elif kind == "section":
            assert set(block) <= {"type", "text", "fields", "accessory", "block_id"}
            assert "text" in block or "fields" in block
            assert len(block.get("block_id", "")) <= 255
            if "accessory" in block:
                assert_button(block["accessory"])
            if "text" in block:
                assert_text_object(block["text"], 3000)
            assert len(block.get("fields", [])) <= 10
            for field in block.get("fields", []):
                assert_text_object(field, 2000)
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            for element in block["elements"]:
                assert_text_object(element, 3000)


def assert_button(button: dict[str, Any]) -> None:
    """A button as Block Kit expects: plain-text label of at most 75 characters, an action
    id and a value within their limits, a style Slack knows."""
    assert button["type"] == "button"
    assert button["text"]["type"] == "plain_text"
    assert 0 < len(button["text"]["text"]) <= 75
    assert 0 < len(button["action_id"]) <= 255
    assert 0 < len(button["value"]) <= 2000
    assert button.get("style", "primary") in {"primary", "danger"}


def assert_text_object(obj: dict[str, Any], limit: int) -> None:
    """A text object as Slack expects; mrkdwn never opening a mention or a foreign link
    (plain_text is shown literally, so `<` is harmless there)."""
    assert obj["type"] in {"mrkdwn", "plain_text"}
    allowed = {"type", "text", "emoji"} if obj["type"] == "plain_text" else {"type", "text"}
    assert set(obj) <= allowed
    assert isinstance(obj["text"], str)
    assert 0 < len(obj["text"]) <= limit
    if obj["type"] == "mrkdwn":
        assert not OWN_ANGLES.search(obj["text"]), obj["text"]


# --- Markdown → mrkdwn --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("This is **bold** and __also bold__.", "This is *bold* and *also bold*."),
        ("This is *italic* and _also italic_.", "This is _italic_ and _also italic_."),
        ("~~gone~~ now", "~gone~ now"),
        ("See [the docs](https://example.com/a?b=1).", "See <https://example.com/a?b=1|the docs>."),
        ("Visit <https://example.com>", "Visit <https://example.com>"),
        ("# Your order", "*Your order*"),
        ("### Next **steps** ###", "*Next steps*"),
        ("- first\n* second\n  + nested", "• first\n• second\n  • nested"),
        ("> quoted **text**", "> quoted *text*"),
        ("snake_case_name and 5 * 3 * 2", "snake_case_name and 5 * 3 * 2"),
        ("1. numbered stays", "1. numbered stays"),
        ("Tom & Jerry <3 > all", "Tom &amp; Jerry &lt;3 &gt; all"),
    ],
)
def test_markdown_becomes_mrkdwn(markdown: str, mrkdwn: str) -> None:
    """Each common Markdown construct an LLM writes becomes its Slack equivalent."""
    assert to_mrkdwn(markdown) == mrkdwn


@pytest.mark.parametrize(
    "text",
    [
        "<!channel> hi",
        "<!here|here> and <!everyone>",
        "ping <@U12345> and <#C123|general> and <!subteam^S1>",
        "[click](https://evil.example|<!channel>)",
        "[x](javascript:alert(1)) <https://ok.example|<!here>>",
    ],
)
def test_model_text_never_pings_or_mentions(text: str) -> None:
    """No `<!…>`, `<@…>` or `<#…>` survives: every `<` in the output opens a link we built."""
    converted = to_mrkdwn(text)
    assert "<!" not in converted
    assert "<@" not in converted
    assert "<#" not in converted
    assert not OWN_ANGLES.search(converted)


def test_link_cannot_smuggle_a_second_label() -> None:
    """A `|` in a URL is encoded, so the URL cannot end early and show a different label."""
    assert to_mrkdwn("[ok](https://a.example/x|y)") == "<https://a.example/x%7Cy|ok>"


def test_non_web_link_is_shown_as_text() -> None:
    """Only http(s) and mailto links become links; anything else is shown, not linked."""
    assert to_mrkdwn("[run](javascript:alert)") == "run (javascript:alert)"


def test_code_is_escaped_but_not_formatted() -> None:
    """Inside code spans and fenced blocks nothing is converted, only Slack-escaped; the
    block's info string is dropped because mrkdwn would show it as code."""
    markdown = (
        "Run `a **b** <c>` now.\n"
        "```json\n"
        '{"**key**": "_v_ & <b>", "list": ["- x"]}\n'
        "# not a heading\n"
        "```\n"
        "**after**"
    )
    assert to_mrkdwn(markdown) == (
        "Run `a **b** &lt;c&gt;` now.\n"
        "```\n"
        '{"**key**": "_v_ &amp; &lt;b&gt;", "list": ["- x"]}\n'
        "# not a heading\n"
        "```\n"
        "*after*"
    )


def test_unclosed_code_block_is_closed() -> None:
    """A block the model left open is closed rather than swallowing the message's end."""
    assert to_mrkdwn("```\nx = 1") == "```\nx = 1\n```"


# --- Block Kit ----------------------------------------------------------------------------


def test_action_list_has_one_section_per_action() -> None:
    """A header, then each action's name, endpoint, state and calls."""
    blocks = admin_blocks(rows(3))
    assert_valid_blocks(blocks)
    assert blocks[0]["text"]["text"] == "Custom Actions"
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section"]
    assert blocks[1]["text"]["text"] == (
        "*Action 0*  `action_0`\nGET api.example.com · :large_green_circle: active · 0 calls"
    )
    assert blocks[2]["text"]["text"].endswith(":white_circle: inactive · 1 call")


def test_empty_action_list_says_so() -> None:
    """No actions: one section that says so, rather than an empty message."""
    blocks = admin_blocks(ActionList([]))
    assert_valid_blocks(blocks)
    assert "No actions are defined" in texts(blocks)[0]


@pytest.mark.parametrize("count", [45, 46, 100, 5000])
def test_long_action_list_fits_and_keeps_every_action(count: int) -> None:
    """Up to 45 actions get sections; more become a table split over sections; beyond what
    50 blocks hold, the list says how much more there is."""
    blocks = admin_blocks(rows(count))
    assert_valid_blocks(blocks)
    rendered = "\n".join(texts(blocks))
    if count <= 45:
        assert len(blocks) == count + 1
    else:
        assert all(t.startswith("```\n") for t in texts(blocks)[1:-1])
    if len(blocks) < 50:
        assert all(f"action_{i}" in rendered for i in range(count))
    else:
        assert "too long for one Slack message" in texts(blocks)[-1]


def test_admin_strings_are_escaped_in_blocks() -> None:
    """An admin-written name or description cannot ping a channel either."""
    listing = ActionList([ActionRow("x", "<!channel> & co", "GET", "h.example", True, 0)])
    shown = admin_blocks(detail(display_name="<!here>", description="Use <!channel> & stuff"))
    for blocks in (admin_blocks(listing), shown):
        assert_valid_blocks(blocks)
        assert "<!channel>" not in json.dumps(blocks)
        assert "<!here>" not in json.dumps([b for b in blocks if b["type"] != "header"])
    assert "*&lt;!channel&gt; &amp; co*" in texts(admin_blocks(listing))[1]


def test_action_detail_shows_the_definition_with_secrets_masked() -> None:
    """`show`: display name, fields, description, masked headers, parameters — never the
    resolved secret."""
    blocks = admin_blocks(detail())
    assert_valid_blocks(blocks)
    dumped = json.dumps(blocks)
    assert "sekrit" not in dumped
    assert "sekrit" not in fallback_text(detail())
    assert blocks[0]["text"]["text"] == "Check Inventory"
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[0] == "*Name*\n`check_inventory`"
    assert fields[1].startswith("*State*\n:white_circle: inactive\nset by slack:U42, ")
    assert "<!date^1717245000^" in fields[1]
    assert fields[2] == "*Endpoint*\n`GET https://api.yourshop.com/inventory/check`"
    assert fields[3:] == ["*Timeout*\n5 s", "*Concurrency*\nat most 10 at once", "*Calls*\n7"]
    rendered = "\n".join(texts(blocks))
    assert "Check if a part is in stock." in rendered
    assert "`Authorization`: ${TOKEN} (from the environment)" in rendered
    assert "• `part_name` (string, required) — The part, e.g. 'screen'" in rendered
    assert "• `express` (boolean, optional) — Express only" in rendered


def test_many_parameters_are_spread_over_sections() -> None:
    """Long parameter lists stay readable and within the section text limit."""
    parameters = [
        Parameter(name=f"p{i}", type=ParameterType.NUMBER, description="d" * 400) for i in range(30)
    ]
    blocks = admin_blocks(detail(parameters=parameters))
    assert_valid_blocks(blocks)
    rendered = "\n".join(texts(blocks))
    assert all(f"`p{i}`" in rendered for i in range(30))


@pytest.mark.parametrize(("active", "changed"), [(True, True), (False, True), (True, False)])
def test_toggled_says_the_new_state(active: bool, changed: bool) -> None:
    """Enable and disable confirm the state, and say when nothing changed."""
    blocks = admin_blocks(Toggled("check_inventory", active, changed))
    assert_valid_blocks(blocks)
    state = "enabled" if active else "disabled"
    already = "" if changed else " (it already was)"
    assert texts(blocks) == [f":white_check_mark: `check_inventory` is now {state}{already}."]


def test_stats_show_counts_failures_latency_and_last_error() -> None:
    """One section per action with its numbers; a long last error is cut."""
    stats = ActionStats(
        action="check_inventory",
        calls=12,
        successes=9,
        failures={"timeout": 1, "http_error": 2},
        avg_latency_ms=120.4,
        p95_latency_ms=310.0,
        last_call_at=WHEN,
        last_error="HTTP 500 <html>" + "x" * 5000,
        last_error_at=WHEN,
    )
    blocks = admin_blocks(StatsReport([stats, ActionStats(action="other")], None))
    assert_valid_blocks(blocks)
    assert blocks[0]["text"]["text"] == "Action stats"
    assert blocks[1]["text"]["text"] == "`check_inventory`"
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields[:4] == [
        "*Calls*\n12",
        "*Successes*\n9",
        "*Failures*\nhttp_error 2, timeout 1",
        "*Latency*\navg 120 ms · p95 310 ms",
    ]
    assert fields[5].startswith("*Last error* (<!date^")
    assert "HTTP 500 &lt;html&gt;" in fields[5]
    assert len(fields[5]) < 400
    assert fields[5].endswith("…")
    assert [f["text"] for f in blocks[2]["fields"]][2] == "*Failures*\nnone"


def test_stats_without_calls_say_so() -> None:
    """No recorded calls: one sentence, not a table of zeros."""
    blocks = admin_blocks(StatsReport([ActionStats(action="a")], None))
    assert_valid_blocks(blocks)
    assert texts(blocks) == ["No calls recorded yet."]


def test_stats_for_many_actions_fit() -> None:
    """Stats for 100 actions fall back to a table that fits Slack's limits."""
    report = StatsReport([ActionStats(action=f"a{i}", calls=i + 1) for i in range(100)], None)
    blocks = admin_blocks(report)
    assert_valid_blocks(blocks)
    rendered = "\n".join(texts(blocks))
    assert all(f"a{i} " in rendered for i in range(100))


def test_test_report_shows_outcome_and_body() -> None:
    """`test`: outcome, status, latency, arguments, and the body as code."""
    blocks = admin_blocks(report_of('{"in_stock":true,"note":"<b>"}'))
    assert_valid_blocks(blocks)
    first, body = texts(blocks)
    assert first.startswith(":white_check_mark: `check_inventory` · *success* · HTTP 200 · 123 ms")
    assert "*Arguments:* `part_name=screen`" in first
    assert body == '```\n{"in_stock":true,"note":"&lt;b&gt;"}\n```'


def test_failed_test_report_warns_and_shows_the_error() -> None:
    """A failed test is flagged and its (escaped) error shown; an empty body is noted."""
    blocks = admin_blocks(report_of("", outcome=Outcome.HTTP_ERROR))
    assert_valid_blocks(blocks)
    first = texts(blocks)[0]
    assert first.startswith(":warning: `check_inventory` · *http_error* · HTTP 503")
    assert "*Error:* HTTP 503 &lt;Service Unavailable&gt;" in first
    assert blocks[-1]["type"] == "context"


def test_huge_test_body_is_cut_to_fit() -> None:
    """A 50 KB body (full of characters that escape longer) fits one section, marked as cut."""
    body = json.dumps({"rows": ["<&>" * 20 for _ in range(900)]})
    assert len(body) > 50_000
    blocks = admin_blocks(report_of(body))
    assert_valid_blocks(blocks)
    code = texts(blocks)[1]
    assert code.startswith("```\n{")
    assert code.endswith("…\n```")
    assert re.search(r"&(?!amp;|lt;|gt;)", code) is None


def test_code_fence_in_body_cannot_end_the_block() -> None:
    """A body containing ``` stays inside its code block."""
    code = texts(admin_blocks(report_of("a```b")))[1]
    assert code.count("```") == 2


def test_usage_notice_is_a_code_block() -> None:
    """Help text reads as a code block; an input error before it starts with a warning."""
    help_blocks = admin_blocks(Notice(USAGE))
    assert_valid_blocks(help_blocks)
    assert texts(help_blocks) == [f"```\n{escape(USAGE)}\n```"]
    error = admin_blocks(Notice(f"Unknown subcommand 'foo'.\n\n{USAGE}", error=True))
    assert_valid_blocks(error)
    assert texts(error)[0] == ":warning: Unknown subcommand 'foo'."
    assert texts(error)[1].startswith("```\n/actions list")


def test_error_notice_starts_with_a_warning() -> None:
    """A refused command says why, flagged, with its text escaped."""
    blocks = admin_blocks(Notice("No action named 'x<y>'.", error=True))
    assert_valid_blocks(blocks)
    assert texts(blocks) == [":warning: No action named 'x&lt;y&gt;'."]


@pytest.mark.parametrize(
    "result",
    [
        rows(500),
        detail(description="<!channel> " * 1000),
        report_of("<x>" * 20000),
        Notice("<!here>" * 2000, error=True),
    ],
)
def test_fallback_text_is_escaped_and_bounded(result: AdminResult) -> None:
    """The message's fallback text is the plain rendering, escaped and at most 3000 chars."""
    text = fallback_text(result)
    assert 0 < len(text) <= 3000
    assert "<" not in text
    assert_valid_blocks(admin_blocks(result))


@pytest.mark.parametrize(
    "text",
    ["<!here> <!channel>", "hi <@U123>", "see <#C1>", "<https://evil.example|your bank>"],
)
def test_streamed_markdown_never_pings_or_disguises_links(text: str) -> None:
    """Streamed answers are Markdown, not mrkdwn, but a `<` that could open a Slack control
    sequence is broken all the same; plain autolinks and Markdown links stay."""
    safe = stream_markdown(text)
    assert re.search(r"<[!@#]", safe) is None
    assert "<https://evil.example|" not in safe
    assert safe.replace("\u200b", "") == text
    assert stream_markdown(
        "**4** left, see <https://shop.example/x> or [the shop](https://s.x)"
    ) == ("**4** left, see <https://shop.example/x> or [the shop](https://s.x)")


def test_console_rows_have_a_button_each_and_escape_names() -> None:
    """The console's rows show the 24-hour numbers and a button whose value names the
    action; display names from the actions file are escaped."""
    console = Console(
        [
            ConsoleRow("check_inventory", "Stock <!here>", True, 12, 11 / 12, 410.0),
            ConsoleRow("loyalty", "Loyalty", False, 0, None, None),
        ],
        notice="loyalty is now disabled.",
    )

    blocks = admin_blocks(console)

    assert_valid_blocks(blocks)
    rows = [b for b in blocks if "accessory" in b]
    assert [b["accessory"]["value"] for b in rows] == ["disable:check_inventory", "enable:loyalty"]
    assert "Stock &lt;!here&gt;" in rows[0]["text"]["text"]
    assert "12 calls · success 92% · p95 410 ms" in rows[0]["text"]["text"]
    assert "0 calls · success - · p95 -" in rows[1]["text"]["text"]
    assert "loyalty is now disabled." in json.dumps(blocks)
    assert "<" not in fallback_text(console)


def test_stats_of_one_action_add_the_sparkline_and_outcomes() -> None:
    """`/actions stats NAME` shows the 24 hours as a sparkline in a code span and the
    outcome breakdown; `resume` says where the bot answers again."""
    recent = RecentActivity(
        action="a", hourly=[0] * 22 + [1, 4], outcomes={"success": 4, "timeout": 1}
    )
    stats = ActionStats(action="a", calls=5, successes=4, failures={"timeout": 1})

    blocks = admin_blocks(StatsReport([stats], "a", recent=recent))
    resumed = admin_blocks(Resumed("slack:C1", ["slack:C1:1.0"]))

    assert_valid_blocks(blocks)
    text = json.dumps(blocks, ensure_ascii=False)
    assert f"`{'▁' * 22}▂▇`" in text
    assert "success 4, timeout 1" in text
    assert "slack:C1:1.0" in texts(resumed)[0]
