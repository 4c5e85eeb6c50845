"""Discord replies for the `/actions` results that say whether something held: `reload` as
what changed (or every problem that kept the actions in use), a form that was not saved as
each problem with its field, and `test NAME` as the call's status, latency, arguments and
response body, within Discord's embed limits.

Problems, errors and response bodies come from files, admins and endpoints: they stay inert,
and a body sits in a code block nothing inside can close.
"""

from __future__ import annotations

import discord

from adapters.discord.embeds import MAX_DESCRIPTION, MAX_FIELD_VALUE, Card, embed_field, line_fields
from adapters.discord.markdown import code_block, inline_code, prose, safe
from bot.admin.results import ActionProblems, Reloaded, TestReport

RELOADED_TITLE = "Actions reloaded"
NOT_RELOADED_TITLE = "Actions file not reloaded"
NOT_SAVED_TITLE = "Not saved"


def reloaded_cards(result: Reloaded) -> list[Card]:
    """`/actions reload`: what changed, or every problem that kept the actions in use."""
    if not result.ok:
        lines = [f"• {prose(problem)}" for problem in result.problems]
        intro = "The actions in use stay as they were. Fix these, save, and the bot reloads:"
        return [
            Card(
                discord.Colour.orange(),
                NOT_RELOADED_TITLE,
                safe(f"{result.source}: {intro}"),
                line_fields("Problems", lines),
            )
        ]
    changes = [
        embed_field(what, ", ".join(inline_code(n) for n in names))
        for what, names in (
            ("Added", result.added),
            ("Removed", result.removed),
            ("Changed", result.changed),
        )
        if names
    ]
    said = f"From {safe(result.source)}." + ("" if changes else " No change.")
    return [Card(discord.Colour.green(), RELOADED_TITLE, said, changes)]


def problems_cards(result: ActionProblems) -> list[Card]:
    """A form that was not saved: each problem with its field."""
    lines = [
        f"**{safe(problem.field or 'action')}**: {safe(problem.message)}"
        for problem in result.problems
    ]
    return [Card(discord.Colour.orange(), NOT_SAVED_TITLE, None, line_fields("Fix these", lines))]


def call_test_cards(report: TestReport) -> list[Card]:
    """`/actions test`: how the call ended, what was sent, and the response body."""
    result = report.result
    emoji = "✅" if result.ok else "⚠️"
    colour = discord.Colour.green() if result.ok else discord.Colour.orange()
    status = f"HTTP {result.status}" if result.status is not None else "no HTTP status"
    fields = [
        embed_field("Status", status, inline=True),
        embed_field("Latency", f"{result.latency_ms:.0f} ms", inline=True),
    ]
    if report.arguments:
        pairs = "\n".join(f"{k}={v}" for k, v in report.arguments.items())
        fields.append(embed_field("Arguments", code_block(safe(pairs), limit=MAX_FIELD_VALUE)))
    if result.error:
        fields.append(embed_field("Error", prose(result.error)))
    title = safe(f"{emoji} {result.action}: {result.outcome.value}")
    language = "json" if result.data is not None else ""
    body = report.body.strip()
    description = (
        code_block(safe(body), limit=MAX_DESCRIPTION, language=language)
        if body
        else "*The response had no body.*"
    )
    return [Card(colour, title, description, fields)]
