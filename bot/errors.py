"""One exception tree for ActionBot.

    ActionBotError
     ├── ConfigError              settings or startup configuration is unusable
     │    ├── ActionsFileError     the actions file has one or more problems (all listed)
     │    └── StartupError         the bot cannot start: every problem, one line each
     ├── ActionNotFoundError       a name that is not a defined action
     ├── ArgumentError             arguments for an action do not fit its parameters
     ├── AdminUsageError           an /actions command that cannot be understood
     ├── LLMResponseError          the LLM server answered with something that is not a completion
     └── LLMRejectedError          the LLM server refused the request (4xx other than 429)

Failed webhook calls are *not* exceptions: they are `ActionResult`s with an outcome, so a
caller never has to guess which errors an outbound call can raise.
"""

from __future__ import annotations

from dataclasses import dataclass


class ActionBotError(Exception):
    """Base of every error ActionBot raises on purpose."""


class ConfigError(ActionBotError):
    """Settings or startup configuration cannot be used as given."""


class DatabaseError(ActionBotError):
    """The database file is there but cannot be used: damaged, or locked by another process.
    Not a setting to fix, so `actionbot run` exits 1 (configuration problems exit 2)."""


class StartupError(ConfigError):
    """The bot cannot start; `problems` lists every reason, each saying what to fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n\n".join(f"- {problem}" for problem in problems)
        super().__init__(f"ActionBot cannot start; fix these and start again:\n\n{listed}")


@dataclass(frozen=True)
class Problem:
    """One problem found in an actions file, located as precisely as the parser allows."""

    message: str
    file: str
    action: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.action is not None:
            parts.append(f"action {self.action!r}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        return f"{': '.join(parts)}: {self.message}"


class ActionsFileError(ConfigError):
    """The actions file cannot be loaded; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the actions file"
        super().__init__(header + ":\n" + "\n".join(f"  - {p}" for p in problems))


class ActionNotFoundError(ActionBotError):
    """`name` is not an action defined in the actions file."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        hint = ", ".join(known) if known else "none are defined"
        super().__init__(f"No action named {name!r}. Known actions: {hint}.")


class ArgumentError(ActionBotError):
    """Arguments for `action` do not fit its parameters; `problems` has one line per parameter."""

    def __init__(self, action: str, problems: list[str]) -> None:
        self.action = action
        self.problems = problems
        super().__init__(f"Invalid arguments for {action!r}: " + "; ".join(problems))


class AdminUsageError(ActionBotError):
    """An /actions command that cannot be understood; the message is shown to the admin."""


class LLMResponseError(ActionBotError):
    """The LLM server's answer could not be read as a Chat Completions response."""


class LLMRejectedError(ActionBotError):
    """The LLM server refused the request itself (4xx other than 429): retrying the same
    request cannot help; `status` and the server's `detail` are for the operator's log."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the LLM server refused the request: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
