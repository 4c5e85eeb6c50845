"""Drafts of actions being made or changed from Discord: what the admin typed so far, its
problems, and how long it is kept.

A Discord modal holds at most five inputs, so an action is filled in over steps (its
details; timeout and headers; one modal per parameter) and the draft lives between them
here, in memory, under a short random id (carried in every `custom_id`) and the id of the
admin it belongs to. A draft is kept `DRAFT_SECONDS` after its last step; a restart of the
bot discards it. Nothing is stored until the admin saves (`bot.admin.editing`).

Problems come from the core's own check, by field (`url`, `headers.Authorization`,
`parameters.order_id.description`…); `field_label` names a field as the forms do, and
`form_of` says which form (modal) changes it, for the Fix button.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.actions.loader import CHAT_SOURCE
from bot.actions.models import PLACEHOLDER
from bot.errors import ActionsFileError, Problem

DRAFT_SECONDS = 30 * 60
"""How long a draft is kept after its last step."""

FormKind = Literal["details", "settings", "parameter"]
DETAILS_FIELDS = ("display_name", "name", "description", "url", "method")
SETTINGS_FIELDS = ("timeout", "headers")
LABELS = {
    "display_name": "Display name",
    "name": "Name",
    "description": "AI description",
    "url": "URL",
    "method": "Method",
    "timeout": "Timeout",
    "headers": "Headers",
    "parameters": "Parameters",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INDEX = re.compile(r"^\[(\d+)\]")
_HEADER_LINE = re.compile(r"^\s*([^:\s][^:]*?)\s*:\s*(.*?)\s*$")

Check = Callable[[dict[str, Any]], object]
"""The core's check of a definition (`Catalogue.check`): `ActionsFileError` if it fails."""


@dataclass
class Draft:
    """One action being made (`editing` None) or changed, by one admin."""

    id: str
    user: int
    editing: str | None
    definition: dict[str, Any]
    """Every field as the actions file writes it, as typed so far (kept fields included)."""
    headers_text: str | None = None
    """The Headers input as typed, shown again in the form (it may not parse)."""
    input_problems: list[Problem] = field(default_factory=list)
    """What could not be read at all (a header line without a colon); blocks saving."""
    problems: list[Problem] = field(default_factory=list)
    """The core's problems after the last step or save."""
    expires: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One step at a time: a double click on Save saves once."""

    @property
    def parameters(self) -> list[dict[str, Any]]:
        found = self.definition.get("parameters")
        if not isinstance(found, list):
            found = self.definition["parameters"] = []
        return found

    def shown_problems(self) -> list[Problem]:
        """Every problem, in the order of the forms: details, settings, parameters."""
        ranks: dict[str | None, int] = {"details": 0, "settings": 1, "parameter": 2}

        def rank(problem: Problem) -> int:
            target = form_of(problem.field, self)
            return ranks[target[0]] if target is not None else len(ranks)

        return sorted([*self.input_problems, *self.problems], key=rank)

    def ready(self) -> bool:
        """The details check out: the parameter step and Save are open."""
        return not any(form_of(p.field, self) == ("details", None) for p in self.shown_problems())


class Drafts:
    """The drafts of one Discord client, by id; expired ones are dropped as others arrive."""

    def __init__(
        self, *, seconds: float = DRAFT_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self._drafts: dict[str, Draft] = {}

    def open(self, user: int, editing: str | None, definition: dict[str, Any]) -> Draft:
        self._purge()
        draft_id = secrets.token_hex(4)
        while draft_id in self._drafts:
            draft_id = secrets.token_hex(4)
        draft = Draft(draft_id, user, editing, definition, expires=self.clock() + self.seconds)
        self._drafts[draft_id] = draft
        return draft

    def get(self, draft_id: str, user: int) -> Draft | None:
        """The admin's draft, kept for another `seconds`; None when it expired, was saved or
        cancelled, was lost in a restart, or is someone else's."""
        self._purge()
        draft = self._drafts.get(draft_id)
        if draft is None or draft.user != user:
            return None
        draft.expires = self.clock() + self.seconds
        return draft

    def holds(self, draft: Draft) -> bool:
        return self._drafts.get(draft.id) is draft

    def discard(self, draft: Draft) -> None:
        self._drafts.pop(draft.id, None)

    def _purge(self) -> None:
        now = self.clock()
        for draft_id in [k for k, d in self._drafts.items() if d.expires <= now]:
            del self._drafts[draft_id]


# --- what a form's inputs change -----------------------------------------------------------


def apply_details(draft: Draft, values: Mapping[str, str]) -> None:
    """Display name, name (empty: made from the display name), AI description, URL, method."""
    for key in ("display_name", "name", "description", "url"):
        _set(draft.definition, key, values.get(key, ""))
    draft.definition["method"] = (values.get("method") or "GET").upper()


def apply_settings(draft: Draft, values: Mapping[str, str]) -> None:
    """Timeout (empty: the default) and headers, one `Name: value` per line."""
    timeout = values.get("timeout", "").strip()
    if timeout:
        draft.definition["timeout"] = _number(timeout)
    else:
        draft.definition.pop("timeout", None)
    draft.headers_text = values.get("headers", "")
    headers, draft.input_problems = parse_headers(draft.headers_text)
    if headers:
        draft.definition["headers"] = headers
    else:
        draft.definition.pop("headers", None)


def apply_parameter(draft: Draft, values: Mapping[str, str], index: int | None) -> None:
    """A new parameter, or parameter `index` changed (its other keys kept)."""
    typed = {
        "name": values.get("name", "").strip(),
        "type": values.get("type") or "string",
        "description": values.get("description", "").strip(),
        "required": values.get("required", "yes") == "yes",
    }
    if not typed["description"]:
        del typed["description"]  # the check then says it is required
    parameters = draft.parameters
    if index is not None and 0 <= index < len(parameters):
        kept = {k: v for k, v in parameters[index].items() if k != "description"}
        parameters[index] = kept | typed
    else:
        parameters.append(typed)


def remove_parameter(draft: Draft, index: int) -> None:
    if 0 <= index < len(draft.parameters):
        del draft.parameters[index]


def parse_headers(text: str) -> tuple[dict[str, str], list[Problem]]:
    """`Name: value` lines as a dict; a line that is not one is a problem (never quoted:
    it may be a pasted secret)."""
    headers: dict[str, str] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = _HEADER_LINE.match(line)
        if found is None:
            message = f"line {number} is not `Name: value`"
            problems.append(Problem(message, CHAT_SOURCE, field="headers"))
        elif found[1] in headers:
            message = f"{found[1]} is given twice"
            problems.append(Problem(message, CHAT_SOURCE, field="headers"))
        else:
            headers[found[1]] = found[2]
    return headers, problems


def headers_text(draft: Draft) -> str:
    """The Headers input: as typed, else the kept headers one per line."""
    if draft.headers_text is not None:
        return draft.headers_text
    headers = draft.definition.get("headers") or {}
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


def submitted(draft: Draft) -> dict[str, Any]:
    """The definition to save: empty headers and parameters left out."""
    definition = dict(draft.definition)
    for key in ("headers", "parameters"):
        if not definition.get(key):
            definition.pop(key, None)
    return definition


def _set(target: dict[str, Any], key: str, text: str) -> None:
    text = text.strip()
    if text:
        target[key] = text
    else:
        target.pop(key, None)


def _number(text: str) -> float | int | str:
    """`10` → 10, `2.5` → 2.5; anything else as typed, for the check to name."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def number_text(value: object) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


# --- checking --------------------------------------------------------------------------------


def check(draft: Draft, run: Check | None) -> None:
    """The core's problems with the draft as it is, while it is being filled in: a URL
    placeholder waiting for its parameter is a `waiting` note, not a problem yet."""
    if run is None:  # no catalogue (not the running bot): saving will say so
        draft.problems = []
        return
    definition = _with_awaited_parameters(draft.definition)
    try:
        run(definition)
    except ActionsFileError as exc:
        draft.problems = list(exc.problems)
    else:
        draft.problems = []


def waiting(definition: Mapping[str, Any]) -> list[str]:
    """Placeholders in the URL's path that no required parameter fills yet."""
    url = definition.get("url")
    if not isinstance(url, str):
        return []
    try:
        path = urlsplit(url).path
    except ValueError:
        return []
    required = {
        p.get("name")
        for p in definition.get("parameters") or []
        if isinstance(p, dict) and p.get("required")
    }
    found = dict.fromkeys(PLACEHOLDER.findall(path))
    return [name for name in found if name not in required and _IDENTIFIER.match(name)]


def _with_awaited_parameters(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition as if each waiting placeholder had its required parameter."""
    names = waiting(definition)
    if not names:
        return definition
    parameters = [
        {**p, "required": True} if isinstance(p, dict) and p.get("name") in names else p
        for p in definition.get("parameters") or []
    ]
    declared = {p.get("name") for p in parameters if isinstance(p, dict)}
    parameters += [
        {"name": name, "type": "string", "description": "-", "required": True}
        for name in names
        if name not in declared
    ]
    return {**definition, "parameters": parameters}


# --- where a problem belongs -----------------------------------------------------------------


def form_of(name: str | None, draft: Draft) -> tuple[FormKind, int | None] | None:
    """The form (and parameter index) that changes field `name`; None for the action as a
    whole or a field no form shows."""
    if name is None:
        return None
    head = name.split(".", 1)[0]
    if head in DETAILS_FIELDS:
        return "details", None
    if head in SETTINGS_FIELDS:
        return "settings", None
    if head == "parameters" and "." in name:
        index = _parameter_index(name.split(".", 1)[1], draft.parameters)
        return None if index is None else ("parameter", index)
    return None


def fix_target(draft: Draft) -> tuple[FormKind, int | None] | None:
    """The form of the first problem a form can fix."""
    for problem in draft.shown_problems():
        if (target := form_of(problem.field, draft)) is not None:
            return target
    return None


def field_label(name: str | None, draft: Draft) -> str:
    """`url` → URL, `headers.X-Key` → Header X-Key, `parameters.order_id.type` →
    Parameter order_id, type."""
    if name is None:
        return "Action"
    if name.startswith("headers."):
        return f"Header {name.removeprefix('headers.')}"
    if name.startswith("parameters."):
        rest = name.removeprefix("parameters.")
        index = _parameter_index(rest, draft.parameters)
        if index is None:
            return f"Parameter {rest}"
        label = str(draft.parameters[index].get("name") or f"#{index + 1}")
        key = _after_parameter(rest, draft.parameters[index], index)
        return f"Parameter {label}" + (f", {key}" if key else "")
    return LABELS.get(name, name)


def _parameter_index(rest: str, parameters: list[dict[str, Any]]) -> int | None:
    """Which parameter `parameters.<rest>` is about: by `[index]`, else by name."""
    if (found := _INDEX.match(rest)) is not None:
        index = int(found[1])
        return index if index < len(parameters) else None
    for index, parameter in enumerate(parameters):
        name = str(parameter.get("name"))
        if rest == name or rest.startswith(name + "."):
            return index
    return None


def _after_parameter(rest: str, parameter: dict[str, Any], index: int) -> str:
    for prefix in (f"[{index}]", str(parameter.get("name"))):
        if rest.startswith(prefix):
            return rest.removeprefix(prefix).removeprefix(".")
    return ""
