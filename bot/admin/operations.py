"""The `/actions` admin operations, platform-neutral.

Three separate steps so every front end (shell, console, Slack, Discord) shares them:
`parse_command` turns text into an `AdminCommand`, `Admin.run` executes it and returns a
result value (`results`), and each adapter renders that value its own way (`render_text`,
from `render`, is the plain-text rendering used by the shell and the console). Input
mistakes never raise out of `Admin.execute`: they come back as a `Notice` carrying the
usage text.
"""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass, field
from typing import Literal

from bot.actions.models import ActionSet, parse_arguments
from bot.admin.breakers import stored_open
from bot.admin.console import (
    WINDOW_HOURS,
    Console,
    ConsoleRow,
    Resumed,
    console_rows,
    guard_lines,
    table,
)
from bot.admin.editing import Editing
from bot.admin.render import render_text
from bot.admin.results import (
    ActionDeleted,
    ActionDetail,
    ActionForm,
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
)
from bot.errors import ActionBotError, AdminUsageError
from bot.outbound.webhooks import WebhookClient
from bot.store import AdminStore, RecentActivity
from bot.types import caller_header, trim

__all__ = [
    "USAGE",
    "VERBS",
    "ActionDeleted",
    "ActionDetail",
    "ActionForm",
    "ActionList",
    "ActionProblems",
    "ActionRow",
    "ActionSaved",
    "Admin",
    "AdminCommand",
    "AdminResult",
    "AuditReport",
    "Console",
    "ConsoleRow",
    "DryRunSet",
    "Notice",
    "Reloaded",
    "Resumed",
    "StatsReport",
    "TestReport",
    "Toggled",
    "Verb",
    "parse_command",
    "parse_key_values",
    "render_text",
    "table",
]

logger = logging.getLogger(__name__)

AUDIT_ROWS = 10
"""Calls `/actions audit NAME` shows; `actionbot actions audit` exports them all."""

NO_RELOAD = (
    "Only the running bot reloads its actions: it does so by itself when the actions file "
    "changes, on SIGHUP (`docker compose kill -s HUP actionbot`), or with /actions reload in "
    "chat."
)

Verb = Literal[
    "list",
    "show",
    "enable",
    "disable",
    "stats",
    "test",
    "resume",
    "reload",
    "new",
    "edit",
    "delete",
    "dryrun",
    "audit",
    "console",
    "help",
]
VERBS: tuple[Verb, ...] = (
    "list",
    "show",
    "enable",
    "disable",
    "stats",
    "test",
    "resume",
    "reload",
    "new",
    "edit",
    "delete",
    "dryrun",
    "audit",
    "console",
    "help",
)
NO_WORDS = frozenset({"list", "help", "console", "reload", "new"})
NEEDS_NAME = frozenset({"show", "enable", "disable", "test", "edit", "delete", "dryrun", "audit"})
ON_OFF = {"on": True, "off": False}

USAGE = """\
/actions list                        every action with its state and call count
/actions show NAME                   one action's definition (secrets masked)
/actions enable NAME                 offer the action to the AI again
/actions disable NAME                stop offering the action (nothing is deleted)
/actions stats [NAME]                calls, failures by outcome, latency, last error
/actions test NAME key=value ...     call the endpoint once with these arguments
/actions resume [CONVERSATION]       answer again where a person took over (here)
/actions reload                      read the actions file again now
/actions new | edit NAME             make or change an action in a form (Slack, Discord)
/actions delete NAME                 delete an action made in chat
/actions dryrun NAME on|off          nothing is sent; the AI is shown what would have been
/actions audit NAME                  its last 10 calls: who asked, arguments, outcome
/actions                             the console: every action with an on/off button
/actions help                        this text"""


@dataclass(frozen=True)
class AdminCommand:
    """One parsed `/actions` command."""

    verb: Verb
    name: str | None = None
    arguments: dict[str, str] = field(default_factory=dict)


def parse_command(text: str) -> AdminCommand:
    """Parse `[/actions] VERB [NAME] [key=value ...]`; `AdminUsageError` says what is wrong."""
    words = _split(text)
    if words and words[0].lower() in {"/actions", "actions"}:
        words = words[1:]
    if not words:
        return AdminCommand("console")
    verb = next((v for v in VERBS if v == words[0].lower()), None)
    rest = words[1:]
    if verb is None:
        raise AdminUsageError(f"Unknown subcommand {words[0]!r}.")
    name = rest[0] if rest else None
    if verb in NEEDS_NAME and name is None:
        raise AdminUsageError(f"`{verb}` needs an action name.")
    if verb == "dryrun":
        if len(rest) != 2 or rest[1].lower() not in ON_OFF:
            raise AdminUsageError("`dryrun` needs an action name and `on` or `off`.")
        return AdminCommand(verb, name, {"mode": rest[1].lower()})
    if verb != "test" and len(rest) > (0 if verb in NO_WORDS else 1):
        raise AdminUsageError(f"Too many words for `{verb}`.")
    return AdminCommand(verb, name, _key_values(rest[1:]) if verb == "test" else {})


_STRAIGHT_QUOTES = str.maketrans("“”‘’", "\"\"''")


def _split(text: str) -> list[str]:
    # Chat clients turn straight quotes into typographic ones; shlex needs straight quotes.
    normalised = text.translate(_STRAIGHT_QUOTES)
    try:
        return shlex.split(normalised)
    except ValueError as exc:
        raise AdminUsageError(f"Could not read the command: {exc}.") from None


def parse_key_values(text: str) -> dict[str, str]:
    """`part_name=screen device_model="iPhone 15 Pro"` as a dict; `AdminUsageError` if not."""
    return _key_values(_split(text))


def _key_values(words: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise AdminUsageError(f"Arguments are key=value pairs; {word!r} is not one.")
        values[key] = value
    return values


# --- execution ----------------------------------------------------------------------------


class Admin:
    """Executes admin commands against the loaded actions, the store and the webhook client."""

    def __init__(
        self,
        *,
        actions: ActionSet,
        store: AdminStore,
        webhooks: WebhookClient,
        result_chars: int,
        call_log_days: int = 0,
    ) -> None:
        self.actions = actions
        self.store = store
        self.webhooks = webhooks
        self.result_chars = result_chars
        self.call_log_days = call_log_days
        self.editing = Editing(actions, store)

    async def execute(self, text: str, *, actor: str, where: str = "") -> AdminResult:
        """Parse and run `text`; input mistakes come back as a `Notice` with the usage.
        `where` is the conversation (or channel) the command was run in, for `resume`."""
        try:
            command = parse_command(text)
        except AdminUsageError as exc:
            return Notice(f"{exc}\n\n{USAGE}", True)
        return await self.perform(command, actor=actor, where=where)

    async def perform(self, command: AdminCommand, *, actor: str, where: str = "") -> AdminResult:
        """Run a parsed command; unknown names and bad arguments come back as a `Notice`."""
        try:
            return await self.run(command, actor=actor, where=where)
        except ActionBotError as exc:
            return Notice(
                f"{exc}\n\n{USAGE}" if isinstance(exc, AdminUsageError) else str(exc), True
            )

    async def run(self, command: AdminCommand, *, actor: str, where: str = "") -> AdminResult:
        name = command.name or ""
        match command.verb:
            case "console":
                return await self.console()
            case "resume":
                return await self.resume(command.name or where, actor=actor)
            case "reload":
                catalogue = self.editing.catalogue
                if catalogue is None:
                    return Notice(NO_RELOAD, True)
                return await catalogue.reload(f"/actions reload by {actor}")
            case "new" | "edit":
                return await self.editing.form(command.name)
            case "delete":
                return await self.editing.delete(name, actor=actor)
            case "list":
                return await self.list_actions()
            case "show":
                return await self.show(name)
            case "enable" | "disable":
                return await self.set_active(name, command.verb == "enable", actor=actor)
            case "stats":
                return await self.stats(command.name)
            case "test":
                return await self.test(name, command.arguments, actor=actor)
            case "dryrun":
                on = ON_OFF[command.arguments.get("mode", "")]
                return await self.set_dry_run(name, on, actor=actor)
            case "audit":
                self.actions.get(name)
                return AuditReport(name, await self.store.recent_calls(name, limit=AUDIT_ROWS))
            case _:
                return Notice(USAGE)

    async def active_flags(self) -> dict[str, bool]:
        """Every action's current state: the admin's toggle if any, else the file's `active`."""
        states = await self.store.action_states()
        return {
            a.name: states[a.name].active if a.name in states else a.active for a in self.actions
        }

    async def dry_run_flags(self) -> dict[str, bool]:
        """Every action's dry-run mode: the admin's override if any, else the file's `mode`."""
        modes = await self.store.action_modes()
        return {a.name: modes.get(a.name, a.mode == "dry_run") for a in self.actions}

    async def breaker_states(self) -> dict[str, str]:
        """Breakers not closed: this process's own, else what the store last heard (another
        process, or replica, opened it)."""
        stored = stored_open(await self.store.breakers(), now=time.time())
        return stored | dict(self.webhooks.guard.breakers.open_actions())

    async def list_actions(self) -> ActionList:
        flags = await self.active_flags()
        counts = await self.store.call_counts()
        dry_run = await self.dry_run_flags()
        breakers = await self.breaker_states()
        rows = [
            ActionRow(
                a.name,
                a.display_name,
                a.method.value,
                a.host,
                flags[a.name],
                counts.get(a.name, 0),
                a.origin,
                "dry_run" if dry_run[a.name] else "live",
                breakers.get(a.name, "closed"),
            )
            for a in self.actions
        ]
        return ActionList(rows)

    async def set_dry_run(self, name: str, on: bool, *, actor: str) -> DryRunSet:
        self.actions.get(name)
        was = (await self.dry_run_flags())[name]
        await self.store.set_dry_run(name, on, actor=actor)
        logger.info("action %s dry run %s by %s", name, "on" if on else "off", actor)
        return DryRunSet(name, on, changed=was != on)

    async def show(self, name: str) -> ActionDetail:
        action = self.actions.get(name)
        state = (await self.store.action_states()).get(name)
        calls = (await self.store.call_counts()).get(name, 0)
        return ActionDetail(
            action=action,
            active=state.active if state else action.active,
            changed_by=state.changed_by if state else None,
            changed_at=state.changed_at if state else None,
            calls=calls,
        )

    async def set_active(self, name: str, active: bool, *, actor: str) -> Toggled:
        self.actions.get(name)
        was = (await self.active_flags())[name]
        await self.store.set_active(name, active, actor=actor)
        logger.info("action %s %s by %s", name, "enabled" if active else "disabled", actor)
        return Toggled(name, active, changed=was != active)

    async def stats(self, name: str | None) -> StatsReport:
        recent = None
        if name is not None:
            self.actions.get(name)
            found = await self.store.recent_activity(hours=WINDOW_HOURS, name=name)
            recent = found.get(name) or RecentActivity(action=name, hourly=[0] * WINDOW_HOURS)
        rows = await self.store.stats(name)
        messages = await self.store.inbox_counts()
        handoffs = await self.store.handoff_counts()
        return StatsReport(rows, name, messages, self.call_log_days, recent, handoffs)

    async def console(self, notice: str = "") -> Console:
        """Every action with its state and its last 24 hours, for the buttons."""
        flags = await self.active_flags()
        recent = await self.store.recent_activity(hours=WINDOW_HOURS)
        pairs = [(a.name, a.display_name) for a in self.actions]
        guards = guard_lines(pairs, await self.dry_run_flags(), await self.breaker_states())
        return Console(console_rows(pairs, flags, recent), notice, guards)

    async def toggle_from_console(self, name: str, active: bool, *, actor: str) -> Console:
        """A console button: the toggle, then the console as it is now (to redraw)."""
        try:
            toggled = await self.set_active(name, active, actor=actor)
        except ActionBotError as exc:
            return await self.console(str(exc))
        return await self.console(render_text(toggled))

    async def resume(self, where: str, *, actor: str) -> Resumed:
        """The bot answers again in `where` (a conversation, or every one under a channel)."""
        if not where:
            raise AdminUsageError("Run `resume` in the conversation, or name the conversation.")
        resumed = await self.store.end_handoffs(where, by=actor)
        logger.info("bot resumed in %s by %s", ", ".join(resumed) or where, actor)
        return Resumed(where, resumed)

    async def test(self, name: str, raw: dict[str, str], *, actor: str) -> TestReport:
        action = self.actions.get(name)
        arguments = parse_arguments(action, raw)
        logger.info("action %s tested by %s", name, actor)
        platform, _, user = actor.partition(":")
        result = await self.webhooks.call(
            action,
            arguments,
            conversation=f"admin-test:{actor}",
            caller=caller_header(platform, "", user, ""),
            forced=True,
        )
        return TestReport(dict(arguments), result, trim(result.body_text(), self.result_chars))
