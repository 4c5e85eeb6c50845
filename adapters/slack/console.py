"""The interactive `/actions` console on Slack: one Block Kit section per action (its last
24 hours) with an Enable/Disable button, and the clicks on those buttons.

The console is an ephemeral message, which Slack lets an app change only through the
click's `response_url`: a click redraws it there (`replace_original`). Every click is
checked again (the bot's own workspace, and an admin, as for the command itself), since
anyone who sees the message could otherwise press a button of a forwarded payload.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.slack.blocks import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    Block,
    button,
    clip,
    context,
    header,
    section,
)
from adapters.slack.format import escape
from bot import wording
from bot.admin.console import Console, ConsoleRow, milliseconds, percent, render_console
from bot.admin.operations import Admin
from bot.runtime.tasks import Turns

logger = logging.getLogger(__name__)

TOGGLE_ACTION = "actionbot_console_toggle"
"""The `action_id` of every console button; its value is `enable:NAME` or `disable:NAME`."""
MAX_ROWS = MAX_BLOCKS - 5
"""Rows shown: the header, the notice, the guardrails, the "more" note and the footer take
the rest."""
FOOTER = "Last 24 hours. Each press is checked again: only admins can change an action."

Respond = Callable[..., Awaitable[Any]]


def console_blocks(console: Console) -> list[Block]:
    """The console: a header, what the last press did, one section and button per action."""
    blocks: list[Block] = [header("Custom Actions")]
    if console.notice:
        blocks.append(context(f":information_source: {escape(console.notice)}"))
    if console.guards:
        blocks.append(guards_block(console.guards))
    if not console.rows:
        return [*blocks, section(escape(render_console(Console([]))))]
    blocks += [_row(row) for row in console.rows[:MAX_ROWS]]
    hidden = len(console.rows) - MAX_ROWS
    if hidden > 0:
        blocks.append(
            context(f"…and {hidden} more: `/actions list`, then `/actions enable|disable NAME`.")
        )
    blocks.append(context(FOOTER))
    return blocks


def guards_block(lines: list[str]) -> Block:
    """The guardrails in effect (an open breaker, a dry run), one line each, as context."""
    text = "\n".join(f":warning: {escape(line)}" for line in lines)
    return context(clip(text, MAX_SECTION_TEXT))


def _row(row: ConsoleRow) -> Block:
    state = ":large_green_circle: active" if row.active else ":white_circle: inactive"
    calls = f"{row.calls} call" + ("" if row.calls == 1 else "s")
    text = (
        f"*{escape(row.display_name)}*  `{escape(row.name)}`\n"
        f"{state} · {calls} · success {percent(row.success_rate)}"
        f" · p95 {milliseconds(row.p95_latency_ms)}"
    )
    toggle = (
        button("Disable", TOGGLE_ACTION, f"disable:{row.name}", "danger")
        if row.active
        else button("Enable", TOGGLE_ACTION, f"enable:{row.name}", "primary")
    )
    return section(text, accessory=toggle, block_id=f"actionbot_console:{row.name}")


def console_text(console: Console) -> str:
    """The message's plain `text` (notifications, screen readers)."""
    return escape(render_console(console))[:3000]


class ConsoleButtons:
    """The clicks on one adapter's console buttons."""

    def __init__(
        self,
        *,
        admin: Admin,
        is_admin: Callable[[str], Awaitable[bool]],
        team: Callable[[], str],
        turns: Turns,
    ) -> None:
        self._admin = admin
        self._is_admin = is_admin
        self._team = team
        self._turns = turns

    async def on_toggle(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond
    ) -> None:
        """Acknowledge at once (Slack's 3 seconds); the check and the toggle run after."""
        await ack()
        user = str(body.get("user", {}).get("id", ""))
        self._turns.spawn(
            self.toggle(body, respond), name=f"slack console click by {user}", queued=False
        )

    async def toggle(self, body: dict[str, Any], respond: Respond) -> None:
        """Refuse a click from another workspace or a non-admin (privately, nothing
        changes); otherwise toggle the action and redraw the console in place."""
        user = str(body.get("user", {}).get("id", ""))
        team = str(body.get("team", {}).get("id", "") or body.get("user", {}).get("team_id", ""))
        value = str((body.get("actions") or [{}])[0].get("value", ""))
        if team != self._team() or not await self._is_admin(user):
            logger.info("refused a console click %r from slack:%s of team %s", value, user, team)
            await respond(text=wording.NOT_ADMIN, response_type="ephemeral", replace_original=False)
            return
        verb, _, name = value.partition(":")
        if verb not in {"enable", "disable"} or not name:
            logger.warning("ignored a console click with value %r", value)
            return
        console = await self._admin.toggle_from_console(
            name, verb == "enable", actor=f"slack:{user}"
        )
        await respond(
            replace_original=True, text=console_text(console), blocks=console_blocks(console)
        )
