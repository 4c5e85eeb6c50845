"""Logging setup for the `actionbot` command."""

from __future__ import annotations

import logging
import os

QUIET_LOGGERS = ("httpx", "httpcore", "openai", "hpack", "aiosqlite")
"""Libraries whose INFO/DEBUG lines can carry URLs with customer data or request details."""


def configure_logging(default_level: str = "INFO") -> None:
    """Log to stderr at `LOG_LEVEL` (or `default_level`); keep chatty libraries at WARNING."""
    level = os.environ.get("LOG_LEVEL", default_level).upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else default_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
