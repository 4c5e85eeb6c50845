"""Loading the actions file: TOML in, checked `Action`s out, or every problem at once.

Each problem names the file, the action, the field and, where it can be found, the line:
syntax errors, unknown keys, bad types, duplicate names, `http://` or credentials in URLs,
non-public hosts, misplaced placeholders and missing `${VAR}` secrets.
"""

from __future__ import annotations

import codecs
import math
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError

from bot.actions.locate import Locator
from bot.actions.models import (
    ENV_NAME,
    ENV_REFERENCE,
    HEADER_NAME,
    HEADER_VALUE,
    PLACEHOLDER,
    RESERVED_HEADERS,
    Action,
    ActionConfig,
    ActionSet,
    derive_name,
)
from bot.errors import ActionsFileError, ConfigError, Problem


class HostPolicy(Protocol):
    """Which endpoint hosts the operator allows (the egress policy, `bot.outbound.egress`),
    asked at load time without any network access."""

    def host_problem(self, host: str) -> str | None:
        """Why `host` may not be called, or None."""
        ...


_UTF16_32_BOMS = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)
_SYNTAX_WORDING = (
    ("Illegal character '\\n'", 'a "…" string is not closed on this line (add the closing ")'),
    ("Unterminated string", 'a """…""" string is never closed'),
    ('Expected "\'"', "a '…' string is not closed (add the closing ')"),
    ("Unclosed array", "a [ list ] is not closed (add the closing ])"),
    ("Unclosed inline table", "a { table } is not closed (add the closing } on the same line)"),
)
"""tomllib's messages for the commonest slips, in words (prefix → what to say instead)."""


def load_actions(path: Path, *, environ: Mapping[str, str], policy: HostPolicy) -> ActionSet:
    """Load and check the actions file; raise `ActionsFileError` listing every problem."""
    try:
        text = decode_text(path.read_bytes(), path)
    except FileNotFoundError:
        raise ConfigError(
            f"Actions file not found: {path}. Copy actions.example.toml to {path} "
            "or point ACTIONBOT_ACTIONS at your file."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the actions file {path}: {exc.strerror}") from None
    return parse_actions(text, source=str(path), environ=environ, policy=policy)


def decode_text(raw: bytes, path: Path) -> str:
    """The file's text: UTF-8, with or without a byte order mark; anything else is a
    `ConfigError` that says how to fix it."""
    fix = "save it as UTF-8 (in most editors: Save As, encoding UTF-8)"
    if raw.startswith(_UTF16_32_BOMS) or b"\x00" in raw:
        raise ConfigError(f"The actions file {path} is UTF-16 or UTF-32 text; {fix}.")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        raise ConfigError(
            f"The actions file {path} is not UTF-8 text (line {line} has the byte "
            f"0x{byte:02x}); {fix}."
        ) from None


def parse_actions(
    text: str, *, source: str, environ: Mapping[str, str], policy: HostPolicy
) -> ActionSet:
    """Parse the TOML text of an actions file (see `load_actions`)."""
    text = text.removeprefix("\ufeff")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ActionsFileError([_syntax_problem(exc, source)]) from None
    locator = Locator(text)
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
        # In file order; the few problems without a line (top-level ones) stay in front.
        raise ActionsFileError(sorted(problems, key=lambda p: p.line or 0))
    return ActionSet(actions, source=source)


CHAT_SOURCE = "chat"
CHAT_HEADER = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]* )?\$\{[A-Za-z_][A-Za-z0-9_]*\}")
"""A header value made in chat: an optional scheme word and one `${VAR}` reference, so no
secret is ever typed into a chat client (and kept in its history)."""
CHAT_HEADER_RULE = (
    "may only reference a ${VAR} set in the bot's environment (e.g. Bearer ${CRM_TOKEN}): "
    "secrets are never typed into chat"
)


def check_chat_action(
    raw: dict[str, Any],
    *,
    taken: Collection[str],
    environ: Mapping[str, str],
    policy: HostPolicy,
) -> Action:
    """One action made in chat, checked exactly as a `[[actions]]` table of the file is
    (plus: header values only reference `${VAR}`s, and the name is not one of `taken`);
    `ActionsFileError` lists every problem, each with its field."""
    checker = _Checker(source=CHAT_SOURCE, environ=environ, policy=policy, locator=Locator(""))
    action = checker.check(0, raw)
    name = action.name if action is not None else str(raw.get("name") or "")
    if name in taken:
        checker.add(0, name, "another action already has this name", "name")
    for header, value in (raw.get("headers") or {}).items():
        if isinstance(value, str) and not CHAT_HEADER.fullmatch(value.strip()):
            checker.add(0, name, CHAT_HEADER_RULE, f"headers.{header}")
    if checker.problems or action is None:
        raise ActionsFileError(checker.problems)
    return action.model_copy(update={"origin": "chat"})


def with_chat_actions(
    file: ActionSet,
    definitions: list[dict[str, Any]],
    *,
    environ: Mapping[str, str],
    policy: HostPolicy,
) -> tuple[ActionSet, list[Problem]]:
    """The file's actions, then the chat-made ones that still check out, and the problems
    of those left out (a variable removed from the environment, a name the file took
    since): the bot starts and reloads all the same."""
    actions = list(file)
    problems: list[Problem] = []
    for definition in definitions:
        try:
            taken = [a.name for a in actions]
            actions.append(
                check_chat_action(definition, taken=taken, environ=environ, policy=policy)
            )
        except ActionsFileError as exc:
            problems += exc.problems
    return ActionSet(actions, source=file.source), problems


def _syntax_problem(exc: tomllib.TOMLDecodeError, source: str) -> Problem:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column \d+\)", message)
    line = int(found.group(1)) if found else None
    message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    for prefix, words in _SYNTAX_WORDING:
        if message.startswith(prefix):
            message = words
            break
    return Problem(f"TOML syntax error: {message}", source, line=line)


class _Checker:
    """Checks `[[actions]]` entries one by one, collecting every problem."""

    def __init__(
        self,
        *,
        source: str,
        environ: Mapping[str, str],
        policy: HostPolicy,
        locator: Locator,
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
        param, keys = _locate_hint(loc if loc is not None else tuple((field or "").split(".")))
        line = self.locator.line(index, param, keys)
        self.problems.append(Problem(message, self.source, label, field, line))

    def check(self, index: int, raw: dict[str, Any]) -> Action | None:
        entry = dict(raw)
        if "name" not in entry and isinstance(entry.get("display_name"), str):
            entry["name"] = derive_name(entry["display_name"])
        label = str(entry.get("name") or entry.get("display_name") or f"#{index + 1}")
        before = len(self.problems)
        if isinstance(entry.get("name"), str):  # even when other fields are wrong
            self._check_unique_name(index, entry["name"])
        try:
            config = ActionConfig.model_validate(entry)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(error["loc"])
                self.add(index, label, _pydantic_message(error), _field_path(loc, raw), loc)
            self._check_remaining(index, label, raw, {str(e["loc"][0]) for e in exc.errors()})
            return None
        self._check_unique_parameters(index, config)
        self._check_url(index, config.name, config.url, config.parameters)
        self._check_timeout(index, config)
        header_values = self._resolve_headers(index, config.name, config.headers)
        if len(self.problems) > before:
            return None
        return Action(**config.model_dump(), header_values=header_values)

    def _check_remaining(self, index: int, label: str, raw: dict[str, Any], bad: set[str]) -> None:
        """After schema errors, still check the fields that were well-formed, so every problem
        of the action is reported at once."""
        url, headers = raw.get("url"), raw.get("headers")
        if "url" not in bad and isinstance(url, str):
            parameters = None if "parameters" in bad else raw.get("parameters", [])
            self._check_url(index, label, url, parameters)
        if "headers" not in bad and isinstance(headers, dict):
            self._resolve_headers(index, label, headers)

    def _check_unique_name(self, index: int, name: str) -> None:
        if name in self.seen:
            first = self.locator.line(self.seen[name])
            where = f" (first defined at line {first})" if first else ""
            self.add(index, name, f"duplicate action name{where}", "name")
        self.seen.setdefault(name, index)

    def _check_unique_parameters(self, index: int, config: ActionConfig) -> None:
        names = [p.name for p in config.parameters]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            self.add(index, config.name, f"parameter {dup!r} is declared twice", "parameters")

    def _check_url(self, index: int, label: str, url: str, parameters: Any) -> None:
        for message in url_problems(url, parameters, self.policy):
            self.add(index, label, message, "url")

    def _check_timeout(self, index: int, config: ActionConfig) -> None:
        timeout = config.timeout
        if timeout is not None and not math.isfinite(timeout):
            self.add(index, config.name, "must be a finite number of seconds", "timeout")

    def _resolve_headers(
        self, index: int, label: str, headers: dict[str, str]
    ) -> dict[str, SecretStr]:
        resolved: dict[str, SecretStr] = {}
        for name, template in headers.items():
            field = f"headers.{name}"
            if not HEADER_NAME.match(name):
                self.add(index, label, "is not a valid HTTP header name", field)
            elif name.lower() in RESERVED_HEADERS or name.lower().startswith("x-actionbot-"):
                self.add(index, label, "is set by ActionBot and cannot be overridden", field)
            missing = self._missing_variables(template)
            for message in missing:
                self.add(index, label, message, field)
            if not missing:
                value = ENV_REFERENCE.sub(lambda m: self.environ[m.group(1)], template)
                if not HEADER_VALUE.fullmatch(value):
                    # The value is a secret: say what is wrong without quoting it.
                    message = "has a line break, control or non-ASCII character in its value"
                    self.add(index, label, message, field)
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


def url_problems(url: str, parameters: Any, policy: HostPolicy) -> list[str]:
    """Everything wrong with an action's endpoint URL, checked without any network I/O.

    `parameters` are the declared parameters (models or raw tables), or None when they are
    themselves invalid, in which case placeholders are not checked against them.
    """
    try:
        parts = urlsplit(url)
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
    if "${" in url:
        problems.append("must not contain ${VAR} secrets; put them in headers")
    if parts.fragment:
        problems.append("must not contain a #fragment")
    if PLACEHOLDER.search(parts.netloc + "?" + parts.query):
        problems.append("{placeholders} are only allowed in the path")
    if (host_problem := policy.host_problem(host)) is not None:
        problems.append(f"{host_problem} (to allow it, add {host} to ACTIONBOT_EGRESS_ALLOW)")
    if parameters is not None:
        problems += _placeholder_problems(parameters, PLACEHOLDER.findall(parts.path))
    return problems


def _placeholder_problems(parameters: Any, names: list[str]) -> list[str]:
    # A context parameter (`from`) is always filled, so it may stand in the path too.
    declared = {
        _get(p, "name"): bool(
            _get(p, "required") or _get(p, "from" if isinstance(p, dict) else "source")
        )
        for p in parameters
    }
    problems = []
    for name in names:
        if name not in declared:
            problems.append(f"placeholder {{{name}}} names no declared parameter")
        elif not declared[name]:
            problems.append(f"placeholder {{{name}}} names an optional parameter; make it required")
    return problems


def _get(parameter: Any, key: str) -> Any:
    """A field of a parameter, whether a validated model or a raw TOML table."""
    return parameter.get(key) if isinstance(parameter, dict) else getattr(parameter, key, None)


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


def _locate_hint(loc: tuple[int | str, ...]) -> tuple[int | None, tuple[str, ...]]:
    """Where to look for an error: the parameter index (if any) and the key path within the
    action or parameter, e.g. `(None, ("headers", "Host"))`."""
    if len(loc) >= 2 and loc[0] == "parameters" and isinstance(loc[1], int):
        key = loc[2] if len(loc) >= 3 and isinstance(loc[2], str) else None
        return loc[1], (key,) if key else ()
    keys = tuple(str(part) for part in loc if isinstance(part, str) and part)
    return None, keys


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
