"""Discord rendering: `/actions` results as embeds, and the model's Markdown as message text.

`admin_reply` gives the content and embeds of one ephemeral interaction reply. Discord rejects
a whole message that breaks any of its limits, so all are enforced here: content 2000
characters; at most 10 embeds of at most 25 fields; title 256, description 4096, field name
256, field value 1024 and footer 2048 characters; and 6000 characters across all the embeds of
a message (title, description, field names and values, footer, author name: what
`len(discord.Embed)` counts). Long lists become a code-block table cut at a whole row.

Text from admins and endpoints stays inert: backticks in a code block are kept apart with a
zero-width space so they can never close it, and mentions are escaped with
`discord.utils.escape_mentions` (the adapter also sends with no allowed mentions). Header
values come only from `Action.masked_headers()`, never from the resolved secrets. Times are
Discord timestamps (`<t:UNIX:f>`), shown in each reader's own time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import discord

from bot.admin.operations import (
    USAGE,
    ActionDetail,
    ActionList,
    ActionRow,
    AdminResult,
    Notice,
    StatsReport,
    TestReport,
    Toggled,
    render_text,
    table,
)
from bot.store import ActionStats

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FIELDS = 25
MAX_TOTAL = 6000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_ERROR_CHARS = 300
"""A last error longer than this is cut in the stats: the admin needs its gist, not a page."""
MAX_TABLE_LINE = 120
"""A table row is cut here, so one long name cannot push every other row out."""
MIN_KEEP = 40
"""When the 6000-character total forces a cut, no text is cut shorter than this."""
MIN_FIELD_KEEP = 200
"""Field values are cut down to this before a description is cut at all."""
MAX_PARAMETER_LINE = 300
"""A parameter's line in `/actions show` is cut here; the file holds the whole description."""
MAX_PARAMETER_TEXT = 2500
"""Parameters shown in `/actions show` stop here (with a count of the rest), leaving room for
the AI description within the message's 6000 characters."""

LIST_TITLE = "Custom Actions"
STATS_TITLE = "Action stats"
ACTIVE = "🟢 active"
INACTIVE = "⚪ inactive"
FENCE = "```"
CLOSE = "\n" + FENCE
_BACKTICK_RUN = re.compile(r"`(?=`)")

EmbedField = tuple[str, str, bool]
"""An embed field: name, value, inline."""


def to_discord_markdown(text: str) -> str:
    """The model's Markdown as Discord message text: Discord reads Markdown as the model
    writes it, so only mentions (`@everyone`, `@here`, users, roles) are neutralised."""
    return discord.utils.escape_mentions(text)


def admin_reply(result: AdminResult) -> tuple[str | None, list[discord.Embed]]:
    """Content and embeds for one `/actions` result, within every Discord limit."""
    match result:
        case Toggled():
            return _toggled(result), []
        case Notice():
            return _notice(result), []
        case ActionList():
            cards = _list_cards(result)
        case ActionDetail():
            cards = _detail_cards(result)
        case StatsReport():
            cards = _stats_cards(result)
        case TestReport():
            cards = _test_cards(result)
    return None, [card.build() for card in _fit(cards[:MAX_EMBEDS])]


# --- plain content ------------------------------------------------------------------------


def _toggled(result: Toggled) -> str:
    state = "enabled" if result.active else "disabled"
    already = "" if result.changed else " (it already was)"
    return _clip(f"✅ {_span(result.name)} is now {state}{already}.", MAX_CONTENT)


def _notice(notice: Notice) -> str:
    warning = "⚠️ " if notice.error else ""
    has_usage = USAGE in notice.text
    message = notice.text.replace(USAGE, "").strip() if has_usage else notice.text.strip()
    usage = _code(USAGE, limit=MAX_CONTENT // 2) if has_usage else ""
    if not message:
        return usage or f"{warning}(no details)"
    room = MAX_CONTENT - len(usage) - (2 if usage else 0)
    text = _clip(warning + _safe(message), room)
    return f"{text}\n\n{usage}" if usage else text


# --- embeds -------------------------------------------------------------------------------


@dataclass
class _Card:
    """One embed as plain text, measured and cut before it is built."""

    colour: discord.Colour
    title: str | None = None
    description: str | None = None
    fields: list[EmbedField] = field(default_factory=list)
    footer: str | None = None

    def __post_init__(self) -> None:
        self.title = _clip(self.title, MAX_TITLE) if self.title else None
        self.description = _clip(self.description, MAX_DESCRIPTION) if self.description else None
        self.footer = _clip(self.footer, MAX_FOOTER) if self.footer else None
        self.fields = self.fields[:MAX_FIELDS]

    def size(self) -> int:
        """Characters as Discord counts them toward the 6000 of a message."""
        texts = [self.title, self.description, self.footer]
        return sum(len(t or "") for t in texts) + sum(len(n) + len(v) for n, v, _ in self.fields)

    def build(self) -> discord.Embed:
        embed = discord.Embed(colour=self.colour, title=self.title, description=self.description)
        for name, value, inline in self.fields:
            embed.add_field(name=name, value=value, inline=inline)
        if self.footer:
            embed.set_footer(text=self.footer)
        return embed


def _field(name: str, value: str, *, inline: bool = False) -> EmbedField:
    """A field cut to Discord's limits; never empty, which Discord would refuse."""
    return (_clip(name, MAX_FIELD_NAME) or "-", _clip(value, MAX_FIELD_VALUE) or "-", inline)


def _list_cards(result: ActionList) -> list[_Card]:
    colour = discord.Colour.blurple()
    if not result.rows:
        return [_Card(colour, LIST_TITLE, render_text(result))]
    active = sum(r.active for r in result.rows)
    footer = f"{_count(len(result.rows), 'action')} · {active} active"
    fields = [_field(_safe(f"{r.display_name} ({r.name})"), _row_value(r)) for r in result.rows]
    packed = _pack(fields, title=LIST_TITLE, colour=colour, footer=footer)
    if packed is not None:
        return packed
    rows = [
        [r.name, "active" if r.active else "inactive", str(r.calls), _endpoint(r)]
        for r in result.rows
    ]
    description = _table(["NAME", "STATE", "CALLS", "ENDPOINT"], rows, command="list")
    return [_Card(colour, LIST_TITLE, description, footer=footer)]


def _row_value(row: ActionRow) -> str:
    state = ACTIVE if row.active else INACTIVE
    return _safe(f"{_endpoint(row)} · {state} · {_count(row.calls, 'call')}")


def _endpoint(row: ActionRow) -> str:
    return f"{row.method} {row.host}"


def _detail_cards(detail: ActionDetail) -> list[_Card]:
    action = detail.action
    state = ACTIVE if detail.active else INACTIVE
    if detail.changed_by:
        state += f"\nset by {_safe(detail.changed_by)}, {_when(detail.changed_at)}"
    headers = [f"{_span(k)}: {_safe(v)}" for k, v in action.masked_headers().items()]
    parameters = [
        _clip(
            f"• {_span(p.name)} ({p.type.value}, {'required' if p.required else 'optional'})"
            f" — {_safe(p.description)}",
            MAX_PARAMETER_LINE,
        )
        for p in action.parameters
    ]
    fields = [
        _field("Name", _span(action.name), inline=True),
        _field("State", state, inline=True),
        _field("Calls", str(detail.calls), inline=True),
        _field("Endpoint", _span(f"{action.method.value} {action.url}")),
        _field("Timeout", f"{action.timeout:g} s" if action.timeout else "default", inline=True),
        _field("Concurrency", f"at most {action.max_concurrency} at once", inline=True),
        *_line_fields("Headers", headers or ["none"]),
        *_line_fields("Parameters", _up_to(parameters, MAX_PARAMETER_TEXT) or ["none"]),
    ]
    colour = discord.Colour.green() if detail.active else discord.Colour.light_grey()
    return [_Card(colour, _safe(action.display_name), _safe(action.description), fields)]


def _up_to(lines: list[str], budget: int) -> list[str]:
    """The first `lines` that fit `budget` characters, and a count of the rest if any."""
    kept: list[str] = []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            return [*kept, f"…and {len(lines) - len(kept)} more (see the actions file)"]
        kept.append(line)
    return kept


def _line_fields(name: str, lines: list[str]) -> list[EmbedField]:
    """`lines` under `name`, over as many fields as the value limit needs."""
    groups: list[list[str]] = [[]]
    size = 0
    for line in (_clip(line, MAX_FIELD_VALUE) for line in lines):
        if groups[-1] and size + 1 + len(line) > MAX_FIELD_VALUE:
            groups.append([])
            size = 0
        groups[-1].append(line)
        size += len(line) + (1 if size else 0)
    return [
        _field(name if i == 0 else f"{name} (continued)", "\n".join(group))
        for i, group in enumerate(groups)
    ]


def _stats_cards(report: StatsReport) -> list[_Card]:
    colour = discord.Colour.blurple()
    rows = report.rows
    if not rows or (report.name is None and not any(r.calls for r in rows)):
        return [_Card(colour, STATS_TITLE, "No calls recorded yet.")]
    fields = [_field(_safe(s.action), _stats_value(s)) for s in rows]
    packed = _pack(fields, title=STATS_TITLE, colour=colour)
    if packed is not None:
        return packed
    header = ["ACTION", "CALLS", "OK", "FAILED", "AVG", "P95", "LAST CALL (UTC)"]
    table_rows = [
        [
            s.action,
            str(s.calls),
            str(s.successes),
            str(s.calls - s.successes),
            _ms(s.avg_latency_ms),
            _ms(s.p95_latency_ms),
            "-" if s.last_call_at is None else s.last_call_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for s in rows
    ]
    footer = "/actions stats NAME shows one action's failures and last error."
    return [_Card(colour, STATS_TITLE, _table(header, table_rows, command="stats"), footer=footer)]


def _stats_value(stats: ActionStats) -> str:
    failures = ", ".join(f"{_span(k)} {v}" for k, v in sorted(stats.failures.items()))
    lines = [
        f"{_count(stats.calls, 'call')} · {stats.successes} ok · failed: {failures or 'none'}",
        f"avg {_ms(stats.avg_latency_ms)} · p95 {_ms(stats.p95_latency_ms)}",
        f"last call {_when(stats.last_call_at)}",
    ]
    if stats.last_error:
        error = _clip(_prose(stats.last_error), MAX_ERROR_CHARS)
        lines.append(f"last error {_when(stats.last_error_at)}: {error}")
    return "\n".join(lines)


def _test_cards(report: TestReport) -> list[_Card]:
    result = report.result
    emoji = "✅" if result.ok else "⚠️"
    colour = discord.Colour.green() if result.ok else discord.Colour.orange()
    status = f"HTTP {result.status}" if result.status is not None else "no HTTP status"
    fields = [
        _field("Status", status, inline=True),
        _field("Latency", f"{result.latency_ms:.0f} ms", inline=True),
    ]
    if report.arguments:
        pairs = "\n".join(f"{k}={v}" for k, v in report.arguments.items())
        fields.append(_field("Arguments", _code(_safe(pairs), limit=MAX_FIELD_VALUE)))
    if result.error:
        fields.append(_field("Error", _prose(result.error)))
    title = _safe(f"{emoji} {result.action}: {result.outcome.value}")
    language = "json" if result.data is not None else ""
    body = report.body.strip()
    description = (
        _code(_safe(body), limit=MAX_DESCRIPTION, language=language)
        if body
        else "*The response had no body.*"
    )
    return [_Card(colour, title, description, fields)]


# --- fitting ------------------------------------------------------------------------------


def _pack(
    fields: list[EmbedField], *, title: str, colour: discord.Colour, footer: str | None = None
) -> list[_Card] | None:
    """`fields` over as few embeds as needed, or None when they cannot all fit one message."""
    groups = [fields[i : i + MAX_FIELDS] for i in range(0, len(fields), MAX_FIELDS)]
    if not groups or len(groups) > MAX_EMBEDS:
        return None
    cards = [_Card(colour, title if i == 0 else None, fields=g) for i, g in enumerate(groups)]
    cards[-1].footer = _clip(footer, MAX_FOOTER) if footer else None
    return cards if sum(c.size() for c in cards) <= MAX_TOTAL else None


def _table(header: list[str], rows: list[list[str]], *, command: str) -> str:
    """A code-block table cut at a whole row, with a note saying where to see the rest."""
    text = table(header, rows)
    head, *lines = [_inert(_safe(line[:MAX_TABLE_LINE])) for line in text.split("\n")]
    budget = MAX_DESCRIPTION - len(f"{FENCE}\n{head}{CLOSE}\n{_more(len(rows), command)}")
    shown: list[str] = []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            break
        shown.append(line)
    code = "\n".join([f"{FENCE}\n{head}", *shown]) + CLOSE
    hidden = len(lines) - len(shown)
    return f"{code}\n{_more(hidden, command)}" if hidden else code


def _more(hidden: int, command: str) -> str:
    return f"…and {hidden} more. `actionbot actions {command}` in a shell shows them all."


def _fit(cards: list[_Card]) -> list[_Card]:
    """Bring all embeds together within Discord's total by cutting the longest texts evenly:
    field values first, as descriptions carry the main text (the AI description, the body),
    and descriptions too only when cutting values to `MIN_FIELD_KEEP` would not be enough."""
    while sum(c.size() for c in cards) > MAX_TOTAL:
        descriptions = _cap(cards, descriptions=False) < MIN_FIELD_KEEP
        cap = _cap(cards, descriptions=descriptions)
        if cap < MIN_KEEP:
            _drop_last(cards)
            continue
        for card in cards:
            if descriptions and card.description and len(card.description) > cap:
                card.description = _clip(card.description, cap)
            card.fields = [(name, _clip(value, cap), inline) for name, value, inline in card.fields]
    return cards


def _cap(cards: list[_Card], *, descriptions: bool) -> int:
    """The largest length for field values (and descriptions) that brings the total in."""
    lengths = [len(value) for c in cards for _, value, _ in c.fields]
    if descriptions:
        lengths += [len(c.description or "") for c in cards]
    room = MAX_TOTAL - (sum(c.size() for c in cards) - sum(lengths))
    low, high = 0, max(lengths, default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if sum(min(length, middle) for length in lengths) <= room:
            low = middle
        else:
            high = middle - 1
    return low if room >= 0 else 0


def _drop_last(cards: list[_Card]) -> None:
    """The last resort, which the layouts above leave unreached: drop fields, then embeds."""
    card = next((c for c in reversed(cards) if c.fields), None)
    if card is not None:
        card.fields.pop()
    elif len(cards) > 1:
        cards.pop()
    else:
        cards[0].footer = None


# --- text pieces --------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with "…"; a code block cut open is closed again."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if head.count(FENCE) % 2 == 0:
        return head + "…"
    head = text[: limit - 1 - len(CLOSE)]
    return head + "…" + (CLOSE if head.count(FENCE) % 2 else "")


def _code(text: str, *, limit: int, language: str = "") -> str:
    """`text` as a code block of at most `limit` characters that nothing inside can close."""
    opening = f"{FENCE}{language}\n"
    return _clip(opening + _inert(text) + CLOSE, limit)


def _inert(text: str) -> str:
    """No two backticks side by side: a zero-width space between them, so no fence forms."""
    return _BACKTICK_RUN.sub("`\u200b", text)


def _span(text: str) -> str:
    """`text` as inline code; a backtick inside would end the span early."""
    return f"`{_safe(text).replace('`', 'ˋ')}`"


def _safe(text: str) -> str:
    return discord.utils.escape_mentions(text)


def _prose(text: str) -> str:
    """Endpoint-made text (errors) shown as written: Markdown and mentions escaped."""
    return _safe(discord.utils.escape_markdown(text))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _when(moment: datetime | None) -> str:
    """A Discord timestamp: each reader sees it in their own time zone."""
    return "-" if moment is None else discord.utils.format_dt(moment, "f")
