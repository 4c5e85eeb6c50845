"""Alerts for the admins: a line posted to `ACTIONBOT_ALERT_CHANNEL` (and always logged).

Each platform adapter registers how it posts to a channel; `Alerts.send` posts in the
background, so whatever raised the alert (a failing call) does not wait for it. A post that
fails is logged as one warning per platform and cause, not once per alert: the alert itself
is still in the log, and whatever raised it goes on working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

logger = logging.getLogger(__name__)

Poster = Callable[[str, str], Awaitable[None]]
"""Posts `text` (second) to the channel id (first) on one platform; raises when it cannot."""


class Alerts:
    """Where admin alerts go: a channel per platform (`ACTIONBOT_ALERT_CHANNEL`)."""

    def __init__(self, channels: Mapping[str, str] | None = None) -> None:
        self.channels = dict(channels or {})
        self._posters: dict[str, Poster] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned: set[tuple[str, str]] = set()

    def register(self, platform: str, post: Poster) -> None:
        """How `platform` posts; alerts for a platform without a poster are only logged."""
        self._posters[platform] = post

    def send(self, text: str) -> None:
        """Log `text` and post it to every alert channel, in the background."""
        logger.warning("alert: %s", text)
        for platform, channel in self.channels.items():
            post = self._posters.get(platform)
            if post is None:
                self._warn_once(platform, "not connected", "its adapter is not running")
                continue
            task = asyncio.create_task(self._post(platform, post, channel, text))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the posts under way (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _post(self, platform: str, post: Poster, channel: str, text: str) -> None:
        try:
            await post(channel, text)
        except Exception as exc:  # any failure of the platform: the alert stays logged
            self._warn_once(platform, type(exc).__name__, str(exc) or type(exc).__name__)

    def _warn_once(self, platform: str, cause: str, detail: str) -> None:
        if (platform, cause) in self._warned:
            return
        self._warned.add((platform, cause))
        channel = self.channels.get(platform, "")
        logger.warning(
            "cannot post alerts to %s:%s (%s); alerts are logged only. Check that the bot "
            "is in that channel and may post there.",
            platform,
            channel,
            detail,
        )
