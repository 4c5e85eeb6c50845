"""What each `/actions` operation returns: plain values that every front end renders its
own way (`render.render_text` for the shell and the console, Block Kit on Slack, embeds on
Discord)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.actions.models import Action, Parameter
from bot.admin.console import Console, Resumed
from bot.errors import Problem
from bot.store import ActionStats, AuditRow, RecentActivity
from bot.types import ActionResult


@dataclass(frozen=True)
class ActionRow:
    """One line of `/actions list`."""

    name: str
    display_name: str
    method: str
    host: str
    active: bool
    calls: int
    origin: str = "file"
    """Where it was defined: `file` (the actions file) or `chat` (`/actions new`)."""
    mode: str = "live"
    """`live`, or `dry_run` (the file's `mode` or `/actions dryrun`)."""
    breaker: str = "closed"
    """The circuit breaker: `closed`, `open` or `half_open`."""


@dataclass(frozen=True)
class ActionList:
    rows: list[ActionRow]


@dataclass(frozen=True)
class ActionDetail:
    """`/actions show`: the definition as the admin wrote it, with secrets masked."""

    action: Action
    active: bool
    changed_by: str | None
    changed_at: datetime | None
    calls: int

    @property
    def parameters(self) -> list[Parameter]:
        return self.action.parameters


@dataclass(frozen=True)
class Toggled:
    name: str
    active: bool
    changed: bool
    """False when the action already was in that state."""


@dataclass(frozen=True)
class StatsReport:
    rows: list[ActionStats]
    name: str | None
    messages: dict[str, int] = field(default_factory=dict)
    """Customer messages by state: answered (done), failed, waiting (pending)."""
    call_log_days: int = 0
    """Days call rows are kept (they feed p95); 0: forever."""
    recent: RecentActivity | None = None
    """With a name: its calls of the last 24 hours (sparkline and outcomes)."""
    handoffs: tuple[int, int] = (0, 0)
    """Conversations handed to a person: ever, and still with a person."""

    def notes(self) -> list[str]:
        """What the numbers cover, retries, and how customer messages fared."""
        kept = f"the last {self.call_log_days} days" if self.call_log_days else "all time"
        lines = [
            "Calls, outcomes and averages count every call ever made; "
            f"p95 covers the latest calls of {kept}."
        ]
        retried = [f"{s.action} {s.attempts - s.calls}" for s in self.rows if s.attempts > s.calls]
        if retried:
            lines.append("Extra tries (retries): " + ", ".join(retried) + ".")
        return lines + self.messages_line() + self.handoffs_line()

    def handoffs_line(self) -> list[str]:
        total, open_now = self.handoffs
        if not total:
            return []
        return [f"Handed to a person: {total} conversations, {open_now} still with a person."]

    def messages_line(self) -> list[str]:
        """How customer messages fared, when there were any."""
        if not any(self.messages.values()):
            return []
        done, failed = self.messages.get("done", 0), self.messages.get("failed", 0)
        waiting = self.messages.get("pending", 0)
        return [f"Customer messages: {done} answered, {failed} failed, {waiting} waiting."]


@dataclass(frozen=True)
class TestReport:
    """`/actions test`: what was sent and how the call ended."""

    __test__ = False  # a result type, not a pytest test class

    arguments: dict[str, object]
    result: ActionResult
    body: str
    """The response body, trimmed to the budget the model gets."""


@dataclass(frozen=True)
class DryRunSet:
    """`/actions dryrun NAME on|off`."""

    name: str
    on: bool
    changed: bool
    """False when the action already was in that mode."""


@dataclass(frozen=True)
class AuditReport:
    """`/actions audit NAME`: its latest calls, newest first."""

    name: str
    rows: list[AuditRow]


@dataclass(frozen=True)
class Notice:
    """A message for the admin: usage help, or why a command was refused."""

    text: str
    error: bool = False


@dataclass(frozen=True)
class Reloaded:
    """`/actions reload`: what changed, or why the actions in use were kept."""

    source: str
    problems: list[str] = field(default_factory=list)
    """Why the file could not be used: then nothing changed."""
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ActionForm:
    """`/actions new` and `/actions edit NAME`: the platform opens a form (a modal) with
    every field, empty or with the action's definition."""

    editing: str | None = None
    definition: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionSaved:
    """A form was saved: the action is offered from the next turn."""

    name: str
    created: bool
    previous: str | None = None
    """The name it had, when an edit renamed it."""


@dataclass(frozen=True)
class ActionProblems:
    """A form was not saved: every problem, each with the field it is about (for the
    platform to show next to that field)."""

    problems: list[Problem]


@dataclass(frozen=True)
class ActionDeleted:
    name: str


AdminResult = (
    ActionList
    | ActionDetail
    | Toggled
    | StatsReport
    | TestReport
    | Notice
    | Console
    | Resumed
    | Reloaded
    | ActionForm
    | ActionSaved
    | ActionProblems
    | ActionDeleted
    | DryRunSet
    | AuditReport
)
