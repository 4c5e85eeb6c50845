"""The interactive `/actions` console's values: one row per action over the last 24 hours
(state, calls, success rate, p95) for the buttons each platform draws, the hourly
sparkline of `/actions stats NAME`, and what `/actions resume` did. Platform-neutral;
`render_*` here are the plain-text renderings (shell, console, fallbacks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.store import RecentActivity

WINDOW_HOURS = 24
SPARK_LEVELS = "▁▂▃▅▇"
"""An hour without calls is the lowest block; any call shows at least the second."""


def sparkline(values: Sequence[int]) -> str:
    """One block per value, scaled to the largest: `▁` for 0, then `▂▃▅▇` by quarter."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK_LEVELS[0] * len(values)
    steps = len(SPARK_LEVELS) - 1
    return "".join(
        SPARK_LEVELS[0] if v <= 0 else SPARK_LEVELS[1 + min(steps - 1, (v * steps - 1) // top)]
        for v in values
    )


@dataclass(frozen=True)
class ConsoleRow:
    """One action in the console: what an admin checks before pressing its button."""

    name: str
    display_name: str
    active: bool
    calls: int
    """Calls in the last `WINDOW_HOURS` hours."""
    success_rate: float | None
    p95_latency_ms: float | None


@dataclass(frozen=True)
class Console:
    """`/actions` with no arguments: every action, with an Enable/Disable button each."""

    rows: list[ConsoleRow]
    notice: str = ""
    """What the last button press did ("check_inventory is now disabled."), if any."""
    guards: list[str] = field(default_factory=list)
    """Guardrails in effect, one line each: an open breaker, a dry run (`guard_lines`)."""


@dataclass(frozen=True)
class Resumed:
    """`/actions resume`: the conversations the bot answers in again."""

    where: str
    conversations: list[str]


def console_rows(
    actions: Sequence[tuple[str, str]], flags: dict[str, bool], recent: dict[str, RecentActivity]
) -> list[ConsoleRow]:
    """Rows for (name, display name) pairs, in the actions file's order."""
    rows = []
    for name, display_name in actions:
        activity = recent.get(name)
        rows.append(
            ConsoleRow(
                name=name,
                display_name=display_name,
                active=flags[name],
                calls=activity.calls if activity else 0,
                success_rate=activity.success_rate if activity else None,
                p95_latency_ms=activity.p95_latency_ms if activity else None,
            )
        )
    return rows


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def activity_lines(recent: RecentActivity) -> list[str]:
    """`/actions stats NAME`'s last 24 hours: the sparkline and the outcomes."""
    peak = max(recent.hourly, default=0)
    outcomes = ", ".join(f"{k} {v}" for k, v in recent.outcomes.items()) or "none"
    return [
        f"Last {len(recent.hourly)} h, calls per hour (oldest first, peak {peak}): "
        f"{sparkline(recent.hourly)}",
        f"Outcomes in the last {len(recent.hourly)} h: {outcomes}.",
    ]


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def render_console(console: Console) -> str:
    if not console.rows:
        return "No actions are defined. Add some to the actions file (see actions.example.toml)."
    rows = [
        [
            r.name,
            r.display_name,
            "active" if r.active else "inactive",
            str(r.calls),
            percent(r.success_rate),
            milliseconds(r.p95_latency_ms),
        ]
        for r in console.rows
    ]
    header = ["NAME", "DISPLAY NAME", "STATE", "CALLS 24H", "SUCCESS", "P95"]
    lines = [table(header, rows)]
    if console.notice:
        lines.insert(0, console.notice)
    return "\n".join(lines + console.guards)


BREAKER_WORDS = {
    "open": "breaker open: its endpoint kept failing, calls are paused",
    "half_open": "breaker half-open: one call is trying the endpoint again",
}


def guard_lines(
    actions: Sequence[tuple[str, str]], dry_run: dict[str, bool], breakers: dict[str, str]
) -> list[str]:
    """One line per action with a guardrail in effect, in the actions' order."""
    lines = []
    for name, _ in actions:
        if name in breakers and breakers[name] in BREAKER_WORDS:
            lines.append(f"{name}: {BREAKER_WORDS[breakers[name]]}")
        if dry_run.get(name):
            lines.append(f"{name}: dry run, nothing is sent (/actions dryrun {name} off)")
    return lines


def render_resumed(resumed: Resumed) -> str:
    if not resumed.conversations:
        return f"No conversation in {resumed.where} is with a person; nothing to resume."
    listed = ", ".join(resumed.conversations)
    return f"I answer again in {listed}."
