"""Log records: JSON shape, the turn on every line, and secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from bot.runtime.logs import JsonFormatter, Redactor, TextFormatter, _TurnFilter, turn_scope


def capture(formatter: logging.Formatter, redactor: Redactor | None = None) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(_TurnFilter())
    if redactor is not None:
        handler.addFilter(redactor)
    logger = logging.getLogger("test.logs")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return stream


async def test_json_lines_carry_the_turn_also_in_child_tasks() -> None:
    """Inside a turn, records (also from tasks it starts) name platform and conversation."""
    stream = capture(JsonFormatter())
    logger = logging.getLogger("test.logs")

    with turn_scope("slack", "C1:123.4"):
        logger.info("inside %s", "turn")
        await asyncio.create_task(_log_from_task(logger))
    logger.info("outside")

    first, child, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "inside turn"
    assert (first["platform"], first["conversation"]) == ("slack", "C1:123.4")
    assert child["conversation"] == "C1:123.4"
    assert "conversation" not in outside
    assert first["level"] == "INFO"
    assert first["logger"] == "test.logs"


async def _log_from_task(logger: logging.Logger) -> None:
    logger.warning("from a child task")


def test_redactor_blanks_secrets_in_messages_and_tracebacks() -> None:
    """A secret that reaches a record, in its arguments or its traceback, is replaced."""
    stream = capture(JsonFormatter(), Redactor(["sekrit-token-42", "abc"]))
    logger = logging.getLogger("test.logs")

    logger.info("calling with %s", "Bearer sekrit-token-42")
    try:
        raise ValueError("bad token sekrit-token-42")
    except ValueError:
        logger.exception("failed")

    text = stream.getvalue()
    assert "sekrit-token-42" not in text
    assert text.count("[redacted]") >= 2
    assert "abc" not in Redactor(["abc"]).secrets  # too short to redact safely


def test_text_format_for_terminals() -> None:
    """In a terminal, lines are readable and show the turn in brackets."""
    stream = capture(TextFormatter())
    with turn_scope("discord", "dm:7"):
        logging.getLogger("test.logs").info("hello")

    assert "INFO" in stream.getvalue()
    assert "[discord dm:7]: hello" in stream.getvalue()
