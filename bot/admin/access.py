"""Who may use `/actions`, decided the same way on every platform.

An admin is an id in `ACTIONBOT_ADMINS` (`platform:id`, comma-separated, spaces allowed),
or whoever the platform itself says manages the bot's home (Slack workspace admins and
owners, Discord members with Manage Server in the operator's own server). Platform answers
that need a request are cached for `ttl` seconds; an answer the platform could not give
(`None`) is not cached, and counts as no.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

ADMIN_CACHE_SECONDS = 300.0


class AdminCheck:
    """The operator's list first, then the platform's cached answer."""

    def __init__(
        self,
        admin_ids: frozenset[str],
        *,
        ttl: float = ADMIN_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.admin_ids = admin_ids
        self.ttl = ttl
        self.clock = clock
        self._answers: dict[tuple[str, str], tuple[bool, float]] = {}

    def listed(self, platform: str, user: str) -> bool:
        """Whether `user` of `platform` is in `ACTIONBOT_ADMINS`."""
        return f"{platform}:{user}" in self.admin_ids

    async def allowed(
        self, platform: str, user: str, ask: Callable[[], Awaitable[bool | None]]
    ) -> bool:
        """Listed, or the platform says so (`ask`, at most once per `ttl` per user)."""
        if self.listed(platform, user):
            return True
        key = (platform, user)
        cached = self._answers.get(key)
        if cached is not None and cached[1] > self.clock():
            return cached[0]
        answer = await ask()
        if answer is None:
            return False
        self._answers[key] = (answer, self.clock() + self.ttl)
        return answer
