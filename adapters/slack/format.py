"""Slack rendering: Markdown → mrkdwn, and Block Kit for `/actions` results.

Plain dicts only (no slack_bolt import), so the rendering is testable on its own. Slack treats
`&`, `<` and `>` as control characters everywhere in mrkdwn, code included, so every piece of
text from the model, an admin or an endpoint is escaped: model text can then never form a
`<!channel>` ping, a `<@U…>` mention or a disguised link. The only `<…>` this module writes
are links it built itself and Slack date tokens for timestamps.

Block Kit limits respected: at most 50 blocks, section text at most 3000 characters, at most
10 fields of at most 2000 characters, header text plain_text of at most 150 characters.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.admin.operations import (
    USAGE,
    ActionDetail,
    ActionList,
    AdminResult,
    Notice,
    StatsReport,
    TestReport,
    Toggled,
    render_text,
)
from bot.chunks import split_message
from bot.store import ActionStats
from bot.types import Confirmation

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_LIST_SECTIONS = 45
"""Above this many actions `/actions list` is one table, not one section per action."""
MAX_ERROR_CHARS = 300
"""A last error longer than this is cut in the stats: the admin needs its gist, not a page."""

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_FENCE = "```"
_CODE_ROOM = MAX_SECTION_TEXT - 2 * len(_FENCE) - 2
"""Characters of code that fit in one section between its fences."""


def escape(text: str) -> str:
    """`text` with Slack's three control characters as the entities Slack expects."""
    return text.translate(_ESCAPES)


# --- Markdown → mrkdwn --------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^ {0,3}>\s?(.*)$")
_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?P<code_text>.+?)(?P=ticks))"
    r"|!?\[(?P<label>[^\]\n]+)\]\(\s*<?(?P<url>[^)\s<>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)"
    r"|<(?P<autolink>(?:https?://|mailto:)[^\s<>]+)>"
    r"|\*\*(?P<bold>\S(?:.*?\S)?)\*\*"
    r"|(?<!\w)__(?P<bold2>\S(?:.*?\S)?)__(?!\w)"
    r"|~~(?P<strike>\S(?:.*?\S)?)~~"
    r"|\*(?P<italic>[^\s*](?:[^*]*?[^\s*])?)\*"
    r"|(?<!\w)_(?P<italic2>[^\s_](?:[^_]*?[^\s_])?)_(?!\w)"
)
_LINK_SCHEMES = ("https://", "http://", "mailto:")


def to_mrkdwn(markdown: str) -> str:
    """Standard Markdown (what LLMs write) as Slack mrkdwn, with all text escaped."""
    out: list[str] = []
    in_code = False
    for line in markdown.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if not in_code and stripped.startswith(_FENCE) and "`" not in stripped.lstrip("`"):
            in_code = True
            out.append(_FENCE)  # mrkdwn has no info string: "json" would show as code
        elif in_code and stripped.startswith(_FENCE) and not stripped.strip("`"):
            in_code = False
            out.append(_FENCE)
        else:
            out.append(escape(line) if in_code else _block_line(line))
    if in_code:
        out.append(_FENCE)
    return "\n".join(out)


def _block_line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    if quote := _QUOTE.match(line):
        # A bare ">" cannot open a control sequence (only "<" can): Slack's quote marker.
        return f"> {_block_line(quote.group(1))}"
    if heading := _HEADING.match(line):
        title = heading.group(1).replace("**", "").replace("__", "").strip()
        return f"*{_inline(title)}*" if title else ""
    if bullet := _BULLET.match(line):
        return f"{bullet.group(1)}• {_inline(bullet.group(2))}"
    return _inline(line)


def _inline(text: str) -> str:
    """Inline Markdown → mrkdwn; everything between the constructs is escaped as is."""
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[position : match.start()]))
        out.append(_convert(match))
        position = match.end()
    out.append(escape(text[position:]))
    return "".join(out)


def _convert(match: re.Match[str]) -> str:
    groups = match.groupdict()
    if groups["code"] is not None:
        return f"`{escape(groups['code_text'])}`"
    if groups["url"] is not None:
        return _link(groups["url"], groups["label"])
    if groups["autolink"] is not None:
        return _link(groups["autolink"], None)
    for name, mark in (("bold", "*"), ("bold2", "*"), ("strike", "~")):
        if groups[name] is not None:
            return f"{mark}{_inline(groups[name])}{mark}"
    inner = groups["italic"] if groups["italic"] is not None else groups["italic2"]
    return f"_{_inline(inner)}_"


def _link(url: str, label: str | None) -> str:
    if not url.lower().startswith(_LINK_SCHEMES):
        return escape(f"{label} ({url})" if label else url)
    # A "|" would end the URL early and let the rest pose as the link's label.
    target = escape(url.replace("|", "%7C"))
    return f"<{target}|{escape(label)}>" if label else f"<{target}>"


# --- Block Kit for /actions results ----------------------------------------------------------


def fallback_text(result: AdminResult) -> str:
    """The message's `text` (notifications, screen readers): the plain rendering, escaped."""
    return _clip(escape(render_text(result)), MAX_SECTION_TEXT)


def admin_blocks(result: AdminResult) -> list[Block]:
    """Block Kit blocks for one `/actions` result, within Slack's limits."""
    match result:
        case ActionList():
            blocks = _list_blocks(result)
        case ActionDetail():
            blocks = _detail_blocks(result)
        case Toggled():
            state = "enabled" if result.active else "disabled"
            already = "" if result.changed else " (it already was)"
            blocks = [
                _section(f":white_check_mark: `{escape(result.name)}` is now {state}{already}.")
            ]
        case StatsReport():
            blocks = _stats_blocks(result)
        case TestReport():
            blocks = _test_blocks(result)
        case Notice():
            blocks = _notice_blocks(result)
    return _cap(blocks)


def _list_blocks(result: ActionList) -> list[Block]:
    if not result.rows:
        return [_section(escape(render_text(result)))]
    if len(result.rows) > MAX_LIST_SECTIONS:
        return [_header("Custom Actions"), *_code_sections(render_text(result))]
    blocks = [_header("Custom Actions")]
    for row in result.rows:
        state = ":large_green_circle: active" if row.active else ":white_circle: inactive"
        calls = f"{row.calls} call" + ("" if row.calls == 1 else "s")
        blocks.append(
            _section(
                f"*{escape(row.display_name)}*  `{escape(row.name)}`\n"
                f"{escape(row.method)} {escape(row.host)} · {state} · {calls}"
            )
        )
    return blocks


def _detail_blocks(detail: ActionDetail) -> list[Block]:
    action = detail.action
    state = ":large_green_circle: active" if detail.active else ":white_circle: inactive"
    if detail.changed_by:
        state += f"\nset by {escape(detail.changed_by)}, {_when(detail.changed_at)}"
    timeout = f"{action.timeout:g} s" if action.timeout else "default"
    fields = [
        f"*Name*\n`{escape(action.name)}`",
        f"*State*\n{state}",
        f"*Endpoint*\n`{escape(action.method.value)} {escape(action.url)}`",
        f"*Timeout*\n{timeout}",
        f"*Concurrency*\nat most {action.max_concurrency} at once",
        f"*Calls*\n{detail.calls}",
    ]
    headers = [f"`{escape(k)}`: {escape(v)}" for k, v in action.masked_headers().items()]
    parameters = [
        f"• `{escape(p.name)}` ({p.kind}) — {escape(p.description)}" for p in action.parameters
    ]
    return [
        _header(action.display_name),
        _section(escape(action.description)),
        _fields(fields),
        *_line_sections("*Headers*", headers or ["none"]),
        *_line_sections("*Parameters*", parameters or ["none"]),
    ]


def _stats_blocks(report: StatsReport) -> list[Block]:
    rows = report.rows
    if not rows or (report.name is None and not any(r.calls for r in rows)):
        return [_section("No calls recorded yet.")]
    if len(rows) > MAX_LIST_SECTIONS:
        return [_header("Action stats"), *_code_sections(render_text(report))]
    notes = _context(escape(" ".join(report.notes())))
    return [_header("Action stats"), *(_stats_section(s) for s in rows), notes]


def _stats_section(stats: ActionStats) -> Block:
    failures = ", ".join(f"{k} {v}" for k, v in sorted(stats.failures.items())) or "none"
    fields = [
        f"*Calls*\n{stats.calls}",
        f"*Successes*\n{stats.successes}",
        f"*Failures*\n{escape(failures)}",
        f"*Latency*\navg {_ms(stats.avg_latency_ms)} · p95 {_ms(stats.p95_latency_ms)}",
        f"*Last call*\n{_when(stats.last_call_at)}",
    ]
    if stats.last_error:
        error = escape(_clip(stats.last_error, MAX_ERROR_CHARS))
        fields.append(f"*Last error* ({_when(stats.last_error_at)})\n{error}")
    return _fields(fields, text=f"`{escape(stats.action)}`")


def _test_blocks(report: TestReport) -> list[Block]:
    result = report.result
    emoji = ":white_check_mark:" if result.ok else ":warning:"
    status = f"HTTP {result.status}" if result.status is not None else "no HTTP status"
    lines = [
        f"{emoji} `{escape(result.action)}` · *{result.outcome.value}* · {status}"
        f" · {result.latency_ms:.0f} ms"
    ]
    if report.arguments:
        pairs = ", ".join(f"{k}={v}" for k, v in report.arguments.items())
        lines.append(f"*Arguments:* `{_clip(escape(pairs), 1000)}`")
    if result.error:
        lines.append(f"*Error:* {_clip(escape(result.error), 1000)}")
    blocks = [_section("\n".join(lines))]
    if report.body:
        blocks.append(_section(_code(report.body)))
    else:
        blocks.append(_context("The response had no body."))
    return blocks


def _notice_blocks(notice: Notice) -> list[Block]:
    warning = ":warning: " if notice.error else ""
    message = notice.text.replace(USAGE, "").strip() if USAGE in notice.text else notice.text
    blocks = [
        _section(warning + escape(piece)) for piece in split_message(message, MAX_SECTION_TEXT // 2)
    ]
    if USAGE in notice.text:
        blocks.append(_section(_code(USAGE)))
    return blocks or [_section(f"{warning}_(no details)_")]


# --- Block Kit building blocks --------------------------------------------------------------


def _header(text: str) -> Block:
    plain = _clip(" ".join(text.split()), MAX_HEADER_TEXT) or " "
    return {"type": "header", "text": {"type": "plain_text", "text": plain, "emoji": True}}


def _section(mrkdwn: str) -> Block:
    text = _clip(mrkdwn, MAX_SECTION_TEXT) or " "
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _fields(fields: list[str], *, text: str | None = None) -> Block:
    block: Block = {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": _clip(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]
        ],
    }
    if text:
        block["text"] = {"type": "mrkdwn", "text": _clip(text, MAX_SECTION_TEXT)}
    return block


def _context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def _line_sections(title: str, lines: list[str]) -> list[Block]:
    """`title` and then `lines`, over as many sections as the text limit needs."""
    groups: list[list[str]] = [[title]]
    size = len(title)
    for line in (_clip(line, MAX_SECTION_TEXT - len(title) - 1) for line in lines):
        if size + 1 + len(line) > MAX_SECTION_TEXT:
            groups.append([])
            size = -1
        groups[-1].append(line)
        size += 1 + len(line)
    return [_section("\n".join(group)) for group in groups]


def _code_sections(text: str) -> list[Block]:
    """Preformatted `text` over as many code-block sections as the text limit needs."""
    pieces = split_message(text, _CODE_ROOM)
    # Escaping can lengthen a piece past the limit (`&` → `&amp;`): split those finer.
    fitted = [
        finer
        for piece in pieces
        for finer in (
            [piece] if len(escape(piece)) <= _CODE_ROOM else split_message(piece, _CODE_ROOM // 5)
        )
    ]
    return [_section(_code(piece)) for piece in fitted]


def _code(text: str) -> str:
    """`text` as a code block of at most one section, escaped, cut with a marker if longer."""
    # A "```" inside would end the block early; a zero-width space keeps it literal.
    body = escape(text.replace(_FENCE, "`\u200b``"))
    return f"{_FENCE}\n{_clip(body, _CODE_ROOM)}\n{_FENCE}"


def _clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with "…", never through an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _cap(blocks: list[Block]) -> list[Block]:
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    note = "…cut here: too long for one Slack message. `actionbot actions` in a shell shows all."
    return [*blocks[: MAX_BLOCKS - 1], _context(note)]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _when(moment: datetime | None) -> str:
    """A Slack date token: shown in each reader's time zone, with a UTC fallback."""
    if moment is None:
        return "-"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


# --- confirmation cards -----------------------------------------------------------------

CONFIRM_ACTION = "actionbot_confirm"
CANCEL_ACTION = "actionbot_cancel"


def confirmation_blocks(confirmation: Confirmation) -> list[Block]:
    """The card: the action, every value the AI chose, Confirm and Cancel (the token in
    both buttons)."""
    values = [
        f"*{escape(str(k))}*\n{escape(_clip(str(v), MAX_FIELD_TEXT - 40))}"
        for k, v in confirmation.arguments.items()
    ]
    title = f"*Confirm {escape(confirmation.display_name or confirmation.action)}?*"
    blocks: list[Block] = [_section(title)]
    if values:
        blocks.append(_fields(values))
    blocks.append(
        {
            "type": "actions",
            "block_id": "actionbot_confirmation",
            "elements": [
                _button("Confirm", CONFIRM_ACTION, confirmation.token, "primary"),
                _button("Cancel", CANCEL_ACTION, confirmation.token, "danger"),
            ],
        }
    )
    return blocks


def confirmation_outcome_blocks(confirmation: Confirmation, outcome: str) -> list[Block]:
    """The card once answered (or expired): the same details, the outcome, no buttons."""
    return [*confirmation_blocks(confirmation)[:-1], _context(escape(outcome))]


def _button(text: str, action_id: str, value: str, style: str) -> Block:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
        "style": style,
    }
