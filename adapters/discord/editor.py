"""Making and changing actions from Discord: `/actions new` and `/actions edit NAME`.

The command opens the details form (a modal; `forms`) over a fresh draft (`drafts`); each
submit and each click on the draft card (`draft_card`) then goes through `ActionEditor`,
which judges the caller again every time (the same rule as the commands: an admin whose
permission was taken away meanwhile is refused), handles each interaction once (`once`),
applies what was typed, checks the draft as the core checks an action, and redraws the
card. **Save** hands the definition to `Admin.editing.save`: the core checks it once more,
keeps it and reloads the catalogue, and the card becomes the result; problems come back by
field, and nothing is saved. A draft that is gone (saved, cancelled, expired, or lost in a
restart) is answered with a line saying so.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import discord

from adapters.discord import draft_card, drafts, forms
from adapters.discord import wording as discord_wording
from adapters.discord.format import admin_reply
from adapters.discord.once import first_delivery
from adapters.discord.posting import NO_PINGS
from bot.actions.loader import CHAT_SOURCE
from bot.admin.operations import ActionForm, ActionProblems, Admin
from bot.errors import ActionBotError, Problem
from bot.store import Leases

logger = logging.getLogger(__name__)


class ActionEditor:
    """The forms of one Discord client, with the drafts they fill in."""

    def __init__(
        self,
        *,
        admin: Admin,
        platform: str,
        is_admin: Callable[[discord.Interaction], bool],
        leases: Leases | None = None,
    ) -> None:
        self.admin = admin
        self.platform = platform
        self.is_admin = is_admin
        self.leases = leases
        self.drafts = drafts.Drafts()

    def register(self, client: discord.Client) -> None:
        """Answer every submit of a form and every click on a card of `client`."""
        draft_card.register(client, self.on_step)
        client.event(self.on_interaction)

    async def open(self, interaction: discord.Interaction, form: ActionForm) -> None:
        """`/actions new` or `/actions edit NAME` (already judged): the details form, empty
        or with the kept definition (parameters and every other field are kept too)."""
        definition = copy.deepcopy(form.definition)
        draft = self.drafts.open(interaction.user.id, form.editing, definition)
        await interaction.response.send_modal(forms.details_modal(draft))

    async def on_interaction(self, interaction: discord.Interaction, /) -> None:
        """A submit of one of the forms (every other interaction is someone else's)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        raw: dict[str, Any] = dict(interaction.data or {})
        found = forms.FORM_ID.fullmatch(str(raw.get("custom_id", "")))
        if found is None or not await self._admitted(interaction):
            return
        draft = self.drafts.get(found["draft"], interaction.user.id)
        if draft is None:
            await _gone(interaction)
            return
        async with draft.lock:
            if not self.drafts.holds(draft):  # saved or cancelled by the step before
                await _gone(interaction)
                return
            values = forms.submitted_values(raw)
            match found["step"]:
                case "details":
                    drafts.apply_details(draft, values)
                case "settings":
                    drafts.apply_settings(draft, values)
                case _:
                    index = int(found["index"]) if found["index"] else None
                    drafts.apply_parameter(draft, values, index)
            self._check(draft)
            await _show(interaction, draft)

    async def on_step(
        self, interaction: discord.Interaction, step: str, draft_id: str, value: str | None
    ) -> None:
        """A click on a draft card's button or select."""
        if not await self._admitted(interaction):
            return
        draft = self.drafts.get(draft_id, interaction.user.id)
        if draft is None:
            await _gone(interaction)
            return
        async with draft.lock:
            if not self.drafts.holds(draft):
                await _gone(interaction)
                return
            await self._step(interaction, draft, step, value)

    async def _step(
        self, interaction: discord.Interaction, draft: drafts.Draft, step: str, value: str | None
    ) -> None:
        match step:
            case "details" | "settings":
                await interaction.response.send_modal(forms.modal_for(draft, step))
            case "parameter":
                await interaction.response.send_modal(forms.parameter_modal(draft, None))
            case "fix":
                await self._fix(interaction, draft)
            case "change":
                await interaction.response.send_modal(forms.parameter_modal(draft, _index(value)))
            case "remove":
                if (index := _index(value)) is not None:
                    drafts.remove_parameter(draft, index)
                self._check(draft)
                await _show(interaction, draft)
            case "save":
                await self._save(interaction, draft)
            case _:
                self.drafts.discard(draft)
                await interaction.response.edit_message(
                    content=discord_wording.DRAFT_CANCELLED, embeds=[], view=None
                )

    async def _fix(self, interaction: discord.Interaction, draft: drafts.Draft) -> None:
        """The form of the first problem, as it was typed."""
        target = drafts.fix_target(draft)
        if target is None:  # fixed meanwhile: the card as it is now
            await _show(interaction, draft)
            return
        step, index = target
        await interaction.response.send_modal(forms.modal_for(draft, step, index))

    async def _save(self, interaction: discord.Interaction, draft: drafts.Draft) -> None:
        """Keep the action, or show why not (nothing is saved then)."""
        if draft.input_problems:
            await _show(interaction, draft)
            return
        actor = f"{self.platform}:{interaction.user.id}"
        try:
            result = await self.admin.editing.save(
                drafts.submitted(draft), actor=actor, editing=draft.editing
            )
        except ActionBotError as exc:  # a file action, an action deleted meanwhile…
            draft.problems = [Problem(str(exc), CHAT_SOURCE)]
            await _show(interaction, draft)
            return
        if isinstance(result, ActionProblems):
            draft.problems = result.problems
            await _show(interaction, draft)
            return
        self.drafts.discard(draft)
        content, embeds = admin_reply(result)
        await interaction.response.edit_message(content=content, embeds=embeds, view=None)

    def _check(self, draft: drafts.Draft) -> None:
        catalogue = self.admin.editing.catalogue
        if catalogue is None:
            drafts.check(draft, None)
            return

        def run(definition: dict[str, Any]) -> object:
            return catalogue.check(definition, editing=draft.editing)

        drafts.check(draft, run)

    async def _admitted(self, interaction: discord.Interaction) -> bool:
        """Once per interaction, and only for an admin (judged again now)."""
        if self.leases is not None and not await first_delivery(self.leases, interaction):
            return False
        if self.is_admin(interaction):
            return True
        logger.info(
            "refused an action form step from non-admin %s:%s", self.platform, interaction.user.id
        )
        await interaction.response.send_message(
            discord_wording.NOT_ADMIN_DISCORD, ephemeral=True, allowed_mentions=NO_PINGS
        )
        return False


async def _show(interaction: discord.Interaction, draft: drafts.Draft) -> None:
    """The card: edited in place when the interaction came from it, else a new one."""
    embeds, view = draft_card.card(draft)
    if interaction.message is not None:
        await interaction.response.edit_message(content=None, embeds=embeds, view=view)
        return
    await interaction.response.send_message(
        embeds=embeds, view=view, ephemeral=True, allowed_mentions=NO_PINGS
    )


async def _gone(interaction: discord.Interaction) -> None:
    """The draft is no more: a line saying so (the card, if any, is left as it was)."""
    await interaction.response.send_message(
        discord_wording.draft_gone(drafts.DRAFT_SECONDS // 60),
        ephemeral=True,
        allowed_mentions=NO_PINGS,
    )


def _index(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None
