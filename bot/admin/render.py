"""The plain-text rendering of `/actions` results, for the shell and the console."""

from __future__ import annotations

from datetime import datetime

from bot.admin.console import (
    Console,
    Resumed,
    activity_lines,
    render_console,
    render_resumed,
    table,
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
from bot.store import ActionStats
from bot.types import Outcome, trim


def render_text(result: AdminResult) -> str:
    """Render a result as plain text for the shell and the console."""
    match result:
        case ActionList():
            return _render_list(result)
        case ActionDetail():
            return _render_detail(result)
        case Toggled():
            state = "enabled" if result.active else "disabled"
            already = "" if result.changed else " (it already was)"
            return f"{result.name} is now {state}{already}."
        case StatsReport():
            return _render_stats(result)
        case TestReport():
            return _render_test(result)
        case Notice():
            return result.text
        case Console():
            return render_console(result)
        case Resumed():
            return render_resumed(result)
        case Reloaded():
            return render_reloaded(result)
        case ActionForm():
            return FORMS_ONLY
        case ActionSaved():
            return render_saved(result)
        case ActionProblems():
            return "Not saved:\n" + "\n".join(f"  - {p}" for p in result.problems)
        case ActionDeleted():
            return f"{result.name} is deleted; its calls stay in the stats."
        case DryRunSet():
            return render_dry_run(result)
        case AuditReport():
            return render_audit(result)


def _render_list(result: ActionList) -> str:
    if not result.rows:
        return "No actions are defined. Add some to the actions file (see actions.example.toml)."
    rows = [
        [
            r.name,
            r.display_name,
            r.method,
            r.host,
            r.origin,
            "dry run" if r.mode == "dry_run" else "live",
            r.breaker.replace("_", "-"),
            "active" if r.active else "inactive",
            str(r.calls),
        ]
        for r in result.rows
    ]
    header = ["NAME", "DISPLAY NAME", "METHOD", "HOST", "FROM", "MODE", "BREAKER", "STATE"]
    return table([*header, "CALLS"], rows)


def _render_detail(detail: ActionDetail) -> str:
    a = detail.action
    state = "active" if detail.active else "inactive"
    if detail.changed_by:
        state += f" (set by {detail.changed_by}, {_when(detail.changed_at)})"
    lines = [
        f"{a.display_name} ({a.name})",
        f"  description: {a.description}",
        f"  endpoint:    {a.method.value} {a.url}",
        f"  state:       {state}",
        f"  timeout:     {f'{a.timeout:g} s' if a.timeout else 'default'}",
        f"  concurrency: at most {a.max_concurrency} calls at once",
        f"  calls:       {detail.calls}",
    ]
    lines += [f"  header:      {k}: {v}" for k, v in a.masked_headers().items()]
    lines.append("  parameters:" if a.parameters else "  parameters:  none")
    for p in a.parameters:
        lines.append(f"    - {p.name} ({p.kind}): {p.description}")
    return "\n".join(lines)


def _render_stats(report: StatsReport) -> str:
    if not report.rows or (report.name is None and not any(r.calls for r in report.rows)):
        return "\n".join(
            ["No calls recorded yet.", *report.messages_line(), *report.handoffs_line()]
        )
    rows = [
        [
            s.action,
            str(s.calls),
            str(s.successes),
            _failures(s),
            str(s.failures.get(Outcome.DRY_RUN.value, 0)),
            _ms(s.avg_latency_ms),
            _ms(s.p95_latency_ms),
            _when(s.last_call_at),
            s.last_error or "-",
        ]
        for s in report.rows
    ]
    header = ["ACTION", "CALLS", "OK", "FAILED", "DRY RUN", "AVG", "P95", "LAST CALL", "LAST ERROR"]
    recent = activity_lines(report.recent) if report.recent else []
    return "\n".join([table(header, rows), "", *recent, *report.notes()])


def _render_test(report: TestReport) -> str:
    r = report.result
    status = f"HTTP {r.status}" if r.status is not None else "no HTTP status"
    lines = [f"{r.action}: {r.outcome.value} · {status} · {r.latency_ms:.0f} ms"]
    if r.error:
        lines.append(f"error: {r.error}")
    if report.body:
        lines.append(f"body: {report.body}")
    return "\n".join(lines)


def _failures(stats: ActionStats) -> str:
    """Failures by outcome; dry runs have their own column (nothing was sent)."""
    failed = sorted((k, v) for k, v in stats.failures.items() if k != Outcome.DRY_RUN.value)
    return ", ".join(f"{k} {v}" for k, v in failed) or "0"


def render_dry_run(result: DryRunSet) -> str:
    already = "" if result.changed else " (it already was)"
    if result.on:
        return (
            f"{result.name} is now in dry-run mode{already}: no request is sent; the AI is "
            "shown what would have been sent and tells the customer it was a test."
        )
    return f"{result.name} is live again{already}: its calls are sent."


def render_audit(report: AuditReport) -> str:
    if not report.rows:
        return f"No calls of {report.name} are recorded (or kept)."
    rows = [
        [
            _when(r.recorded_at),
            f"{r.platform or '-'}:{r.user_id or '-'}",
            r.channel or "-",
            r.outcome,
            "-" if r.status is None else str(r.status),
            _ms(r.latency_ms),
            str(r.attempts),
            r.idempotency_key[:12],
            trim(r.arguments or "-", AUDIT_ARGUMENT_CHARS),
        ]
        for r in report.rows
    ]
    header = ["WHEN", "WHO", "CHANNEL", "OUTCOME", "STATUS", "LATENCY", "TRIES", "KEY", "ARGS"]
    return f"Last {len(rows)} calls of {report.name}, newest first:\n" + table(header, rows)


AUDIT_ARGUMENT_CHARS = 80


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


FORMS_ONLY = (
    "Creating and editing actions needs a form: run /actions new or /actions edit NAME in "
    "Slack or Discord, or edit the actions file."
)


def render_saved(result: ActionSaved) -> str:
    done = "made" if result.created else "changed"
    renamed = f" (renamed from {result.previous})" if result.previous else ""
    return f"{result.name} is {done}{renamed}; the AI can use it from the next message."


def render_reloaded(result: Reloaded) -> str:
    """What a reload did, or every problem that kept the actions in use."""
    if not result.ok:
        problems = "\n".join(f"  - {p}" for p in result.problems)
        return (
            f"{result.source} was not reloaded; the actions in use stay as they were:\n{problems}"
        )
    parts = [
        f"{what} {', '.join(names)}"
        for what, names in (
            ("added", result.added),
            ("removed", result.removed),
            ("changed", result.changed),
        )
        if names
    ]
    return f"Reloaded {result.source}: " + ("; ".join(parts) if parts else "no change") + "."
