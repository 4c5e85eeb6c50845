"""The living action catalogue of a running bot: the actions file's actions plus those made
in chat (`/actions new`, kept in the database), in the one `ActionSet` every part holds.

The file is watched (`watchfiles`) and read again on SIGHUP and on `/actions reload`; the
chat-made actions are looked at as often, so a change made on another replica arrives too.
A valid new set replaces the one in use at once, between turns (a turn in progress finishes
with the actions it started with); an invalid file changes nothing, and its problems are
logged and returned to the admin who asked. Admin toggles live in the database by name, so
they survive a reload. Secrets of new actions are protected (logs, echoed responses) before
the set is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import watchfiles

from actionbot.app import catalogue_actions, load_configured_actions, secret_values
from bot.actions.loader import check_chat_action
from bot.actions.models import Action, ActionSet
from bot.admin.results import Reloaded
from bot.errors import ActionsFileError, ConfigError
from bot.outbound.egress import EgressPolicy
from bot.outbound.webhooks import WebhookClient
from bot.runtime.config import Settings
from bot.runtime.logs import protect_secrets
from bot.store import ChatActions

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 200
"""Changes closer together than this are one reload (an editor writes a file in steps)."""
LOOK_AGAIN_MS = 2000
"""Besides change events, the file and the chat-made actions are compared with what was last
read this often: a change the watcher could not see (before it started, on a file system
without events, or made on another replica) is picked up all the same."""


class Catalogue:
    """Reads the file and the chat-made actions into the set every part of the bot holds."""

    def __init__(
        self,
        settings: Settings,
        actions: ActionSet,
        *,
        webhooks: WebhookClient,
        store: ChatActions,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.actions = actions
        self.webhooks = webhooks
        self.store = store
        self.environ = os.environ if environ is None else environ
        self.policy = EgressPolicy(settings.egress_allow_entries)
        self._lock = asyncio.Lock()
        self._read: tuple[str, str | None] = (_fingerprint(self.path), None)
        """The file and the chat-made actions as last read: what a change is measured by
        (the chat-made ones are first measured by the watcher's first look)."""

    @property
    def path(self) -> Path:
        return self.settings.actions_path

    async def reload(self, why: str) -> Reloaded:
        """Read the file and the chat-made actions; if the file is valid, use them. One
        reload at a time."""
        async with self._lock:
            made = await self.store.chat_actions()
            self._read = (_fingerprint(self.path), _chat_fingerprint(made))
            try:
                fresh = load_configured_actions(self.settings, environ=self.environ)
            except ActionsFileError as exc:
                problems = [str(problem) for problem in exc.problems]
            except ConfigError as exc:
                problems = [str(exc)]
            else:
                merged = catalogue_actions(self.settings, fresh, made, environ=self.environ)
                return self._use(merged, why)
        logger.warning(
            "%s not reloaded (%s); the actions in use stay:\n%s",
            self.path,
            why,
            "\n".join(f"  - {p}" for p in problems),
        )
        return Reloaded(str(self.path), problems=problems)

    def check(self, definition: dict[str, Any], *, editing: str | None = None) -> Action:
        """A definition made in chat, checked as the file's actions are; its name may not be
        another action's (`editing` is the one it replaces). `ActionsFileError` lists the
        problems by field."""
        taken = [name for name in self.actions.names() if name != editing]
        return check_chat_action(definition, taken=taken, environ=self.environ, policy=self.policy)

    def _use(self, fresh: ActionSet, why: str) -> Reloaded:
        before = {a.name: a for a in self.actions}
        after = {a.name: a for a in fresh}
        result = Reloaded(
            str(self.path),
            added=[name for name in after if name not in before],
            removed=[name for name in before if name not in after],
            changed=[n for n in after if n in before and _differs(before[n], after[n])],
        )
        if not (result.added or result.removed or result.changed):
            return result
        secrets = secret_values(self.settings, fresh, self.environ)
        protect_secrets(secrets)  # before any call of a new action can log or echo one
        self.webhooks.protect(secrets)
        self.actions.replace(fresh)
        logger.info(
            "actions reloaded from %s (%s): %d in use; added %s, removed %s, changed %s",
            self.path,
            why,
            len(fresh),
            ", ".join(result.added) or "none",
            ", ".join(result.removed) or "none",
            ", ".join(result.changed) or "none",
        )
        return result

    async def watch(self, stop: asyncio.Event | None = None) -> None:
        """Reload whenever the file or the chat-made actions change, until cancelled (or
        `stop` is set). The file's folder is watched, so a file replaced by a rename
        (editors, Kubernetes config maps) is seen."""
        folder, name = self.path.resolve().parent, self.path.name

        def is_the_file(_: watchfiles.Change, changed: str) -> bool:
            return Path(changed).name == name

        started = False
        async for _ in watchfiles.awatch(
            folder,
            watch_filter=is_the_file,
            debounce=DEBOUNCE_MS,
            stop_event=stop,
            rust_timeout=LOOK_AGAIN_MS,
            yield_on_timeout=True,
        ):
            if not started:
                started = True
                logger.info("watching %s for changes", self.path)
            await self._look_again()

    async def _look_again(self) -> None:
        try:
            made = _chat_fingerprint(await self.store.chat_actions())
        except Exception:  # the database is down: look again next time
            logger.warning("could not read the actions made in chat", exc_info=True)
            return
        now = _fingerprint(self.path)
        if self._read[1] is None:  # the first look: what the bot started with
            self._read = (self._read[0], made)
        if (now, made) == self._read:
            return
        if now != self._read[0]:
            # A file being written (truncated, then filled) must not be read half-way: it
            # is read once it has stayed the same for a debounce time.
            await asyncio.sleep(DEBOUNCE_MS / 1000)
            if _fingerprint(self.path) != now:
                return  # still changing: the next event or look takes it
        await self.reload("the actions changed")


def _fingerprint(path: Path) -> str:
    """The file's content as a hash ("" when it cannot be read: that is a change too)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _chat_fingerprint(made: list[Any]) -> str:
    return hashlib.sha256(repr([(c.name, c.updated_at) for c in made]).encode()).hexdigest()


def _differs(old: Action, new: Action) -> bool:
    return old.model_dump() != new.model_dump()
