"""The draft card: what `/actions new` and `/actions edit NAME` show between their forms.

An ephemeral message only the admin sees (`card`): the action as typed so far, a reminder
for each URL placeholder still waiting for its parameter, and every problem by its field
("URL: must use https://…"; Discord cannot mark a field inside a modal) with a **Fix**
button that opens that form again with what was typed. Until the details check out it
offers only Fix and Cancel; then **Add parameter**, **Timeout & headers**, **Edit details**,
**Save** and **Cancel**, and selects to change or remove a parameter. A header value that
is not a `${VAR}` reference is never shown (it may be a secret typed by mistake).

The buttons (`actionbot:draft:<step>:<draft>`) and selects
(`actionbot:draft-pick:<step>:<draft>`) are dynamic items, as the console's are, so a click
on a card shown before a restart is still answered (its draft is gone, and the answer says
so). What a click does is `editor.ActionEditor.on_step`.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.discord.drafts import (
    DRAFT_SECONDS,
    Draft,
    field_label,
    fix_target,
    number_text,
    waiting,
)
from adapters.discord.embeds import Card, embed_field, line_fields, to_embeds
from adapters.discord.markdown import clip, inline_code, safe
from adapters.discord.wording import draft_footer
from bot.actions.loader import CHAT_HEADER
from bot.actions.models import derive_name

MAX_OPTIONS = 25
OnStep = Callable[[discord.Interaction, str, str, str | None], Awaitable[None]]
"""What a click does: (interaction, step, draft id, the option chosen in a select)."""
_handlers: weakref.WeakKeyDictionary[discord.Client, OnStep] = weakref.WeakKeyDictionary()


def register(client: discord.Client, on_step: OnStep) -> None:
    """Answer the clicks on every card, including those shown before this process started."""
    _handlers[client] = on_step
    client.add_dynamic_items(DraftButton, DraftPick)


def card(draft: Draft) -> tuple[list[discord.Embed], discord.ui.View]:
    """The draft as typed so far, its problems by field, and the next steps."""
    return to_embeds([_card(draft)]), _card_view(draft)


def _card(draft: Draft) -> Card:
    d = draft.definition
    display = str(d.get("display_name") or "")
    doing = "New action" if draft.editing is None else f"Changing {draft.editing}"
    name = d.get("name")
    if name:
        name_text = inline_code(str(name))
    else:
        name_text = f"{inline_code(derive_name(display) or '-')} (from the display name)"
    timeout = d.get("timeout")
    if isinstance(timeout, int | float):
        timeout_text = f"{number_text(timeout)} s"
    else:  # not given, or not a number (a problem says so)
        timeout_text = "default" if timeout is None else safe(str(timeout))
    fields = [
        embed_field("Name", name_text, inline=True),
        embed_field("Timeout", timeout_text, inline=True),
        embed_field("Endpoint", inline_code(f"{d.get('method') or 'GET'} {d.get('url') or '-'}")),
        *line_fields("Headers", _header_lines(d) or ["none"]),
        *line_fields("Parameters", _parameter_lines(draft) or [_NO_PARAMETERS]),
    ]
    if awaited := waiting(d):
        fields += line_fields(
            "Before saving",
            [f"The URL uses {{{n}}}: add it as a required parameter." for n in awaited],
        )
    problems = draft.shown_problems()
    if problems:
        lines = [f"**{safe(field_label(p.field, draft))}**: {safe(p.message)}" for p in problems]
        fields += line_fields("Not saved: fix these", lines)
    colour = discord.Colour.orange() if problems else discord.Colour.blurple()
    title = f"{doing}: {display}" if display else doing
    description = safe(str(d.get("description") or "*No AI description yet.*"))
    return Card(
        colour,
        safe(title),
        clip(description, 1500),
        fields,
        footer=draft_footer(DRAFT_SECONDS // 60),
    )


_NO_PARAMETERS = "none yet: add one for each value the AI should ask the customer for"


def _header_lines(definition: dict[str, Any]) -> list[str]:
    """Each header with its `${VAR}` reference; any other value is not shown (it may be a
    secret typed by mistake)."""
    lines = []
    for name, value in (definition.get("headers") or {}).items():
        shown = (
            inline_code(str(value))
            if CHAT_HEADER.fullmatch(str(value).strip())
            else "(hidden: not a ${VAR} reference)"
        )
        lines.append(f"{inline_code(str(name))}: {shown}")
    return lines


def _parameter_lines(draft: Draft) -> list[str]:
    lines = []
    for p in draft.parameters:
        need = "required" if p.get("required") else "optional"
        kind = safe(str(p.get("type") or "string"))
        described = safe(str(p.get("description") or "no description"))
        lines.append(
            clip(f"• {inline_code(str(p.get('name')))} ({kind}, {need}) — {described}", 300)
        )
    return lines


def _card_view(draft: Draft) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    target = fix_target(draft)
    if target is not None:
        view.add_item(DraftButton("fix", draft.id, row=0))
    if not draft.ready():
        view.add_item(DraftButton("cancel", draft.id, row=0))
        return view
    for step in ("parameter", "settings", "details"):
        view.add_item(DraftButton(step, draft.id, row=0))
    view.add_item(DraftButton("save", draft.id, row=1))
    view.add_item(DraftButton("cancel", draft.id, row=1))
    if draft.parameters:
        view.add_item(DraftPick("change", draft, row=2))
        view.add_item(DraftPick("remove", draft, row=3))
    return view


BUTTONS: dict[str, tuple[str, discord.ButtonStyle]] = {
    "fix": ("Fix", discord.ButtonStyle.primary),
    "parameter": ("Add parameter", discord.ButtonStyle.secondary),
    "settings": ("Timeout & headers", discord.ButtonStyle.secondary),
    "details": ("Edit details", discord.ButtonStyle.secondary),
    "save": ("Save", discord.ButtonStyle.success),
    "cancel": ("Cancel", discord.ButtonStyle.danger),
}
PICKS = {"change": "Change a parameter…", "remove": "Remove a parameter…"}


class DraftButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"actionbot:draft:(?P<step>fix|parameter|settings|details|save|cancel):"
    r"(?P<draft>[0-9a-f]{8})",
):
    """One step of a draft card; found again from its `custom_id` after a restart."""

    def __init__(self, step: str, draft: str, *, row: int | None = None) -> None:
        label, style = BUTTONS[step]
        super().__init__(
            discord.ui.Button(
                label=label, style=style, custom_id=f"actionbot:draft:{step}:{draft}", row=row
            )
        )
        self.step, self.draft = step, draft

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> DraftButton:
        return cls(match["step"], match["draft"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _dispatch(interaction, self.step, self.draft, None)


class DraftPick(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=r"actionbot:draft-pick:(?P<step>change|remove):(?P<draft>[0-9a-f]{8})",
):
    """A select of the draft's parameters: the one to change (a form opens) or remove."""

    def __init__(self, step: str, draft: Draft | str, *, row: int | None = None) -> None:
        draft_id = draft if isinstance(draft, str) else draft.id
        parameters = [] if isinstance(draft, str) else draft.parameters
        options = [
            discord.SelectOption(
                label=clip(str(p.get("name") or f"#{i + 1}"), 100),
                value=str(i),
                description=clip(str(p.get("description") or ""), 100) or None,
            )
            for i, p in enumerate(parameters[:MAX_OPTIONS])
        ]
        super().__init__(
            discord.ui.Select(
                custom_id=f"actionbot:draft-pick:{step}:{draft_id}",
                placeholder=PICKS[step],
                options=options or [discord.SelectOption(label="-", value="-")],
                row=row,
            )
        )
        self.step, self.draft = step, draft_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> DraftPick:
        return cls(match["step"], match["draft"])

    async def callback(self, interaction: discord.Interaction) -> None:
        values = self.item.values
        await _dispatch(interaction, self.step, self.draft, values[0] if values else None)


async def _dispatch(
    interaction: discord.Interaction, step: str, draft: str, value: str | None
) -> None:
    handler = _handlers.get(interaction.client)
    if handler is None:  # a client without an adapter: nothing can answer
        await interaction.response.defer()
        return
    await handler(interaction, step, draft, value)
