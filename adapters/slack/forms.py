"""`/actions new` and `/actions edit NAME` on Slack: a modal with every field of an action,
and its submission.

The modal is opened with the slash command's `trigger_id` (`views.open`). Parameters are a
fixed number of rows (name, type, AI description, required); a row left empty is ignored,
and editing an action with more parameters shows one row per parameter. The name of the
action being edited and the channel to answer in travel in `private_metadata`.

A submission is checked again (the bot's own workspace, and an admin) and saved through the
core (`bot.admin.editing`) before Slack is answered: problems come back inline on their
inputs (`response_action: errors`) and nothing is saved; a save closes the modal and the
admin is told privately in the channel (or, failing that, in a DM). Header values are never
echoed: the core refuses anything but `${VAR}` references, by field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.slack.api import Api
from adapters.slack.blocks import clip
from adapters.slack.form_view import (
    FIELD_BLOCKS,
    HEADER_LINE,
    MAX_ERROR_CHARS,
    ROW_BLOCK,
    ROW_INDEX,
    ROW_KEYS,
    VALUE,
    form_view,
    row_block,
)
from bot import wording
from bot.admin.operations import Admin
from bot.admin.render import render_saved
from bot.admin.results import ActionForm, ActionSaved
from bot.errors import ActionBotError, Problem
from bot.runtime.tasks import Turns

logger = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]


class Submitted:
    """A submitted modal read back: the definition, what could not be read at all (by
    block), and which row each parameter came from."""

    def __init__(self, view: dict[str, Any]) -> None:
        values: dict[str, dict[str, Any]] = {
            block: elements.get(VALUE) or {}
            for block, elements in ((view.get("state") or {}).get("values") or {}).items()
        }
        self.input_errors: dict[str, str] = {}
        self.rows: list[tuple[int, str]] = []
        """Each submitted parameter's row and name, in order."""
        definition: dict[str, Any] = {}
        for key in ("display_name", "name", "description", "url"):
            text = _text(values.get(key))
            if text:
                definition[key] = text
        definition["method"] = _selected(values.get("method")) or "GET"
        timeout = _text(values.get("timeout"))
        if timeout:
            definition["timeout"] = _number(timeout)
        headers = self._headers(_raw_text(values.get("headers")))
        if headers:
            definition["headers"] = headers
        parameters = self._parameters(values)
        if parameters:
            definition["parameters"] = parameters
        self.definition = definition

    def _headers(self, text: str) -> dict[str, str]:
        """`Name: value` lines; a line that is not one is named by number, never quoted
        (it may be a pasted secret)."""
        headers: dict[str, str] = {}
        problems: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            found = HEADER_LINE.match(line)
            if found is None:
                problems.append(f"line {number} is not `Name: value`")
            elif found[1] in headers:
                problems.append(f"{found[1]} is given twice")
            else:
                headers[found[1]] = found[2]
        if problems:
            self.input_errors["headers"] = "; ".join(problems)
        return headers

    def _parameters(self, values: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        indices = sorted({int(found[1]) for block in values if (found := ROW_BLOCK.match(block))})
        parameters: list[dict[str, Any]] = []
        for index in indices:
            name = _text(values.get(row_block(index, "name")))
            description = _text(values.get(row_block(index, "description")))
            if not name and not description:
                continue
            parameter: dict[str, Any] = {
                "name": name,
                "type": _selected(values.get(row_block(index, "type"))) or "string",
                "required": bool(
                    (values.get(row_block(index, "required")) or {}).get("selected_options")
                ),
            }
            if description:
                parameter["description"] = description
            parameters.append(parameter)
            self.rows.append((index, name))
        return parameters


def _raw_text(element: dict[str, Any] | None) -> str:
    value = (element or {}).get("value")
    return value if isinstance(value, str) else ""


def _text(element: dict[str, Any] | None) -> str:
    return _raw_text(element).strip()


def _selected(element: dict[str, Any] | None) -> str:
    option = (element or {}).get("selected_option") or {}
    return str(option.get("value") or "")


def _number(text: str) -> float | int | str:
    """`10` → 10, `2.5` → 2.5; anything else as typed, for the check to name."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def with_kept(definition: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """An edit keeps what the form does not show (e.g. `confirm`, a parameter's `from`)."""
    shown = {*FIELD_BLOCKS, "parameters"}
    merged = {k: v for k, v in kept.items() if k not in shown} | definition
    old = {p.get("name"): p for p in kept.get("parameters") or [] if isinstance(p, dict)}
    if "parameters" in definition:
        merged["parameters"] = [
            {k: v for k, v in old.get(p["name"], {}).items() if k not in ROW_KEYS} | p
            for p in definition["parameters"]
        ]
    return merged


def problem_blocks(problems: list[Problem], rows: list[tuple[int, str]]) -> dict[str, str]:
    """Each problem on the input it is about (by its field); one that names no input goes
    on the URL, the field the checks most often mean."""
    errors: dict[str, list[str]] = {}
    for problem in problems:
        block = _block_of(problem.field, rows) or "url"
        errors.setdefault(block, []).append(problem.message)
    return {block: clip("; ".join(messages), MAX_ERROR_CHARS) for block, messages in errors.items()}


def _block_of(field: str | None, rows: list[tuple[int, str]]) -> str | None:
    if not field:
        return None
    head, _, rest = field.partition(".")
    if head in FIELD_BLOCKS:
        return FIELD_BLOCKS[head]
    if head != "parameters" or not rows:
        return None
    which, _, key = rest.partition(".")
    index = _row_of(which, rows)
    if index is None:
        return row_block(rows[0][0], "name")
    return row_block(index, key if key in ROW_KEYS else "name")


def _row_of(which: str, rows: list[tuple[int, str]]) -> int | None:
    """The row of a parameter named by its name, or by position (`0`, `[0]`) in the
    submitted list."""
    for row, name in rows:
        if name and name == which:
            return row
    found = ROW_INDEX.match(which)
    if found is not None and int(found[1]) < len(rows):
        return rows[int(found[1])][0]
    return None


# --- the listeners ---------------------------------------------------------------------------


class ActionForms:
    """Opens the modal and handles its submissions for one adapter."""

    def __init__(
        self,
        *,
        admin: Admin,
        api: Api,
        is_admin: Callable[[str], Awaitable[bool]],
        team: Callable[[], str],
        turns: Turns,
    ) -> None:
        self._admin = admin
        self._api = api
        self._is_admin = is_admin
        self._team = team
        self._turns = turns

    async def open(self, trigger_id: str, form: ActionForm, *, channel: str) -> bool:
        """Open the form; False if Slack refused (e.g. the trigger expired)."""
        view = form_view(form, channel=channel)
        opened = await self._api.call(self._api.client.views_open, trigger_id=trigger_id, view=view)
        return opened is not None

    async def on_submit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Check, save, then answer Slack: errors inline, or the modal closes."""
        user = str(body.get("user", {}).get("id", ""))
        team = str(body.get("team", {}).get("id", "") or body.get("user", {}).get("team_id", ""))
        metadata = _metadata(view)
        editing = metadata.get("editing")
        editing = editing if isinstance(editing, str) and editing else None
        if team != self._team() or not await self._is_admin(user):
            logger.info("refused an action form from slack:%s of team %s", user, team)
            await ack(response_action="errors", errors={"display_name": wording.NOT_ADMIN})
            return
        submitted = Submitted(view)
        if submitted.input_errors:
            await ack(response_action="errors", errors=submitted.input_errors)
            return
        definition = submitted.definition
        try:
            if editing is not None:
                kept = await self._admin.editing.form(editing)
                definition = with_kept(definition, kept.definition)
            result = await self._admin.editing.save(
                definition, actor=f"slack:{user}", editing=editing
            )
        except ActionBotError as exc:
            await ack(response_action="errors", errors={"name": clip(str(exc), MAX_ERROR_CHARS)})
            return
        if not isinstance(result, ActionSaved):
            await ack(
                response_action="errors", errors=problem_blocks(result.problems, submitted.rows)
            )
            return
        await ack()
        channel = str(metadata.get("channel") or "")
        self._turns.spawn(
            self._tell(user, channel, result), name=f"slack form saved by {user}", queued=False
        )

    async def _tell(self, user: str, channel: str, saved: ActionSaved) -> None:
        """The admin is told privately where they ran the command, else in a DM."""
        text = f":white_check_mark: {render_saved(saved)}"
        client = self._api.client
        if channel and await self._api.call(
            client.chat_postEphemeral, channel=channel, user=user, text=text
        ):
            return
        await self._api.call(client.chat_postMessage, channel=user, text=text)


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        found = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
