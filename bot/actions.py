"""Custom Actions: the models, loading the actions file, tool schemas, argument validation.

An action is an admin-defined HTTPS webhook. This module turns the TOML file into validated
`Action`s (every problem reported with file, action, field and line), renders each action as
an OpenAI function tool, checks a model's arguments against the declared parameters, and
prepares the request (path placeholders, query string or JSON body). The network call itself
is in `bot/webhooks.py`.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.egress import EgressPolicy
from bot.errors import ActionNotFoundError, ActionsFileError, ArgumentError, ConfigError, Problem

ACTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
ENV_REFERENCE = re.compile(r"\$\{([^}]*)\}")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "idempotency-key"}
)
MAX_STRING_ARGUMENT = 2000
"""Longest text value accepted for one parameter; longer is almost surely not a lookup key."""

ArgumentValue = str | int | float | bool
Arguments = dict[str, ArgumentValue]


class ParameterType(StrEnum):
    """The three parameter types of the product: String, Number, Boolean."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"


class Method(StrEnum):
    """GET sends parameters as a query string, POST as a JSON body."""

    GET = "GET"
    POST = "POST"


class Parameter(BaseModel):
    """A named value the AI extracts from the conversation before calling the action."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: ParameterType
    description: str = Field(min_length=1)
    required: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not PARAMETER_NAME.match(value):
            raise ValueError(
                "must be an identifier: letters, digits and _, not starting with a digit"
            )
        return value

    @field_validator("type", mode="before")
    @classmethod
    def _lower_type(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class ActionConfig(BaseModel):
    """One `[[actions]]` table exactly as the file may write it (unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    display_name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    url: str
    method: Method = Method.GET
    active: bool = True
    timeout: float | None = Field(None, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    parameters: list[Parameter] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not ACTION_NAME.match(value):
            raise ValueError("must be 1-64 characters of letters, digits, _ and -")
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


class Action(ActionConfig):
    """A loaded action: the file's fields plus header values resolved from the environment.

    `header_values` holds secrets; it never appears in tool schemas, logs or `/actions show`.
    """

    header_values: dict[str, SecretStr] = Field(default_factory=dict, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def path_parameters(self) -> list[str]:
        return PLACEHOLDER.findall(urlsplit(self.url).path)

    def masked_headers(self) -> dict[str, str]:
        """Header values fit to show an admin: `${VAR}` references kept, literals hidden."""
        return {name: _mask(template) for name, template in self.headers.items()}


def _mask(template: str) -> str:
    refs = ENV_REFERENCE.findall(template)
    if refs:
        return " ".join(f"${{{ref}}}" for ref in refs) + " (from the environment)"
    return "•••• (set in the file)"


def derive_name(display_name: str) -> str:
    """`Check Inventory` → `check_inventory`: the action name when the file omits one."""
    return re.sub(r"[^a-z0-9]+", "_", display_name.lower()).strip("_")[:64]


# --- tools and arguments ------------------------------------------------------------------


def tool_schema(action: Action) -> dict[str, Any]:
    """The action as an OpenAI Chat Completions function tool."""
    properties = {
        p.name: {"type": p.type.value, "description": p.description} for p in action.parameters
    }
    return {
        "type": "function",
        "function": {
            "name": action.name,
            "description": action.description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": [p.name for p in action.parameters if p.required],
                "additionalProperties": False,
            },
        },
    }


def parse_arguments(action: Action, raw: str | Mapping[str, Any]) -> Arguments:
    """Check a model's (or an admin's) arguments against `action`'s parameters.

    Obvious forms are accepted ("5" for a number, "true" for a boolean); anything else raises
    `ArgumentError` with one readable line per parameter, meant for the model to act on.
    """
    values = _decode(action, raw)
    problems = [
        f"unknown parameter {key!r} (this action takes: {_names(action)})"
        for key in values
        if action.parameter(key) is None
    ]
    result: Arguments = {}
    for param in action.parameters:
        value = values.get(param.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if param.required:
                problems.append(f"{param.name!r} is required ({param.description})")
            continue
        try:
            result[param.name] = coerce(param, value)
        except ValueError as exc:
            problems.append(f"{param.name!r} {exc}")
    if problems:
        raise ArgumentError(action.name, problems)
    return result


def _names(action: Action) -> str:
    return ", ".join(p.name for p in action.parameters) or "no parameters"


def _decode(action: Action, raw: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(raw, str):
        return raw
    if not raw.strip():
        return {}
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError:
        raise ArgumentError(action.name, ["the arguments were not valid JSON"]) from None
    if not isinstance(decoded, dict):
        raise ArgumentError(action.name, ["the arguments must be a JSON object"])
    return decoded


def coerce(param: Parameter, value: object) -> ArgumentValue:
    """`value` as `param`'s type, or ValueError saying what was expected."""
    if param.type is ParameterType.STRING:
        return _as_string(value)
    if param.type is ParameterType.NUMBER:
        return _as_number(value)
    return _as_boolean(value)


def _as_string(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be text, got {_describe(value)}")
    text = _format_number(value) if not isinstance(value, str) else value.strip()
    if len(text) > MAX_STRING_ARGUMENT:
        raise ValueError(f"is too long ({len(text)} characters; at most {MAX_STRING_ARGUMENT})")
    return text


def _as_number(value: object) -> int | float:
    number: float
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {_describe(value)}")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"must be a number, got {_describe(value)}") from None
    else:
        raise ValueError(f"must be a number, got {_describe(value)}")
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {_describe(value)}")
    return int(number) if float(number).is_integer() and abs(number) < 2**53 else number


_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


def _as_boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"must be true or false, got {_describe(value)}")


def _describe(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:40] + "…"


def _format_number(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def query_value(value: ArgumentValue) -> str:
    """How one argument is written in a URL: booleans as true/false, numbers plainly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _format_number(value)
    return value


# --- preparing a request ------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedRequest:
    """The request an action call makes, before any network I/O."""

    method: Method
    url: str
    json_body: dict[str, ArgumentValue] | None


def prepare_request(action: Action, arguments: Arguments) -> PreparedRequest:
    """Fill path placeholders (each value one encoded segment) and place the other values."""
    parts = urlsplit(action.url)
    in_path = set(action.path_parameters())
    path = PLACEHOLDER.sub(lambda m: path_segment(arguments[m.group(1)]), parts.path)
    rest = {k: v for k, v in arguments.items() if k not in in_path}
    query = parts.query
    body: dict[str, ArgumentValue] | None = None
    if action.method is Method.GET:
        extra = urlencode([(k, query_value(v)) for k, v in rest.items()])
        query = "&".join(q for q in (query, extra) if q)
    else:
        body = rest
    url = parts._replace(path=path, query=query, fragment="").geturl()
    return PreparedRequest(method=action.method, url=url, json_body=body)


def path_segment(value: ArgumentValue) -> str:
    """Encode a value as exactly one path segment: `/`, `?`, `#` and `..` cannot escape it."""
    text = query_value(value)
    if text in {".", ".."}:
        return text.replace(".", "%2E")
    return quote(text, safe="")


# --- loading the file ---------------------------------------------------------------------


class ActionSet:
    """The loaded actions, in file order, looked up by name."""

    def __init__(self, actions: list[Action], *, source: str) -> None:
        self._by_name = {a.name: a for a in actions}
        self.source = source

    def __iter__(self) -> Iterator[Action]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> Action:
        try:
            return self._by_name[name]
        except KeyError:
            raise ActionNotFoundError(name, self.names()) from None


def load_actions(path: Path, *, environ: Mapping[str, str], policy: EgressPolicy) -> ActionSet:
    """Load and check the actions file; raise `ActionsFileError` listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Actions file not found: {path}. Copy actions.example.toml to {path} "
            "or point ACTIONBOT_ACTIONS at your file."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the actions file {path}: {exc.strerror}") from None
    return parse_actions(text, source=str(path), environ=environ, policy=policy)


def parse_actions(
    text: str, *, source: str, environ: Mapping[str, str], policy: EgressPolicy
) -> ActionSet:
    """Parse the TOML text of an actions file (see `load_actions`)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ActionsFileError([_syntax_problem(exc, source)]) from None
    locator = _Locator(text)
    problems = [
        Problem(f"unknown top-level key {key!r} (expected only [[actions]] tables)", source)
        for key in document
        if key != "actions"
    ]
    entries = document.get("actions", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.append(Problem("'actions' must be written as [[actions]] tables", source))
        entries = []
    checker = _Checker(source=source, environ=environ, policy=policy, locator=locator)
    actions = [a for i, raw in enumerate(entries) if (a := checker.check(i, raw)) is not None]
    problems += checker.problems
    if problems:
        raise ActionsFileError(problems)
    return ActionSet(actions, source=source)


def _syntax_problem(exc: tomllib.TOMLDecodeError, source: str) -> Problem:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column \d+\)", message)
    line = int(found.group(1)) if found else None
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    return Problem(f"TOML syntax error: {message}", source, line=line)


class _Locator:
    """Finds the line of an action, a parameter or a key, for error messages."""

    _ACTION = re.compile(r"^\s*\[\[\s*actions\s*\]\]")
    _PARAMETER = re.compile(r"^\s*\[\[\s*actions\s*\.\s*parameters\s*\]\]")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.actions: list[tuple[int, list[int]]] = []
        for number, line in enumerate(self.lines, start=1):
            if self._ACTION.match(line):
                self.actions.append((number, []))
            elif self._PARAMETER.match(line) and self.actions:
                self.actions[-1][1].append(number)

    def line(self, action: int, parameter: int | None = None, key: str | None = None) -> int | None:
        if action >= len(self.actions):
            return None
        start, params = self.actions[action]
        if parameter is not None and parameter < len(params):
            start = params[parameter]
        return self._key_line(start, key) if key else start

    def _key_line(self, start: int, key: str) -> int:
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start + 1, len(self.lines) + 1):
            text = self.lines[number - 1]
            if text.lstrip().startswith("["):
                break
            if pattern.match(text):
                return number
        return start


class _Checker:
    """Checks `[[actions]]` entries one by one, collecting every problem."""

    def __init__(
        self,
        *,
        source: str,
        environ: Mapping[str, str],
        policy: EgressPolicy,
        locator: _Locator,
    ) -> None:
        self.source = source
        self.environ = environ
        self.policy = policy
        self.locator = locator
        self.problems: list[Problem] = []
        self.seen: dict[str, int] = {}

    def add(
        self,
        index: int,
        label: str,
        message: str,
        field: str | None = None,
        loc: tuple[int | str, ...] | None = None,
    ) -> None:
        param, key = _locate_hint(loc if loc is not None else tuple((field or "").split(".")))
        line = self.locator.line(index, param, key)
        self.problems.append(Problem(message, self.source, label, field, line))

    def check(self, index: int, raw: dict[str, Any]) -> Action | None:
        entry = dict(raw)
        if "name" not in entry and isinstance(entry.get("display_name"), str):
            entry["name"] = derive_name(entry["display_name"])
        label = str(entry.get("name") or entry.get("display_name") or f"#{index + 1}")
        try:
            config = ActionConfig.model_validate(entry)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(error["loc"])
                self.add(index, label, _pydantic_message(error), _field_path(loc, raw), loc)
            return None
        before = len(self.problems)
        self._check_unique(index, config)
        self._check_url(index, config)
        header_values = self._resolve_headers(index, config)
        if len(self.problems) > before:
            return None
        return Action(**config.model_dump(), header_values=header_values)

    def _check_unique(self, index: int, config: ActionConfig) -> None:
        if config.name in self.seen:
            first = self.locator.line(self.seen[config.name])
            where = f" (first defined at line {first})" if first else ""
            self.add(index, config.name, f"duplicate action name{where}", "name")
        self.seen.setdefault(config.name, index)
        names = [p.name for p in config.parameters]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            self.add(index, config.name, f"parameter {dup!r} is declared twice", "parameters")

    def _check_url(self, index: int, config: ActionConfig) -> None:
        for message in url_problems(config, self.policy):
            self.add(index, config.name, message, "url")
        timeout = config.timeout
        if timeout is not None and not math.isfinite(timeout):
            self.add(index, config.name, "must be a finite number of seconds", "timeout")

    def _resolve_headers(self, index: int, config: ActionConfig) -> dict[str, SecretStr]:
        resolved: dict[str, SecretStr] = {}
        for name, template in config.headers.items():
            field = f"headers.{name}"
            if not HEADER_NAME.match(name):
                self.add(index, config.name, "is not a valid HTTP header name", field)
            elif name.lower() in RESERVED_HEADERS or name.lower().startswith("x-actionbot-"):
                self.add(index, config.name, "is set by ActionBot and cannot be overridden", field)
            missing = self._missing_variables(template)
            for message in missing:
                self.add(index, config.name, message, field)
            if not missing:
                value = ENV_REFERENCE.sub(lambda m: self.environ[m.group(1)], template)
                resolved[name] = SecretStr(value)
        return resolved

    def _missing_variables(self, template: str) -> list[str]:
        messages = []
        for ref in ENV_REFERENCE.findall(template):
            if not ENV_NAME.match(ref):
                messages.append(f"${{{ref}}} is not a valid environment variable name")
            elif ref not in self.environ:
                messages.append(f"environment variable {ref} is not set")
        return messages


def url_problems(config: ActionConfig, policy: EgressPolicy) -> list[str]:
    """Everything wrong with an action's endpoint URL, checked without any network I/O."""
    try:
        parts = urlsplit(config.url)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        return [f"is not a valid URL ({exc})"]
    if parts.scheme.lower() != "https":
        return [f"must use https:// (got {parts.scheme or 'no scheme'}://)"]
    if not host:
        return ["has no host name"]
    problems: list[str] = []
    if parts.username is not None or parts.password is not None:
        problems.append("must not contain credentials; put them in headers with ${VAR}")
    if "${" in config.url:
        problems.append("must not contain ${VAR} secrets; put them in headers")
    if parts.fragment:
        problems.append("must not contain a #fragment")
    if PLACEHOLDER.search(parts.netloc + "?" + parts.query):
        problems.append("{placeholders} are only allowed in the path")
    if (host_problem := policy.host_problem(host)) is not None:
        problems.append(host_problem)
    problems += _placeholder_problems(config, PLACEHOLDER.findall(parts.path))
    return problems


def _placeholder_problems(config: ActionConfig, names: list[str]) -> list[str]:
    problems = []
    for name in names:
        param = next((p for p in config.parameters if p.name == name), None)
        if param is None:
            problems.append(f"placeholder {{{name}}} names no declared parameter")
        elif not param.required:
            problems.append(f"placeholder {{{name}}} names an optional parameter; make it required")
    return problems


def _field_path(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    """`('parameters', 0, 'type')` → `parameters.part_name.type` where the name is known."""
    parts: list[str] = []
    items = list(loc)
    for i, part in enumerate(items):
        if isinstance(part, int) and i > 0 and items[i - 1] == "parameters":
            params = raw.get("parameters")
            name = None
            if isinstance(params, list) and part < len(params) and isinstance(params[part], dict):
                name = params[part].get("name")
            parts.append(str(name) if isinstance(name, str) else f"[{part}]")
        else:
            parts.append(str(part))
    return ".".join(parts)


def _locate_hint(loc: tuple[int | str, ...]) -> tuple[int | None, str | None]:
    """Where to look for an error: the parameter index (if any) and the key within it."""
    if len(loc) >= 2 and loc[0] == "parameters" and isinstance(loc[1], int):
        key = loc[2] if len(loc) >= 3 and isinstance(loc[2], str) else None
        return loc[1], key
    first = loc[0] if loc and isinstance(loc[0], str) and loc[0] else None
    return None, first


def _pydantic_message(error: Any) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see actions.example.toml)"
    if kind == "missing":
        return "is required"
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected} (got {error.get('input')!r})"
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")
