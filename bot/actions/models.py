"""Custom Actions: the models, tool schemas, argument validation and request shapes.

An action is an admin-defined HTTPS webhook. This module defines `Action` and `Parameter`,
renders each action as an OpenAI function tool, checks a model's arguments against the
declared parameters, and prepares the request (path placeholders, query string or JSON body).
Loading the TOML file is in `bot/actions_file.py`; the network call is in `bot/webhooks.py`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.errors import ActionNotFoundError, ArgumentError
from bot.runtime.config import DEFAULT_MAX_CONCURRENCY
from bot.runtime.rates import parse_rate

ACTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""What an HTTP header value may hold: no line breaks or other control characters."""
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
ENV_REFERENCE = re.compile(r"\$\{([^}]*)\}")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CHANNEL_ENTRY = re.compile(r"^(slack|discord|console):[A-Za-z0-9_.-]+$")
"""A `channels` entry: `slack:C0123`, `discord:98765`, `console:local`."""
FIELD_PATH = re.compile(r"^[A-Za-z0-9_$-]+(\[\])?(\.[A-Za-z0-9_$-]+(\[\])?)*$")
"""A `response_fields` entry: `name`, `a.b`, `items[].name`."""
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


class ContextSource(StrEnum):
    """Where ActionBot takes a context parameter's value from: the verified platform event,
    never the model."""

    USER_ID = "user.id"
    USER_NAME = "user.name"
    USER_EMAIL = "user.email"
    PLATFORM = "platform"
    TEAM_ID = "team.id"
    CHANNEL_ID = "channel.id"
    CONVERSATION_ID = "conversation.id"
    MESSAGE_ID = "message.id"


class Audience(StrEnum):
    """Who an action is offered for: every customer, or only admins."""

    EVERYONE = "everyone"
    ADMINS = "admins"


class Method(StrEnum):
    """GET sends parameters as a query string, POST as a JSON body."""

    GET = "GET"
    POST = "POST"


class Parameter(BaseModel):
    """A named value the AI extracts from the conversation before calling the action, or,
    with `from`, one ActionBot fills from the verified platform event (hidden from the AI)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str
    type: ParameterType = ParameterType.STRING
    description: str = Field(min_length=1)
    required: bool = False
    source: ContextSource | None = Field(None, alias="from")
    """Filled by ActionBot from the verified event; not offered to the model."""

    @property
    def kind(self) -> str:
        """How admins see it: `string, required`, or `from user.id` for a context one."""
        if self.source is not None:
            return f"from {self.source.value}"
        return f"{self.type.value}, {'required' if self.required else 'optional'}"

    @model_validator(mode="after")
    def _check_source(self) -> Parameter:
        if self.source is None:
            if "type" not in self.model_fields_set:
                raise ValueError("field 'type' is required (string, number or boolean)")
            return self
        if self.type is not ParameterType.STRING:
            raise ValueError(f"a parameter with from = {self.source.value!r} is text: drop 'type'")
        if self.required:
            raise ValueError(
                f"a parameter with from = {self.source.value!r} is always filled: drop 'required'"
            )
        return self

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


MAX_RETRIES = 5


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
    max_concurrency: int = Field(DEFAULT_MAX_CONCURRENCY, ge=1)
    """Calls of this action in flight at once; more wait (bounded) for a slot."""
    confirm: bool = False
    """The asking user confirms each call on a card before it is sent."""
    channels: list[str] = Field(default_factory=list)
    """Where the action is offered, as `platform:id` (`slack:C123`); empty: everywhere."""
    audience: Audience = Audience.EVERYONE
    response_fields: list[str] = Field(default_factory=list)
    """Only these fields of the endpoint's JSON reach the model (`a.b`, `items[].name`)."""
    retries: int = Field(0, ge=0, le=MAX_RETRIES)
    """Extra tries after a connect error, 429, 502, 503 or 504, within the one timeout."""
    mode: Literal["live", "dry_run"] = "live"
    """`dry_run`: no request is sent; the model sees what would have been (guard.py)."""
    rate: str | None = None
    """Calls allowed per process, `60/minute` (per second, minute, hour or day)."""
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    parameters: list[Parameter] = Field(default_factory=list)

    @field_validator("rate")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        return None if value is None else parse_rate(value).text

    @field_validator("mode", mode="before")
    @classmethod
    def _lower_mode(cls, value: object) -> object:
        return value.strip().lower().replace("-", "_") if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not ACTION_NAME.match(value):
            raise ValueError("must be 1-64 characters of letters, digits, _ and -")
        return value

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not CHANNEL_ENTRY.match(entry):
                raise ValueError(
                    f"{entry!r} is not platform:id (e.g. 'slack:C0123ABC', 'discord:98765', "
                    "'console:local')"
                )
        return value

    @field_validator("audience", mode="before")
    @classmethod
    def _lower_audience(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("response_fields")
    @classmethod
    def _check_fields(cls, value: list[str]) -> list[str]:
        for path in value:
            if not FIELD_PATH.match(path):
                raise ValueError(
                    f"{path!r} is not a field path: names joined by dots, [] after an array "
                    "(e.g. 'in_stock', 'items[].name')"
                )
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
    origin: Literal["file", "chat"] = "file"
    """Where the action was defined: the actions file, or `/actions new` in chat."""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def offered_to(self, platform: str, channel: str, *, admin: bool) -> bool:
        """Whether this action is a tool in a conversation of `channel` on `platform` with
        a user who is (or is not) an admin (`channels`, `audience`)."""
        if self.audience is Audience.ADMINS and not admin:
            return False
        return not self.channels or f"{platform}:{channel}" in self.channels

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
    """The action as an OpenAI Chat Completions function tool (context parameters, which
    ActionBot fills, are not in it)."""
    asked = [p for p in action.parameters if p.source is None]
    properties = {p.name: {"type": p.type.value, "description": p.description} for p in asked}
    return {
        "type": "function",
        "function": {
            "name": action.name,
            "description": action.description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": [p.name for p in asked if p.required],
                "additionalProperties": False,
            },
        },
    }


def parse_arguments(
    action: Action,
    raw: str | Mapping[str, Any],
    *,
    context: Mapping[ContextSource, str] | None = None,
) -> Arguments:
    """Check a model's (or an admin's) arguments against `action`'s parameters.

    Obvious forms are accepted ("5" for a number, "true" for a boolean); anything else raises
    `ArgumentError` with one readable line per parameter, meant for the model to act on.
    With `context` (a customer's turn), context parameters are filled from it and a value
    the model sent for one is refused; without it (an admin's test), they are given like
    any required parameter.
    """
    values = _decode(action, raw)
    problems = [
        f"unknown parameter {key!r} (this action takes: {_names(action)})"
        for key in values
        if action.parameter(key) is None
    ]
    result: Arguments = {}
    for param in action.parameters:
        if param.source is not None and context is not None:
            problems += _fill(param, values, context, result)
            continue
        required = param.required or param.source is not None
        value = values.get(param.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                problems.append(f"{param.name!r} is required ({param.description})")
            continue
        try:
            result[param.name] = coerce(param, value)
        except ValueError as exc:
            problems.append(f"{param.name!r} {exc}")
    if problems:
        raise ArgumentError(action.name, problems)
    return result


def _fill(
    param: Parameter,
    values: Mapping[str, Any],
    context: Mapping[ContextSource, str],
    result: Arguments,
) -> list[str]:
    """Put the verified value of a context parameter into `result`; the problems if the
    model tried to set it or the platform cannot say."""
    assert param.source is not None
    if param.name in values:
        return [
            f"{param.name!r} is filled by ActionBot from the verified {param.source.value}; "
            "do not send it"
        ]
    value = context.get(param.source, "")
    if not value:
        return [f"{param.name!r} cannot be filled: {param.source.value} is not known here"]
    result[param.name] = value
    return []


def _names(action: Action) -> str:
    asked = [p.name for p in action.parameters if p.source is None]
    return ", ".join(asked) or "no parameters"


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


# --- the loaded set ----------------------------------------------------------------------


class ActionSet:
    """The loaded actions, in file order, looked up by name. A reload `replace`s them in
    place, so every holder of the set sees the new actions from its next lookup; a turn
    keeps the `Action` objects it started with."""

    def __init__(self, actions: list[Action], *, source: str) -> None:
        self._by_name = {a.name: a for a in actions}
        self.source = source
        self.version = 0
        """Counts replacements: what was derived from the set (tool schemas) is stale once
        it changes."""
        self._listeners: list[Callable[[], None]] = []

    def replace(self, fresh: ActionSet) -> None:
        """Take `fresh`'s actions, at once, and tell the listeners."""
        self._by_name = dict(fresh._by_name)
        self.source = fresh.source
        self.version += 1
        for listener in list(self._listeners):
            listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every `replace`."""
        self._listeners.append(listener)

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


# --- what goes back to the model ----------------------------------------------------------

_Spec = dict[str, tuple[bool, "_Spec"]]


def project(data: Any, paths: list[str]) -> Any:
    """Only the fields `paths` name (`response_fields`): `a.b` walks objects, `items[]`
    walks every element of an array. Anything else is left out, including a body that is
    not an object."""
    spec: _Spec = {}
    whole: set[tuple[str, ...]] = set()  # paths kept entirely: a shorter path wins
    for path in sorted(paths, key=lambda p: p.count(".")):
        level: _Spec = spec
        prefix: tuple[str, ...] = ()
        segments = path.split(".")
        for depth, segment in enumerate(segments):
            name, array = segment.removesuffix("[]"), segment.endswith("[]")
            prefix = (*prefix, name)
            if prefix in whole:
                break
            known_array, below = level.get(name, (False, {}))
            level[name] = (known_array or array, below)
            if depth == len(segments) - 1:
                below.clear()  # the whole field, whatever deeper paths said
                whole.add(prefix)
            level = below
    return _keep(data, spec) if isinstance(data, dict) else {}


def _keep(value: Any, spec: _Spec) -> Any:
    if not spec:
        return value
    if not isinstance(value, dict):
        return None
    kept: dict[str, Any] = {}
    for name, (array, below) in spec.items():
        if name not in value:
            continue
        item = value[name]
        if isinstance(item, list) and (array or below):
            kept[name] = [_keep(element, below) for element in item] if below else item
        elif not array or not below:
            kept[name] = _keep(item, below)
    return kept
