"""Discord replies for the guardrails of `/actions`: `dryrun NAME on|off` as one line of
content, and `audit NAME` as an embed with a field per call (who, where, how it went, the
arguments as sent with secrets masked), newest first, within Discord's embed limits.

Everything shown comes from the call log, which holds what customers and the model wrote:
mentions are escaped, and the arguments sit in a code block nothing inside can close.
"""

from __future__ import annotations

import discord

from adapters.discord.embeds import Card, EmbedField, embed_field
from adapters.discord.markdown import clip, code_block, inline_code, prose, safe
from bot.admin.render import render_audit, render_dry_run
from bot.admin.results import AuditReport, DryRunSet
from bot.store import AuditRow

MAX_CONTENT = 2000
MAX_ARGUMENTS = 300
"""The arguments of one call are cut here: ten calls must fit one message of 6000."""
AUDIT_FOOTER = (
    "Arguments as sent, secrets masked. actionbot actions audit in a shell exports every call."
)
MODE_WORDS = {"dry_run": "🧪 dry run: nothing is sent"}
BREAKER_WORDS = {"open": "🛑 breaker open: calls paused", "half_open": "⏳ breaker half-open"}


def dry_run_content(result: DryRunSet) -> str:
    """What `/actions dryrun` did, as message content."""
    emoji = "🧪" if result.on else "▶️"
    text = render_dry_run(result).replace(result.name, inline_code(result.name), 1)
    return clip(f"{emoji} {text}", MAX_CONTENT)


def guard_words(mode: str, breaker: str) -> str:
    """An action's guardrails in effect (a dry run, a breaker not closed), as the list shows
    them; "" for a live action with its breaker closed."""
    return " · ".join(
        words for words in (MODE_WORDS.get(mode, ""), BREAKER_WORDS.get(breaker, "")) if words
    )


def audit_cards(report: AuditReport) -> list[Card]:
    """`/actions audit NAME`: a field per call, newest first."""
    title = safe(f"Audit: {report.name}")
    colour = discord.Colour.dark_teal()
    if not report.rows:
        return [Card(colour, title, safe(render_audit(report)))]
    count = len(report.rows)
    description = f"The last {count} call{'' if count == 1 else 's'}, newest first."
    fields = [_call_field(row) for row in report.rows]
    return [Card(colour, title, description, fields, footer=AUDIT_FOOTER)]


def _call_field(row: AuditRow) -> EmbedField:
    status = "" if row.status is None else f" · HTTP {row.status}"
    name = f"{row.recorded_at:%Y-%m-%d %H:%M:%S} UTC · {row.outcome}{status}"
    who = f"{row.platform or '-'}:{row.user_id or '-'}"
    tries = f"{row.attempts} {'try' if row.attempts == 1 else 'tries'}"
    lines = [
        f"**Who** {inline_code(who)} in {inline_code(row.channel or '-')}",
        f"{discord.utils.format_dt(row.recorded_at, 'R')} · {row.latency_ms:.0f} ms · {tries}"
        f" · key {inline_code(row.idempotency_key[:12] or '-')}",
    ]
    if row.error:
        lines.append(f"**Error** {clip(prose(row.error), MAX_ARGUMENTS)}")
    lines.append(code_block(safe(row.arguments or "-"), limit=MAX_ARGUMENTS, language="json"))
    return embed_field(safe(name), "\n".join(lines))
