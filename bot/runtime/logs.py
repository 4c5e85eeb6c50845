"""Logging: JSON lines for machines, readable lines for people, the turn on every line.

Logs go to stderr (stdout belongs to the console conversation). When stderr is not a
terminal, as in a container, each record is one JSON object; in a terminal it is a readable
line. Every record logged during a turn carries its `platform` and `conversation`
(`turn_scope`). Secrets are never logged on purpose; as a safety net, `Redactor` replaces any
known secret value (tokens, header secrets) that still reaches a record with `[redacted]`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

QUIET_LOGGERS = (
    "httpx",
    "httpcore",
    "httpx2",
    "httpcore2",
    "openai",
    "discord",
    "slack_bolt",
    "slack_sdk",
)
"""Libraries kept at WARNING: their INFO/DEBUG lines can carry URLs with customer data."""
REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6
"""Shorter values are not redacted: they would blank out ordinary words."""

_turn: ContextVar[tuple[str, str] | None] = ContextVar("actionbot_turn", default=None)


@contextmanager
def turn_scope(platform: str, conversation: str) -> Iterator[None]:
    """Tag every record logged inside (including in tasks started here) with the turn."""
    token = _turn.set((platform, conversation))
    try:
        yield
    finally:
        _turn.reset(token)


class _TurnFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        turn = _turn.get()
        record.platform, record.conversation = turn if turn else ("", "")
        return True


class Redactor(logging.Filter):
    """Replaces known secret values in a record's message and traceback."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets |= {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg, record.args = self.scrub(record.getMessage()), None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.scrub(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, platform, conversation."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("platform", "conversation"):
            if value := getattr(record, key, ""):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [platform conversation] message` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(turn)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        platform = getattr(record, "platform", "")
        conversation = getattr(record, "conversation", "")
        record.turn = f" [{platform} {conversation}]" if platform else ""
        return super().format(record)


def protect_secrets(values: Iterable[str]) -> None:
    """Add `values` to the redactor of every handler `configure_logging` installed."""
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, Redactor):
                found.add(values)


def configure_logging(default_level: str = "INFO", *, secrets: Iterable[str] = ()) -> Redactor:
    """Log to stderr at `LOG_LEVEL` (or `default_level`); returns the redactor to extend."""
    wanted = os.environ.get("LOG_LEVEL", default_level).upper()
    level = wanted if wanted in logging.getLevelNamesMapping() else default_level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if sys.stderr.isatty() else JsonFormatter())
    redactor = Redactor(secrets)
    handler.addFilter(_TurnFilter())
    handler.addFilter(redactor)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.captureWarnings(True)
    return redactor
