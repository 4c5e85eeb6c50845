"""Rate limits: `20/minute` per customer (`ACTIONBOT_USER_RATE`) and per action (`rate`).

A limit is a leaky bucket (`aiolimiter`): up to N at once, then one more each period/N. A
check never waits: it takes a place when there is one and says no otherwise. Limits are
kept in this process only; with several replicas each one allows its own N.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from aiolimiter import AsyncLimiter

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d{1,9})\s*/\s*([a-z]+?)s?\s*$")
RATE_FORMS = "a number of calls per second, minute, hour or day, e.g. '60/minute'"
MAX_KEYS = 10_000
"""Buckets kept before full (idle) ones are forgotten; an idle bucket allows N again anyway."""


@dataclass(frozen=True)
class Rate:
    """`count` per `period` seconds, as written (`60/minute`)."""

    count: int
    period: float
    text: str

    def __str__(self) -> str:
        return self.text


@functools.lru_cache(maxsize=1024)
def parse_rate(text: str) -> Rate:
    """`60/minute` (also `1/second`, `500/hour`, `1000/day`); `ValueError` says the forms."""
    match = _RATE.match(text.lower())
    if match is None or match.group(2) not in PERIODS or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a rate: use {RATE_FORMS}")
    count, unit = int(match.group(1)), match.group(2)
    return Rate(count, PERIODS[unit], f"{count}/{unit}")


class Limits:
    """One bucket per key (a customer, an action), each allowing `rate` (or the rate given
    per check, so a reloaded action's new `rate` takes effect)."""

    def __init__(self, rate: Rate | None = None) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[Rate, AsyncLimiter]] = {}

    async def allow(self, key: str, rate: Rate | None = None) -> bool:
        """Take a place in `key`'s bucket now; False when it is full (nothing is taken)."""
        rate = rate or self.rate
        if rate is None:
            return True
        found = self._buckets.get(key)
        if found is None or found[0] != rate:
            if len(self._buckets) >= MAX_KEYS:
                self._forget_idle()
            found = (rate, AsyncLimiter(rate.count, rate.period))
            self._buckets[key] = found
        bucket = found[1]
        if not bucket.has_capacity():
            return False
        await bucket.acquire()  # there is room: it takes the place without waiting
        return True

    def _forget_idle(self) -> None:
        """Drop buckets that have drained completely (they allow the full rate again)."""
        for key, (_, bucket) in list(self._buckets.items()):
            if bucket.has_capacity(bucket.max_rate):
                del self._buckets[key]


class CustomerLimits:
    """`ACTIONBOT_USER_RATE`: turns per customer per platform. Over the limit a customer is
    told once (`tell`); further messages while still over it are dropped quietly
    (`quiet`), so a flood gets one answer, not one per message."""

    def __init__(self, rate: Rate | None) -> None:
        self._limits = Limits(rate)
        self._told: set[str] = set()

    @property
    def rate(self) -> Rate | None:
        return self._limits.rate

    async def check(self, platform: str, user: str) -> Literal["ok", "tell", "quiet"]:
        key = f"{platform}:{user}"
        if await self._limits.allow(key):
            self._told.discard(key)
            return "ok"
        if key in self._told:
            return "quiet"
        if len(self._told) >= MAX_KEYS:
            self._told.clear()  # at worst some are told twice
        self._told.add(key)
        return "tell"
