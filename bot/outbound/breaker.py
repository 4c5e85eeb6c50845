"""Circuit breakers: stop calling an endpoint that keeps failing, and try it again later.

One breaker per action, in this process. Closed, calls go out and consecutive failures
(a timeout, a connection error, a 5xx) are counted; an answer that is not a failure (any
other status, a 2xx) resets the count. After `failures` in a row it opens: for a cool-down
(30 s the first time, doubled after each failed probe up to 10 min) calls are refused
without a request. Then one call is let through as a probe (half-open) while the others are
still refused: its success closes the breaker, its failure opens it again for longer.
Calls that were never sent (busy, blocked, dry run) change nothing.

Every change of state goes to the `BreakerListener` (metrics, the store for `actions list`
in other processes, the admins' alert channel). The clock is injectable, for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.runtime import config
from bot.types import ActionResult, Outcome

State = Literal["closed", "open", "half_open"]
Admission = Literal["call", "probe", "refuse"]

FIRST_COOLDOWN = 30.0
MAX_COOLDOWN = 600.0
_NOT_SENT = frozenset(
    {Outcome.BUSY, Outcome.BLOCKED, Outcome.DRY_RUN, Outcome.SHORT_CIRCUITED, Outcome.RATE_LIMITED}
)


def is_failure(result: ActionResult) -> bool | None:
    """True for what opens a breaker (timeout, connection error, 5xx), False for an answer
    from the endpoint, None for a call that never reached it."""
    if result.outcome in _NOT_SENT:
        return None
    if result.outcome in (Outcome.TIMEOUT, Outcome.ERROR):
        return True
    return result.outcome is Outcome.HTTP_ERROR and (result.status or 0) >= 500


@dataclass(frozen=True)
class BreakerChange:
    """A breaker that opened, closed, or opened again after a failed probe."""

    action: str
    state: State
    failures: int
    """Consecutive failures that opened it (or the probe that failed: one more)."""
    open_until: float | None
    """Clock time (seconds since the epoch) when the next probe may go; None when closed."""
    cooldown: float
    first_opening: bool
    """True when it opened from closed (the admins are told), False after a failed probe."""
    last_error: str = ""


class BreakerListener(Protocol):
    async def breaker_changed(self, change: BreakerChange) -> None:
        """A breaker changed state (never raises; failures are the listener's to log)."""


@dataclass
class _Breaker:
    state: State = "closed"
    failures: int = 0
    cooldown: float = FIRST_COOLDOWN
    open_until: float = 0.0
    probing: bool = False


class Breakers:
    """The breakers of every action, created on first use (see the module docstring)."""

    def __init__(
        self,
        *,
        failures: int = config.DEFAULT_BREAKER_FAILURES,
        first_cooldown: float = FIRST_COOLDOWN,
        max_cooldown: float = MAX_COOLDOWN,
        clock: Callable[[], float] = time.time,
        listener: BreakerListener | None = None,
    ) -> None:
        self.failures = failures
        self.first_cooldown = first_cooldown
        self.max_cooldown = max_cooldown
        self.clock = clock
        self.listener = listener
        self._breakers: dict[str, _Breaker] = {}

    def admit(self, action: str) -> Admission:
        """Whether a call of `action` may go now: `call` (closed), `probe` (the one call
        after a cool-down) or `refuse`. A `probe` must be followed by `finished`."""
        breaker = self._breakers.get(action)
        if breaker is None or breaker.state == "closed":
            return "call"
        if breaker.probing or self.clock() < breaker.open_until:
            return "refuse"
        breaker.state, breaker.probing = "half_open", True
        return "probe"

    def release(self, action: str) -> None:
        """A `probe` that was not sent after all: the next call probes instead."""
        breaker = self._breakers.get(action)
        if breaker is not None:
            breaker.probing = False

    def state(self, action: str) -> State:
        breaker = self._breakers.get(action)
        return "closed" if breaker is None else breaker.state

    def retry_in(self, action: str) -> float:
        """Seconds until the next probe of an open breaker (0 when it may go now)."""
        breaker = self._breakers.get(action)
        return 0.0 if breaker is None else max(0.0, breaker.open_until - self.clock())

    def open_actions(self) -> dict[str, State]:
        """Every action whose breaker is not closed, with its state."""
        return {name: b.state for name, b in self._breakers.items() if b.state != "closed"}

    async def finished(self, action: str, admission: Admission, result: ActionResult) -> None:
        """A call admitted as `admission` ended with `result`: count it, change state."""
        failed = is_failure(result)
        breaker = self._breakers.setdefault(action, _Breaker())
        if admission == "probe":
            breaker.probing = False
            if failed is None:
                return  # not sent: the next call probes
            if failed:
                breaker.failures += 1
                breaker.cooldown = min(breaker.cooldown * 2, self.max_cooldown)
                await self._open(action, breaker, result, first=False)
            else:
                await self._close(action, breaker)
            return
        if breaker.state != "closed" or failed is None:
            return  # a call that was in flight when it opened says nothing new
        if not failed:
            breaker.failures = 0
            return
        breaker.failures += 1
        if breaker.failures >= self.failures:
            breaker.cooldown = self.first_cooldown
            await self._open(action, breaker, result, first=True)

    async def _open(
        self, action: str, breaker: _Breaker, result: ActionResult, *, first: bool
    ) -> None:
        breaker.state = "open"
        breaker.open_until = self.clock() + breaker.cooldown
        error = result.error or (f"HTTP {result.status}" if result.status else "")
        await self._tell(
            BreakerChange(
                action,
                "open",
                breaker.failures,
                breaker.open_until,
                breaker.cooldown,
                first_opening=first,
                last_error=error or result.outcome.value,
            )
        )

    async def _close(self, action: str, breaker: _Breaker) -> None:
        self._breakers[action] = _Breaker()
        await self._tell(
            BreakerChange(action, "closed", 0, None, breaker.cooldown, first_opening=False)
        )

    async def _tell(self, change: BreakerChange) -> None:
        if self.listener is not None:
            await self.listener.breaker_changed(change)
