"""Reading an OpenAPI document: YAML or JSON in, a checked and validated `Spec` out.

Only OpenAPI 3.0 and 3.1 are read. Every `$ref` must be local (`#/components/…`) and point
somewhere, which is checked before `openapi-spec-validator` runs, so validation never fetches
anything; `Spec.resolve` follows references while mapping. Problems are `ConfigError`s that
name the file and, from the validator, the JSON path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from yaml.nodes import MappingNode, ScalarNode

from bot.errors import ConfigError

SUPPORTED_VERSIONS = ("3.0.", "3.1.")
MAX_MESSAGE = 300
"""The validator's message can quote a whole schema; this much of it is shown."""


class _SpecLoader(yaml.SafeLoader):
    """YAML read the way JSON would be: keys as written (`200:` is the key "200"), dates as
    text (`version: 2024-05-01`)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        return {
            key.value if isinstance(key, ScalarNode) else self.construct_object(key, deep=deep): (
                self.construct_object(value, deep=deep)
            )
            for key, value in node.value
        }


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith(":timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Spec:
    """A validated OpenAPI document and where it came from."""

    document: dict[str, Any]
    source: str

    @property
    def title(self) -> str:
        return str(self.document["info"]["title"])

    def resolve(self, node: Any) -> Any:
        """`node` with its `$ref` chain followed; sibling keys of a reference (allowed in
        3.1, e.g. a `description`) override the target's."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            target = _pointer(self.document, node["$ref"])
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings} if siblings and isinstance(target, dict) else target
        return node


def read_spec(path: Path) -> Spec:
    """Parse, check and validate an OpenAPI file; `ConfigError` says what is wrong and where."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"OpenAPI file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text.") from None
    document = parse_document(text, source=str(path), as_json=path.suffix.lower() == ".json")
    check_document(document, source=str(path))
    return Spec(document, str(path))


def parse_document(text: str, *, source: str, as_json: bool) -> Any:
    """The document's data: JSON when `as_json`, otherwise YAML (which JSON also is)."""
    if as_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    try:
        return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None


def check_document(document: Any, *, source: str) -> None:
    """Refuse what cannot be imported, then run `openapi-spec-validator`."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source} is not an OpenAPI document (no mapping at the top).")
    if "swagger" in document:
        raise ConfigError(
            f"{source} is Swagger {document['swagger']}; convert it to OpenAPI 3 first."
        )
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith(SUPPORTED_VERSIONS):
        raise ConfigError(
            f"{source}: openapi: {version!r} is not supported; OpenAPI 3.0 and 3.1 are."
        )
    for path, ref in _references(document):
        _check_reference(document, ref, path=path, source=source)
    try:
        validate(document)
    except OpenAPIValidationError as exc:
        message = exc.message if len(exc.message) <= MAX_MESSAGE else exc.message[:MAX_MESSAGE]
        more = "…" if len(exc.message) > MAX_MESSAGE else ""
        raise ConfigError(
            f"{source} is not a valid OpenAPI document: at {exc.json_path}: {message}{more}"
        ) from None


def _references(node: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every `$ref` in the document with the JSON path of the object holding it."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield path, node["$ref"]
        for key, value in node.items():
            step = f".{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"[{key!r}]"
            yield from _references(value, path + step)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _references(value, f"{path}[{index}]")


def _check_reference(document: dict[str, Any], ref: Any, *, path: str, source: str) -> None:
    seen: list[str] = []
    while isinstance(ref, str):
        if not ref.startswith("#"):
            raise ConfigError(
                f"{source}: at {path}: $ref {ref!r} is not in this document; only local "
                "references (#/components/…) are resolved. Bundle the document first."
            )
        if ref in seen:
            raise ConfigError(f"{source}: at {path}: $ref {ref!r} refers back to itself.")
        seen.append(ref)
        try:
            target = _pointer(document, ref)
        except KeyError:
            raise ConfigError(f"{source}: at {path}: $ref {ref!r} points to nothing.") from None
        ref = target.get("$ref") if isinstance(target, dict) else None


def _pointer(document: dict[str, Any], ref: str) -> Any:
    """The node a local `$ref` (`#/components/schemas/Pet`) points to, or KeyError."""
    node: Any = document
    for raw in unquote(ref.removeprefix("#")).split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise KeyError(ref)
    return node
