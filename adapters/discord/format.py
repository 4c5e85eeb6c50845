"""Discord replies to `/actions`: each admin result as message content or as embeds.

`admin_reply` gives the content and embeds of one ephemeral interaction reply: content within
Discord's 2000 characters, embeds within its embed limits (`embeds`). Long lists become a
code-block table cut at a whole row. Text from admins and endpoints stays inert (`markdown`).
Header values come only from `Action.masked_headers()`, never from the resolved secrets. Times
are Discord timestamps (`<t:UNIX:f>`), shown in each reader's own time zone. The list and the
console say where each action comes from (the actions file, or made in chat); the list shows
each action's mode (live or dry run) and circuit breaker, the console the guardrails in
effect. The console is a field per action (its buttons are added by `console`); `stats NAME`
adds the last 24 hours as a sparkline. `dryrun` and `audit` are laid out by `guardrails`;
`reload`, an unsaved form and `test` by `checks`. A result without a Discord layout is shown
as its plain text.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import discord

from adapters.discord.checks import call_test_cards, problems_cards, reloaded_cards
from adapters.discord.embeds import (
    MAX_DESCRIPTION,
    Card,
    EmbedField,
    embed_field,
    line_fields,
    pack,
    to_embeds,
)
from adapters.discord.guardrails import audit_cards, dry_run_content, guard_words
from adapters.discord.markdown import (
    CLOSE,
    FENCE,
    clip,
    code_block,
    inert,
    inline_code,
    prose,
    safe,
)
from bot.admin.console import (
    Console,
    ConsoleRow,
    Resumed,
    milliseconds,
    percent,
    render_console,
    render_resumed,
    sparkline,
    table,
)
from bot.admin.operations import (
    USAGE,
    ActionDeleted,
    ActionDetail,
    ActionList,
    ActionProblems,
    ActionRow,
    ActionSaved,
    AdminResult,
    AuditReport,
    DryRunSet,
    Notice,
    Reloaded,
    StatsReport,
    TestReport,
    Toggled,
    render_text,
)
from bot.admin.render import render_saved
from bot.store import ActionStats, RecentActivity

MAX_CONTENT = 2000
MAX_USAGE = MAX_CONTENT * 3 // 4
"""The usage's code block in a notice; the rest is left for the reason it is shown."""
MAX_ERROR_CHARS = 300
"""A last error longer than this is cut in the stats: the admin needs its gist, not a page."""
MAX_TABLE_LINE = 120
"""A table row is cut here, so one long name cannot push every other row out."""
MAX_PARAMETER_LINE = 300
"""A parameter's line in `/actions show` is cut here; the file holds the whole description."""
MAX_PARAMETER_TEXT = 2500
"""Parameters shown in `/actions show` stop here (with a count of the rest), leaving room for
the AI description within the message's 6000 characters."""

LIST_TITLE = "Custom Actions"
CONSOLE_TITLE = "Custom Actions: console"
STATS_TITLE = "Action stats"
ORIGINS = {"file": "actions file", "chat": "made in chat"}
ACTIVE = "🟢 active"
INACTIVE = "⚪ inactive"


def admin_reply(result: AdminResult) -> tuple[str | None, list[discord.Embed]]:
    """Content and embeds for one `/actions` result, within every Discord limit."""
    match result:
        case Toggled():
            return _toggled(result), []
        case Notice():
            return _notice(result), []
        case Resumed():
            return clip(safe(render_resumed(result)), MAX_CONTENT), []
        case ActionSaved():
            return clip(f"✅ {safe(render_saved(result))}", MAX_CONTENT), []
        case ActionDeleted():
            deleted = f"🗑️ {inline_code(result.name)} is deleted; its calls stay in the stats."
            return clip(deleted, MAX_CONTENT), []
        case DryRunSet():
            return dry_run_content(result), []
        case AuditReport():
            cards = audit_cards(result)
        case Reloaded():
            cards = reloaded_cards(result)
        case ActionProblems():
            cards = problems_cards(result)
        case Console():
            cards = console_cards(result)
        case ActionList():
            cards = _list_cards(result)
        case ActionDetail():
            cards = _detail_cards(result)
        case StatsReport():
            cards = _stats_cards(result)
        case TestReport():
            cards = call_test_cards(result)
        case _:  # a result without a Discord layout (yet): its plain text
            return clip(safe(render_text(result)), MAX_CONTENT), []
    return None, to_embeds(cards)


# --- plain content ------------------------------------------------------------------------


def _toggled(result: Toggled) -> str:
    state = "enabled" if result.active else "disabled"
    already = "" if result.changed else " (it already was)"
    return clip(f"✅ {inline_code(result.name)} is now {state}{already}.", MAX_CONTENT)


def _notice(notice: Notice) -> str:
    warning = "⚠️ " if notice.error else ""
    has_usage = USAGE in notice.text
    message = notice.text.replace(USAGE, "").strip() if has_usage else notice.text.strip()
    usage = code_block(USAGE, limit=MAX_USAGE) if has_usage else ""
    if not message:
        return usage or f"{warning}(no details)"
    room = MAX_CONTENT - len(usage) - (2 if usage else 0)
    text = clip(warning + safe(message), room)
    return f"{text}\n\n{usage}" if usage else text


# --- embeds -------------------------------------------------------------------------------


def _list_cards(result: ActionList) -> list[Card]:
    colour = discord.Colour.blurple()
    if not result.rows:
        return [Card(colour, LIST_TITLE, render_text(result))]
    active = sum(r.active for r in result.rows)
    footer = f"{_count(len(result.rows), 'action')} · {active} active"
    fields = [embed_field(safe(f"{r.display_name} ({r.name})"), _row_value(r)) for r in result.rows]
    packed = pack(fields, title=LIST_TITLE, colour=colour, footer=footer)
    if packed is not None:
        return packed
    rows = [
        [
            r.name,
            "active" if r.active else "inactive",
            "dry run" if r.mode == "dry_run" else "live",
            r.breaker.replace("_", "-"),
            str(r.calls),
            r.origin,
            _endpoint(r),
        ]
        for r in result.rows
    ]
    header = ["NAME", "STATE", "MODE", "BREAKER", "CALLS", "FROM", "ENDPOINT"]
    description = _table(header, rows, command="list")
    return [Card(colour, LIST_TITLE, description, footer=footer)]


def _row_value(row: ActionRow) -> str:
    state = ACTIVE if row.active else INACTIVE
    origin = ORIGINS.get(row.origin, row.origin)
    line = f"{_endpoint(row)} · {state} · {_count(row.calls, 'call')} · {origin}"
    guards = guard_words(row.mode, row.breaker)
    return safe(f"{line}\n{guards}" if guards else line)


def _endpoint(row: ActionRow) -> str:
    return f"{row.method} {row.host}"


def _detail_cards(detail: ActionDetail) -> list[Card]:
    action = detail.action
    state = ACTIVE if detail.active else INACTIVE
    if detail.changed_by:
        state += f"\nset by {safe(detail.changed_by)}, {_when(detail.changed_at)}"
    headers = [f"{inline_code(k)}: {safe(v)}" for k, v in action.masked_headers().items()]
    parameters = [
        clip(
            f"• {inline_code(p.name)} ({p.kind}) — {safe(p.description)}",
            MAX_PARAMETER_LINE,
        )
        for p in action.parameters
    ]
    timeout = f"{action.timeout:g} s" if action.timeout else "default"
    fields = [
        embed_field("Name", inline_code(action.name), inline=True),
        embed_field("State", state, inline=True),
        embed_field("Calls", str(detail.calls), inline=True),
        embed_field("Endpoint", inline_code(f"{action.method.value} {action.url}")),
        embed_field("Timeout", timeout, inline=True),
        embed_field("Concurrency", f"at most {action.max_concurrency} at once", inline=True),
        *line_fields("Headers", headers or ["none"]),
        *line_fields("Parameters", _up_to(parameters, MAX_PARAMETER_TEXT) or ["none"]),
    ]
    colour = discord.Colour.green() if detail.active else discord.Colour.light_grey()
    return [Card(colour, safe(action.display_name), safe(action.description), fields)]


def _up_to(lines: list[str], budget: int) -> list[str]:
    """The first `lines` that fit `budget` characters, and a count of the rest if any."""
    kept: list[str] = []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            return [*kept, f"…and {len(lines) - len(kept)} more (see the actions file)"]
        kept.append(line)
    return kept


def _stats_cards(report: StatsReport) -> list[Card]:
    colour = discord.Colour.blurple()
    rows = report.rows
    if not rows or (report.name is None and not any(r.calls for r in rows)):
        return [Card(colour, STATS_TITLE, "No calls recorded yet.")]
    fields = [embed_field(safe(s.action), _stats_value(s)) for s in rows]
    if report.recent is not None:
        fields.append(_recent_field(report.recent))
    packed = pack(fields, title=STATS_TITLE, colour=colour, footer=" ".join(report.notes()))
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
    return [Card(colour, STATS_TITLE, _table(header, table_rows, command="stats"), footer=footer)]


def _stats_value(stats: ActionStats) -> str:
    failures = ", ".join(f"{inline_code(k)} {v}" for k, v in sorted(stats.failures.items()))
    lines = [
        f"{_count(stats.calls, 'call')} · {stats.successes} ok · failed: {failures or 'none'}",
        f"avg {_ms(stats.avg_latency_ms)} · p95 {_ms(stats.p95_latency_ms)}",
        f"last call {_when(stats.last_call_at)}",
    ]
    if stats.last_error:
        error = clip(prose(stats.last_error), MAX_ERROR_CHARS)
        lines.append(f"last error {_when(stats.last_error_at)}: {error}")
    return "\n".join(lines)


def _recent_field(recent: RecentActivity) -> EmbedField:
    """`/actions stats NAME`'s last hours: calls per hour as a sparkline, and the outcomes."""
    hours = len(recent.hourly)
    outcomes = " · ".join(f"{inline_code(k)} {v}" for k, v in recent.outcomes.items())
    lines = [
        f"{inline_code(sparkline(recent.hourly))} peak {max(recent.hourly, default=0)}/h",
        f"outcomes: {outcomes or 'no calls'}",
    ]
    return embed_field(f"Last {hours} h, calls per hour (oldest first)", "\n".join(lines))


def console_cards(console: Console, *, chat: Collection[str] = ()) -> list[Card]:
    """`/actions console`: a field per action (its last 24 hours, and "made in chat" for the
    actions named in `chat`); the buttons are added by `console.console_view`. What the last
    button did is the description."""
    colour = discord.Colour.blurple()
    if not console.rows:
        return [Card(colour, CONSOLE_TITLE, render_console(console))]
    active = sum(r.active for r in console.rows)
    footer = f"Last 24 hours · {_count(len(console.rows), 'action')} · {active} active"
    fields = [_console_field(row, made_in_chat=row.name in chat) for row in console.rows]
    cards = pack(fields, title=CONSOLE_TITLE, colour=colour, footer=footer)
    if cards is None:
        rows = [
            [r.name, "active" if r.active else "inactive", str(r.calls), percent(r.success_rate)]
            for r in console.rows
        ]
        description = _table(["NAME", "STATE", "CALLS 24H", "SUCCESS"], rows, command="list")
        cards = [Card(colour, CONSOLE_TITLE, description, footer=footer)]
    said = ([safe(console.notice)] if console.notice else []) + [
        f"⚠️ {safe(line)}" for line in console.guards
    ]
    if said:
        cards[0].description = clip("\n".join(said), MAX_DESCRIPTION // 4)
    return cards


def _console_field(row: ConsoleRow, *, made_in_chat: bool) -> EmbedField:
    state = ACTIVE if row.active else INACTIVE
    origin = ORIGINS["chat" if made_in_chat else "file"]
    value = (
        f"{inline_code(row.name)} · {state} · {origin}\n{_count(row.calls, 'call')} · "
        f"{percent(row.success_rate)} ok · p95 {milliseconds(row.p95_latency_ms)}"
    )
    return embed_field(safe(row.display_name), value, inline=True)


# --- tables and small pieces --------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], *, command: str) -> str:
    """A code-block table cut at a whole row, with a note saying where to see the rest."""
    text = table(header, rows)
    head, *lines = [inert(safe(line[:MAX_TABLE_LINE])) for line in text.split("\n")]
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _when(moment: datetime | None) -> str:
    """A Discord timestamp: each reader sees it in their own time zone."""
    return "-" if moment is None else discord.utils.format_dt(moment, "f")
