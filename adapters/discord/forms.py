"""The forms (Discord modals) of `/actions new` and `/actions edit NAME`.

A modal holds at most five inputs (each a `discord.ui.Label` around a `TextInput` or a
`Select`), so a draft (`drafts`) is filled in over three forms, each pre-filled with what the
draft holds (what was typed, or the kept definition):

- **details** (`details_modal`): display name, name (optional), AI description, URL, method;
- **settings** (`settings_modal`): timeout and headers (`Name: ${VAR}` lines);
- **parameter** (`parameter_modal`): name, type, AI description and required, one each.

A form's `custom_id` is `actionbot:form:<form>:<draft>[:<parameter index>]` (`FORM_ID`).
discord.py keeps a modal it sent in memory and drops, without an answer, the submit of one
it does not know (after a restart, say); so a form is `stop()`ped before it is sent, which
keeps discord.py from holding it, and the editor reads every submit itself from the payload
(`submitted_values`), answering one whose draft is gone too. What the answer shows is the
draft card (`draft_card`).
"""

from __future__ import annotations

import re
from typing import Any

import discord

from adapters.discord.drafts import Draft, FormKind, headers_text, number_text
from adapters.discord.markdown import clip

FORM_ID = re.compile(
    r"actionbot:form:(?P<step>details|settings|parameter):(?P<draft>[0-9a-f]{8})(?::(?P<index>\d+))?"
)
MAX_TITLE = 45
"""Discord's limits in a modal: its title and each label's text; a label's description."""
MAX_LABEL_TEXT = 45
MAX_HINT = 100
TYPES = ("string", "number", "boolean")


# --- modals ----------------------------------------------------------------------------------


def details_modal(draft: Draft) -> discord.ui.Modal:
    d = draft.definition
    title = "New action" if draft.editing is None else f"Edit {draft.editing}"
    modal = _modal(title, f"actionbot:form:details:{draft.id}")
    modal.add_item(_text("Display name", "display_name", d.get("display_name"), maximum=100))
    modal.add_item(
        _text(
            "Name",
            "name",
            d.get("name"),
            maximum=64,
            optional=True,
            hint="Letters, digits, _ and -. Empty: made from the display name.",
        )
    )
    modal.add_item(
        _text(
            "AI description",
            "description",
            d.get("description"),
            maximum=4000,
            paragraph=True,
            hint="What it does and when the AI should use it.",
        )
    )
    modal.add_item(
        _text(
            "URL",
            "url",
            d.get("url"),
            maximum=2000,
            hint="https:// only; {param} placeholders in the path.",
            placeholder="https://api.example.com/orders/{order_id}",
        )
    )
    method = str(d.get("method") or "GET").upper()
    options = [("GET", "GET: values in the query string"), ("POST", "POST: values as JSON body")]
    modal.add_item(_choice("Method", "method", options, method))
    return _unkept(modal)


def settings_modal(draft: Draft) -> discord.ui.Modal:
    modal = _modal("Timeout and headers", f"actionbot:form:settings:{draft.id}")
    modal.add_item(
        _text(
            "Timeout in seconds",
            "timeout",
            number_text(draft.definition.get("timeout")),
            maximum=20,
            optional=True,
            hint="Empty: the default. Capped by ACTIONBOT_MAX_TIMEOUT.",
        )
    )
    modal.add_item(
        _text(
            "Headers",
            "headers",
            headers_text(draft),
            maximum=2000,
            optional=True,
            paragraph=True,
            hint="One Name: value per line; values only as ${VAR} from the bot's environment.",
            placeholder="Authorization: Bearer ${CRM_TOKEN}",
        )
    )
    return _unkept(modal)


def parameter_modal(draft: Draft, index: int | None) -> discord.ui.Modal:
    """A new parameter, or parameter `index` as it is."""
    known = index is not None and 0 <= index < len(draft.parameters)
    p: dict[str, Any] = draft.parameters[index] if index is not None and known else {}
    suffix = f":{index}" if known else ""
    title = f"Parameter {p.get('name') or ''}".strip() if known else "New parameter"
    modal = _modal(title, f"actionbot:form:parameter:{draft.id}{suffix}")
    modal.add_item(
        _text(
            "Name",
            "name",
            p.get("name"),
            maximum=64,
            hint="Letters, digits and _: the JSON property the endpoint gets.",
            placeholder="order_id",
        )
    )
    kind = str(p.get("type") or "string").lower()
    modal.add_item(_choice("Type", "type", [(t, t) for t in TYPES], kind))
    modal.add_item(
        _text(
            "AI description",
            "description",
            p.get("description"),
            maximum=1000,
            paragraph=True,
            hint="What the AI asks the customer for, e.g. 'the order number'.",
        )
    )
    required = "yes" if p.get("required") or not known else "no"  # a new one: required
    options = [("yes", "Required: the AI asks for it"), ("no", "Optional")]
    modal.add_item(_choice("Required", "required", options, required))
    return _unkept(modal)


def modal_for(draft: Draft, step: FormKind, index: int | None = None) -> discord.ui.Modal:
    if step == "details":
        return details_modal(draft)
    if step == "settings":
        return settings_modal(draft)
    return parameter_modal(draft, index)


def submitted_values(data: object) -> dict[str, str]:
    """A modal submit's values by input `custom_id`, from the payload as Discord sends it
    (labels, or the older action rows); a select gives its first choice."""
    values: dict[str, str] = {}

    def walk(components: object) -> None:
        for component in components if isinstance(components, list) else []:
            if not isinstance(component, dict):
                continue
            if component.get("type") == 1:
                walk(component.get("components"))
            elif component.get("type") == 18:
                walk([component.get("component")])
            elif isinstance(custom_id := component.get("custom_id"), str):
                chosen = component.get("values")
                if isinstance(chosen, list):
                    values[custom_id] = str(chosen[0]) if chosen else ""
                else:
                    values[custom_id] = str(component.get("value") or "")

    walk(data.get("components") if isinstance(data, dict) else None)
    return values


def _modal(title: str, custom_id: str) -> discord.ui.Modal:
    return discord.ui.Modal(title=clip(title, MAX_TITLE), custom_id=custom_id)


def _unkept(modal: discord.ui.Modal) -> discord.ui.Modal:
    """Finished before it is sent, so discord.py does not keep it (see the module doc)."""
    modal.stop()
    return modal


def _text(
    label: str,
    custom_id: str,
    value: object,
    *,
    maximum: int,
    optional: bool = False,
    paragraph: bool = False,
    hint: str | None = None,
    placeholder: str | None = None,
) -> discord.ui.Label[discord.ui.Modal]:
    text = "" if value is None else str(value)
    field: discord.ui.TextInput[discord.ui.Modal] = discord.ui.TextInput(
        custom_id=custom_id,
        style=discord.TextStyle.paragraph if paragraph else discord.TextStyle.short,
        default=text[:maximum] or None,
        required=not optional,
        max_length=maximum,
        placeholder=placeholder,
    )
    return discord.ui.Label(
        text=clip(f"{label} (optional)" if optional else label, MAX_LABEL_TEXT),
        component=field,
        description=clip(hint, MAX_HINT) if hint else None,
    )


def _choice(
    label: str, custom_id: str, options: list[tuple[str, str]], chosen: str
) -> discord.ui.Label[discord.ui.Modal]:
    select: discord.ui.Select[discord.ui.Modal] = discord.ui.Select(
        custom_id=custom_id,
        min_values=1,
        max_values=1,
        required=True,
        options=[
            discord.SelectOption(label=text, value=value, default=value == chosen)
            for value, text in options
        ],
    )
    return discord.ui.Label(text=label, component=select)
