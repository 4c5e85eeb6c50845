"""Importing a whole document: every operation mapped or refused, and the actions file.

`import_operations` maps the operations (all, or those `--only` names) into an `Imported`:
the actions with the operation each came from, the refusals with their reasons, notes and
the `${VAR}`s to set. `actions_file` writes it with the exporter and loads the text back
with the real loader: a file the loader refuses is a bug of the mapper, raised, never
written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.actions.export import export_toml
from bot.actions.loader import parse_actions
from bot.actions.models import ACTION_NAME, ActionConfig
from bot.actions.openapi.document import Spec
from bot.actions.openapi.mapping import (
    Operation,
    OperationMapper,
    Unmappable,
    Variable,
    scheme_variables,
)
from bot.errors import ActionsFileError, ConfigError

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Refusal:
    """An operation that did not become an action, and why."""

    operation: Operation
    reason: str


@dataclass
class Imported:
    """What an import made: the actions (with the operation each came from), the refused
    operations, advice about the mapped ones and the variables their headers need."""

    spec: Spec
    actions: list[ActionConfig] = field(default_factory=list)
    origins: dict[str, Operation] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def report(self) -> list[str]:
        """The import in lines for the operator: made, skipped (each with its reason), notes
        and the variables to set."""
        names = ", ".join(a.name for a in self.actions) or "none"
        lines = [f"Imported {len(self.actions)} action(s) from {self.spec.source}: {names}."]
        if self.refused:
            lines.append(f"Skipped {len(self.refused)} operation(s):")
            lines += [f"  - {r.operation}: {r.reason}" for r in self.refused]
        if self.notes:
            lines.append("Check:")
            lines += [f"  - {text}" for text in self.notes]
        if self.variables:
            lines.append("Set these environment variables (in .env or the environment):")
            lines += [f"  - {v.name}: {v.meaning}" for v in self.variables]
        return lines


def operations(spec: Spec) -> Iterator[tuple[Operation, dict[str, Any], dict[str, Any]]]:
    """Every operation in document order, with its path item and its own object."""
    for path, item in spec.document.get("paths", {}).items():
        item = spec.resolve(item)
        for method, raw in item.items():
            if method in HTTP_METHODS:
                derived = re.sub(r"[^A-Za-z0-9]+", "_", f"{method} {path}").strip("_")
                op_id = raw.get("operationId") or derived
                yield Operation(op_id, method.upper(), path), item, raw


def import_operations(spec: Spec, *, only: Sequence[str] = ()) -> Imported:
    """Map the operations (those named in `only`, if given) to actions and refusals."""
    found = list(operations(spec))
    unknown = [name for name in only if name not in {op.id for op, _, _ in found}]
    if unknown:
        available = ", ".join(op.id for op, _, _ in found) or "none"
        raise ConfigError(
            f"{spec.source} has no operation {', '.join(map(repr, unknown))}. "
            f"Its operations: {available}."
        )
    imported = Imported(spec)
    variables = scheme_variables(spec)
    for op, item, raw in found:
        if only and op.id not in only:
            continue
        mapper = OperationMapper(spec, op, item=item, raw=raw, variables=variables)
        try:
            action = mapper.action(_unique_name(op, imported.origins))
        except Unmappable as exc:
            imported.refused.append(Refusal(op, str(exc)))
            continue
        imported.actions.append(action)
        imported.origins[action.name] = op
        for text in mapper.notes:
            imported.note(text)
        for variable in mapper.variables:
            if variable not in imported.variables:
                imported.variables.append(variable)
    return imported


def _unique_name(op: Operation, taken: dict[str, Operation]) -> str:
    name = op.id if ACTION_NAME.match(op.id) else re.sub(r"[^A-Za-z0-9_-]+", "_", op.id)
    name = name.strip("_")[:64] or "operation"
    base, number = name, 2
    while name in taken:
        suffix = f"_{number}"
        name, number = base[: 64 - len(suffix)] + suffix, number + 1
    return name


class _AnyHost:
    """Checking the generated file is about its shape: hosts are the operator's policy,
    reported apart (`actionbot actions import` names a blocked host)."""

    def host_problem(self, host: str) -> str | None:
        return None


def actions_file(imported: Imported) -> str:
    """The imported actions as an actions file, checked by the real loader: a file it
    refuses is a bug of this module, raised as `ConfigError`, never written."""
    spec = imported.spec
    version = spec.document["info"].get("version", "")
    header = [
        f"Actions imported from {Path(spec.source).name} ({spec.title} {version}) by",
        "`actionbot actions import`. Check them with `actionbot actions validate FILE`.",
        *(f"Needs {v.name}: {v.meaning}." for v in imported.variables),
    ]
    comments = {
        name: [f"{op.method} {op.path} (operation {op.id})"]
        for name, op in imported.origins.items()
    }
    text = export_toml(imported.actions, header=header, comments=comments)
    stand_ins = {v.name: "stand-in" for v in imported.variables}
    try:
        parse_actions(text, source="<imported>", environ=stand_ins, policy=_AnyHost())
    except ActionsFileError as exc:
        raise ConfigError(
            "Bug: the actions made from this OpenAPI document do not load. Please report it "
            f"with the document.\n{exc}"
        ) from None
    return text
