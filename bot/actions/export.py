"""Actions back to an actions file: any `ActionConfig`s (from the file, from chat, from an
OpenAPI import) written as TOML that the loader reads to the same actions.

Only the fields an admin writes are emitted, never resolved secrets: headers keep their
`${VAR}` templates. Fields at their default are left out, except `method`, which says at a
glance how the values travel, and a parameter's `type`, which the loader requires. The stdlib
reads TOML but cannot write it, so the few shapes an actions file has (strings, numbers,
booleans, arrays of them, inline tables for headers, `[[actions.parameters]]`) are written
here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any

from bot.actions.models import ActionConfig

ALWAYS_WRITTEN = frozenset({"name", "display_name", "description", "url", "method"})
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_ESCAPES["\r"] = "\\r"
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')


class ExportFormat(StrEnum):
    """The formats `actionbot actions export` writes."""

    TOML = "toml"


class TemplatesOnly(Mapping[str, str]):
    """An environment in which every `${VAR}` is set, to nothing: exporting reads only the
    templates, never the secrets, so it works where they are not set."""

    def __getitem__(self, key: str) -> str:
        return ""

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def export_toml(
    actions: Iterable[ActionConfig],
    *,
    header: Iterable[str] = (),
    comments: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """The actions as an actions file; `header` lines open it as comments, and `comments`
    (by action name) stand above an action's table."""
    blocks = ["".join(f"# {line}".rstrip() + "\n" for line in header)]
    for action in actions:
        notes = (comments or {}).get(action.name, ())
        lines = [f"# {line}".rstrip() for line in notes]
        lines += _action_lines(action)
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(block for block in blocks if block)


def action_fields(action: ActionConfig) -> dict[str, Any]:
    """What the file would say for `action`: its written fields as JSON-like values, in the
    model's order, defaults left out (see the module docstring)."""
    fields = set(ActionConfig.model_fields)
    written = action.model_dump(mode="json", include=fields, exclude_defaults=True)
    everything = action.model_dump(mode="json", include=fields)
    return {
        key: written[key] if key in written else everything[key]
        for key in ActionConfig.model_fields
        if key in written or key in ALWAYS_WRITTEN
    }


def _action_lines(action: ActionConfig) -> list[str]:
    fields = action_fields(action)
    fields.pop("parameters", None)  # written below as [[actions.parameters]] tables
    lines = ["[[actions]]"] + [f"{_key(k)} = {_value(v)}" for k, v in fields.items()]
    for parameter in action.parameters:
        # The loader requires `type` unless the value comes `from` the platform.
        written = parameter.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        if parameter.source is None:
            written = {"name": parameter.name, "type": parameter.type.value} | written
        lines += ["", "[[actions.parameters]]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in written.items()]
    return lines


def _key(key: str) -> str:
    """A bare key where TOML allows one; otherwise quoted (a `.` would make a sub-table)."""
    return key if _BARE_KEY.match(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError("an actions file holds finite numbers only")
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped."""
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _escape(m.group()), text) + '"'


def _escape(char: str) -> str:
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"
