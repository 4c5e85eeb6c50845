"""Actions made in chat: `/actions new`, `/actions edit NAME` (a form on the platform) and
`/actions delete NAME`. A saved form is checked exactly as an `[[actions]]` table of the
file is, kept in the database, and offered from the next turn (the running bot's catalogue
reloads); actions of the file are edited in the file, never from chat."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from bot.actions.models import Action, ActionSet
from bot.admin.render import FORMS_ONLY
from bot.admin.results import ActionDeleted, ActionForm, ActionProblems, ActionSaved, Reloaded
from bot.errors import ActionBotError, ActionsFileError, AdminUsageError
from bot.store import ChatActions

logger = logging.getLogger(__name__)


class Catalogue(Protocol):
    """The running bot's action catalogue (`actionbot.catalogue.Catalogue`)."""

    def check(self, definition: dict[str, Any], *, editing: str | None = None) -> Action:
        """The definition checked as the file's actions are; `ActionsFileError` if not."""
        ...

    async def reload(self, why: str) -> Reloaded:
        """Read the file and the chat-made actions again now."""
        ...


class FileActionError(ActionBotError):
    """An action of the actions file cannot be changed from chat."""

    def __init__(self, name: str, verb: str) -> None:
        super().__init__(
            f"{name} is defined in the actions file: {verb} it there (the bot reloads the "
            "file by itself when it changes)."
        )


class Editing:
    """Chat-made actions: forms, saving and deleting."""

    def __init__(self, actions: ActionSet, store: ChatActions) -> None:
        self.actions = actions
        self.store = store
        self.catalogue: Catalogue | None = None
        """Set by `actionbot run`; without it (the shell) forms cannot be saved."""

    async def form(self, editing: str | None) -> ActionForm:
        """An empty form, or the chat-made action `editing`'s definition to change."""
        if editing is None:
            return ActionForm()
        action = self.actions.get(editing)
        if action.origin == "file":
            raise FileActionError(editing, "edit")
        kept = {made.name: made for made in await self.store.chat_actions()}
        definition = kept[editing].definition if editing in kept else {}
        return ActionForm(editing, definition)

    async def save(
        self, definition: dict[str, Any], *, actor: str, editing: str | None = None
    ) -> ActionSaved | ActionProblems:
        """Check and keep a submitted form; the catalogue then offers it."""
        if self.catalogue is None:
            raise AdminUsageError(FORMS_ONLY)
        if editing is not None and self.actions.get(editing).origin == "file":
            raise FileActionError(editing, "edit")
        try:
            action = self.catalogue.check(definition, editing=editing)
        except ActionsFileError as exc:
            return ActionProblems(exc.problems)
        kept = _as_written(definition, action)
        await self.store.save_chat_action(action.name, kept, actor=actor, previous=editing)
        logger.info(
            "action %s %s in chat by %s", action.name, "changed" if editing else "made", actor
        )
        await self.catalogue.reload(f"{action.name} saved by {actor}")
        renamed = editing if editing is not None and editing != action.name else None
        return ActionSaved(action.name, created=editing is None, previous=renamed)

    async def delete(self, name: str, *, actor: str) -> ActionDeleted:
        """Delete a chat-made action (its calls stay in the stats)."""
        if name in self.actions and self.actions.get(name).origin == "file":
            raise FileActionError(name, "remove")
        if not await self.store.delete_chat_action(name):
            self.actions.get(name)  # an unknown name says which ones exist
            raise FileActionError(name, "remove")
        logger.info("action %s deleted in chat by %s", name, actor)
        if self.catalogue is not None:
            await self.catalogue.reload(f"{name} deleted by {actor}")
        return ActionDeleted(name)


def _as_written(definition: dict[str, Any], action: Action) -> dict[str, Any]:
    """What is kept: the submitted fields, with the name the check settled on (one derived
    from the display name when none was given)."""
    return {**definition, "name": action.name}
