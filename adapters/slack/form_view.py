"""The modal of `/actions new` and `/actions edit NAME` on Slack: its inputs (every field of
an action, parameters as fixed rows) and the block ids problems are shown on."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from adapters.slack.blocks import Block
from bot.admin.results import ActionForm

CALLBACK_ID = "actionbot_action_form"
VALUE = "value"
"""The `action_id` of every input's element."""
PARAMETER_ROWS = 5
"""Parameter rows of a new form (an edit shows at least one per parameter)."""
MAX_ERROR_CHARS = 300
TYPES = ("string", "number", "boolean")
METHODS = ("GET", "POST")
FIELD_BLOCKS = {
    "display_name": "display_name",
    "name": "name",
    "description": "description",
    "url": "url",
    "method": "method",
    "timeout": "timeout",
    "headers": "headers",
}
ROW_KEYS = ("name", "type", "description", "required")
ROW_BLOCK = re.compile(r"^param_(\d+)_(name|type|description|required)$")
HEADER_LINE = re.compile(r"^\s*([^:\s][^:]*?)\s*:\s*(.*?)\s*$")
ROW_INDEX = re.compile(r"^\[?(\d+)\]?$")


def row_block(index: int, key: str) -> str:
    return f"param_{index}_{key}"


# --- the modal -------------------------------------------------------------------------------


def form_view(form: ActionForm, *, channel: str) -> dict[str, Any]:
    """The modal: empty for `/actions new`, filled from the kept definition for an edit."""
    definition = form.definition
    parameters = [p for p in definition.get("parameters") or [] if isinstance(p, dict)]
    headers = definition.get("headers") or {}
    header_lines = "\n".join(f"{k}: {v}" for k, v in headers.items()) if headers else ""
    blocks: list[Block] = [
        _text_input("display_name", "Display name", definition.get("display_name")),
        _text_input(
            "name",
            "Name",
            definition.get("name"),
            optional=True,
            hint="Letters, digits and _; empty: made from the display name.",
        ),
        _text_input(
            "description",
            "AI description",
            definition.get("description"),
            multiline=True,
            hint="What the action does and when the AI should use it.",
        ),
        _text_input(
            "url",
            "URL",
            definition.get("url"),
            hint="https:// only; {param} placeholders name parameters below.",
        ),
        _select("method", "Method", METHODS, str(definition.get("method") or "GET").upper()),
        _text_input(
            "timeout",
            "Timeout (seconds)",
            _number_text(definition.get("timeout")),
            optional=True,
        ),
        _text_input(
            "headers",
            "Headers",
            header_lines,
            optional=True,
            multiline=True,
            hint="One `Name: value` per line; values may only reference ${VAR} names, "
            "e.g. Authorization: Bearer ${CRM_TOKEN}.",
        ),
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Parameters* — what the AI fills in. Leave a row empty to skip it.",
            },
        },
    ]
    for index in range(max(PARAMETER_ROWS, len(parameters))):
        shown = parameters[index] if index < len(parameters) else {}
        blocks += _row(index, shown)
    title = "Edit action" if form.editing else "New action"
    metadata = json.dumps({"editing": form.editing, "channel": channel})
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": metadata,
        "blocks": blocks,
    }


def _row(index: int, parameter: dict[str, Any]) -> list[Block]:
    number = index + 1
    checkbox = {"text": {"type": "plain_text", "text": "Required"}, "value": "required"}
    required: Block = {"type": "checkboxes", "action_id": VALUE, "options": [checkbox]}
    if parameter.get("required"):
        required["initial_options"] = [checkbox]
    return [
        _text_input(
            row_block(index, "name"),
            f"Parameter {number}: name",
            parameter.get("name"),
            optional=True,
        ),
        _select(
            row_block(index, "type"),
            f"Parameter {number}: type",
            TYPES,
            str(parameter.get("type") or "string"),
        ),
        _text_input(
            row_block(index, "description"),
            f"Parameter {number}: AI description",
            parameter.get("description"),
            optional=True,
        ),
        {
            "type": "input",
            "block_id": row_block(index, "required"),
            "optional": True,
            "label": {"type": "plain_text", "text": f"Parameter {number}: required?"},
            "element": required,
        },
    ]


def _text_input(
    block_id: str,
    label: str,
    value: object,
    *,
    optional: bool = False,
    multiline: bool = False,
    hint: str = "",
) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": VALUE, "multiline": multiline}
    if isinstance(value, str) and value:
        element["initial_value"] = value
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def _select(block_id: str, label: str, choices: tuple[str, ...], chosen: str) -> Block:
    options = [{"text": {"type": "plain_text", "text": c}, "value": c} for c in choices]
    element: Block = {"type": "static_select", "action_id": VALUE, "options": options}
    initial = next((o for o in options if o["value"] == chosen), options[0])
    element["initial_option"] = initial
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }


def _number_text(value: object) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


# --- reading a submission --------------------------------------------------------------------
