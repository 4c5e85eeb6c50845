"""What happens when an action's circuit breaker changes state: the gauge
`actionbot_breaker_open{action}`, the store (so `actions list` in another process shows
it), and, once per opening, an alert to the admins (`ACTIONBOT_ALERT_CHANNEL`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from bot.actions.models import ActionSet
from bot.errors import ActionNotFoundError
from bot.outbound.breaker import BreakerChange
from bot.runtime.alerts import Alerts
from bot.runtime.metrics import Metrics
from bot.store import BreakerRecord

logger = logging.getLogger(__name__)

STALE_BREAKER = 3600.0
"""A stored open breaker older than this past its cool-down is not shown: the process that
opened it has not said since (it stopped, or no call came to probe)."""


def stored_open(records: Mapping[str, BreakerRecord], *, now: float) -> dict[str, str]:
    """The breakers the store last heard of as not closed (by any process), but not those
    long past their cool-down (`STALE_BREAKER`)."""
    return {
        name: record.state
        for name, record in records.items()
        if record.state != "closed"
        and (record.open_until is None or record.open_until.timestamp() > now - STALE_BREAKER)
    }


class BreakerSink(Protocol):
    async def save_breaker(
        self, name: str, state: str, *, failures: int, open_until: float | None
    ) -> None: ...


def opened_text(change: BreakerChange, display_name: str) -> str:
    return (
        f"⚠️ Action “{display_name}” ({change.action}) is failing: {change.failures} calls "
        f"in a row failed (last: {change.last_error}). ActionBot stops calling it for "
        f"{change.cooldown:g} s, then tries one call; meanwhile customers are told it is "
        "temporarily unavailable."
    )


def closed_text(change: BreakerChange, display_name: str) -> str:
    return f"✅ Action “{display_name}” ({change.action}) answers again; calls go out as usual."


class BreakerReport:
    """The breakers' listener in a running bot (see the module docstring)."""

    def __init__(
        self, *, actions: ActionSet, store: BreakerSink, metrics: Metrics, alerts: Alerts
    ) -> None:
        self.actions = actions
        self.store = store
        self.metrics = metrics
        self.alerts = alerts

    async def breaker_changed(self, change: BreakerChange) -> None:
        self.metrics.breaker_open.labels(change.action).set(0 if change.state == "closed" else 1)
        logger.info(
            "breaker of %s %s (failures=%d, cooldown=%gs)",
            change.action,
            change.state,
            change.failures,
            change.cooldown,
        )
        name = self._display_name(change.action)
        if change.state == "open" and change.first_opening:
            self.alerts.send(opened_text(change, name))
        elif change.state == "closed":
            self.alerts.send(closed_text(change, name))
        try:
            await self.store.save_breaker(
                change.action, change.state, failures=change.failures, open_until=change.open_until
            )
        except Exception:
            logger.warning("could not store the breaker state of %s", change.action, exc_info=True)

    def _display_name(self, action: str) -> str:
        try:
            return self.actions.get(action).display_name
        except ActionNotFoundError:
            return action
