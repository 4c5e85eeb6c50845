"""Block Kit for `/actions` results: one function, `admin_blocks`, for every result type,
within Slack's limits (`blocks`); `fallback_text` is the message's plain `text`.

Everything from an admin, an action file or an endpoint is escaped (`format.escape`): the
only `<…>` written here are Slack date tokens.
"""

from __future__ import annotations

from adapters.slack.blocks import (
    MAX_SECTION_TEXT,
    Block,
    cap,
    clip,
    code,
    code_sections,
    context,
    fields,
    header,
    line_sections,
    ms,
    section,
    when,
)
from adapters.slack.console import console_blocks
from adapters.slack.format import escape
from bot.admin.console import Console, Resumed, sparkline
from bot.admin.operations import USAGE
from bot.admin.render import (
    render_audit,
    render_dry_run,
    render_reloaded,
    render_saved,
    render_text,
)
from bot.admin.results import (
    ActionDeleted,
    ActionDetail,
    ActionForm,
    ActionList,
    ActionProblems,
    ActionSaved,
    AdminResult,
    AuditReport,
    DryRunSet,
    Notice,
    Reloaded,
    StatsReport,
    TestReport,
    Toggled,
)
from bot.chunks import split_message
from bot.store import ActionStats, RecentActivity

MAX_LIST_SECTIONS = 45
"""Above this many actions `/actions list` is one table, not one section per action."""
MAX_ERROR_CHARS = 300
"""A last error longer than this is cut in the stats: the admin needs its gist, not a page."""


def fallback_text(result: AdminResult) -> str:
    """The message's `text` (notifications, screen readers): the plain rendering, escaped."""
    return clip(escape(render_text(result)), MAX_SECTION_TEXT)


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
                section(f":white_check_mark: `{escape(result.name)}` is now {state}{already}.")
            ]
        case StatsReport():
            blocks = _stats_blocks(result)
        case TestReport():
            blocks = _test_blocks(result)
        case Notice():
            blocks = _notice_blocks(result)
        case Console():
            blocks = console_blocks(result)
        case Resumed():
            emoji = ":arrow_forward: " if result.conversations else ""
            blocks = [section(emoji + escape(render_text(result)))]
        case Reloaded():
            blocks = _reloaded_blocks(result)
        case ActionForm():  # the adapter opens the modal; this is the text-only fallback
            blocks = [section(f":memo: {escape(render_text(result))}")]
        case ActionSaved():
            blocks = [section(f":white_check_mark: {escape(render_saved(result))}")]
        case ActionProblems():
            problems = [f"• {_problem(p.field, p.message)}" for p in result.problems]
            blocks = line_sections(":warning: *Not saved:*", problems or ["• (no details)"])
        case ActionDeleted():
            blocks = [section(f":wastebasket: {escape(render_text(result))}")]
        case DryRunSet():
            emoji = ":test_tube:" if result.on else ":arrow_forward:"
            said = escape(render_dry_run(result)).replace(escape(result.name), "", 1)
            blocks = [section(f"{emoji} `{escape(result.name)}`{said}")]
        case AuditReport():
            blocks = _audit_blocks(result)
        case _:  # a result type without its own layout yet: its plain text, preformatted
            blocks = code_sections(render_text(result))
    return cap(blocks)


def _list_blocks(result: ActionList) -> list[Block]:
    if not result.rows:
        return [section(escape(render_text(result)))]
    if len(result.rows) > MAX_LIST_SECTIONS:
        return [header("Custom Actions"), *code_sections(render_text(result))]
    blocks = [header("Custom Actions")]
    for row in result.rows:
        state = ":large_green_circle: active" if row.active else ":white_circle: inactive"
        calls = f"{row.calls} call" + ("" if row.calls == 1 else "s")
        # The file is where actions come from unless said otherwise.
        origin = "" if row.origin == "file" else f" · from {escape(row.origin)}"
        blocks.append(
            section(
                f"*{escape(row.display_name)}*  `{escape(row.name)}`\n"
                f"{escape(row.method)} {escape(row.host)} · {state} · {calls}{origin}"
                f"{_guard_text(row.mode, row.breaker)}"
            )
        )
    return blocks


MODES = {"dry_run": ":test_tube: dry run: nothing is sent"}
BREAKERS = {
    "open": ":octagonal_sign: breaker open: calls paused",
    "half_open": ":hourglass_flowing_sand: breaker half-open: one call is trying",
}


def _guard_text(mode: str, breaker: str) -> str:
    """A list row's guardrails in effect (a dry run, a breaker not closed), on a line of
    their own; "" for a live action with its breaker closed."""
    said = [words for words in (MODES.get(mode, ""), BREAKERS.get(breaker, "")) if words]
    return "\n" + " · ".join(said) if said else ""


def _audit_blocks(report: AuditReport) -> list[Block]:
    """`/actions audit NAME`: its latest calls as a preformatted table under a header."""
    if not report.rows:
        return [section(escape(render_audit(report)))]
    title, _, table = render_audit(report).partition("\n")
    note = "Arguments as sent, secrets masked. `actionbot actions audit` exports every call."
    return [
        header(f"Audit: {report.name}"),
        context(escape(title)),
        *code_sections(table),
        context(note),
    ]


def _reloaded_blocks(result: Reloaded) -> list[Block]:
    """What a reload changed, or every problem that kept the actions in use."""
    if result.ok:
        return [section(f":arrows_counterclockwise: {escape(render_reloaded(result))}")]
    problems = [f"• {escape(problem)}" for problem in result.problems]
    title = (
        f":warning: *{escape(result.source)} was not reloaded*; the actions in use stay as "
        "they were:"
    )
    return line_sections(title, problems)


def _problem(field: str | None, message: str) -> str:
    where = f"`{escape(field)}`: " if field else ""
    return where + escape(message)


def _detail_blocks(detail: ActionDetail) -> list[Block]:
    action = detail.action
    state = ":large_green_circle: active" if detail.active else ":white_circle: inactive"
    if detail.changed_by:
        state += f"\nset by {escape(detail.changed_by)}, {when(detail.changed_at)}"
    timeout = f"{action.timeout:g} s" if action.timeout else "default"
    shown = [
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
        header(action.display_name),
        section(escape(action.description)),
        fields(shown),
        *line_sections("*Headers*", headers or ["none"]),
        *line_sections("*Parameters*", parameters or ["none"]),
    ]


def _stats_blocks(report: StatsReport) -> list[Block]:
    rows = report.rows
    if not rows or (report.name is None and not any(r.calls for r in rows)):
        return [section("No calls recorded yet.")]
    if len(rows) > MAX_LIST_SECTIONS:
        return [header("Action stats"), *code_sections(render_text(report))]
    recent = [_recent_section(report.recent)] if report.recent is not None else []
    notes = context(escape(" ".join(report.notes())))
    return [header("Action stats"), *(_stats_section(s) for s in rows), *recent, notes]


def _recent_section(recent: RecentActivity) -> Block:
    """The last 24 hours of one action: calls per hour as a sparkline (oldest hour first,
    the current hour last) and the outcome breakdown."""
    hours = len(recent.hourly)
    peak = max(recent.hourly, default=0)
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(recent.outcomes.items())) or "none"
    return section(
        f"*Last {hours} hours*, calls per hour (oldest first, peak {peak}):\n"
        f"`{sparkline(recent.hourly)}`\n"
        f"*Outcomes:* {escape(outcomes)} · p95 {ms(recent.p95_latency_ms)}"
    )


def _stats_section(stats: ActionStats) -> Block:
    failures = ", ".join(f"{k} {v}" for k, v in sorted(stats.failures.items())) or "none"
    shown = [
        f"*Calls*\n{stats.calls}",
        f"*Successes*\n{stats.successes}",
        f"*Failures*\n{escape(failures)}",
        f"*Latency*\navg {ms(stats.avg_latency_ms)} · p95 {ms(stats.p95_latency_ms)}",
        f"*Last call*\n{when(stats.last_call_at)}",
    ]
    if stats.last_error:
        error = escape(clip(stats.last_error, MAX_ERROR_CHARS))
        shown.append(f"*Last error* ({when(stats.last_error_at)})\n{error}")
    return fields(shown, text=f"`{escape(stats.action)}`")


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
        lines.append(f"*Arguments:* `{clip(escape(pairs), 1000)}`")
    if result.error:
        lines.append(f"*Error:* {clip(escape(result.error), 1000)}")
    blocks = [section("\n".join(lines))]
    if report.body:
        blocks.append(section(code(report.body)))
    else:
        blocks.append(context("The response had no body."))
    return blocks


def _notice_blocks(notice: Notice) -> list[Block]:
    warning = ":warning: " if notice.error else ""
    message = notice.text.replace(USAGE, "").strip() if USAGE in notice.text else notice.text
    blocks = [
        section(warning + escape(piece)) for piece in split_message(message, MAX_SECTION_TEXT // 2)
    ]
    if USAGE in notice.text:
        blocks.append(section(code(USAGE)))
    return blocks or [section(f"{warning}_(no details)_")]
