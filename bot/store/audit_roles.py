"""The guardrails' roles of the store and the values they return: the audit trail of
recorded calls (`AuditLog`), and what admins and circuit breakers decided about each action
(`ActionModes`). Re-exported by `bot.store`; imports nothing of the bot."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

BreakerState = Literal["closed", "open", "half_open"]


class AuditRow(BaseModel):
    """One recorded call as the audit trail shows it: who asked (from the verified caller
    header), with what arguments (as sent, secrets masked), and how it went. Calls recorded
    before the audit trail existed have no asker and no arguments (None)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    recorded_at: datetime
    action: str
    platform: str | None = None
    team: str | None = None
    user_id: str | None = None
    channel: str | None = None
    conversation: str | None = None
    arguments: str | None = None
    """The JSON text of the arguments as sent."""
    idempotency_key: str
    outcome: str
    status: int | None = None
    latency_ms: float
    attempts: int
    error: str | None = None


class BreakerRecord(BaseModel):
    """An action's circuit breaker as its process last saved it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: BreakerState
    failures: int
    open_until: datetime | None = None
    changed_at: datetime


class AuditLog(Protocol):
    """The call log read back row by row: who triggered which call, with what."""

    async def audit_page(
        self,
        *,
        after_id: int = 0,
        since: float | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditRow]:
        """Up to `limit` call rows with an id above `after_id` (recorded at or after `since`,
        Unix seconds; of `action` alone), by id: pass the last id to get the next page."""
        ...

    async def recent_calls(self, action: str, *, limit: int = 10) -> list[AuditRow]:
        """The newest `limit` call rows of `action`, newest first."""
        ...


class ActionModes(Protocol):
    """Per-action state beside the on/off toggle: an admin's dry-run override, and the last
    state of each circuit breaker (so `actions list` in another process can show it)."""

    async def set_dry_run(self, name: str, on: bool, *, actor: str) -> None:
        """Record that `actor` put action `name` in dry-run mode (or back to live), now."""

    async def action_modes(self) -> dict[str, bool]:
        """Every dry-run override an admin set, by name (True: dry run)."""
        ...

    async def save_breaker(
        self, name: str, state: str, *, failures: int, open_until: float | None
    ) -> None:
        """Keep the breaker state of action `name` (`closed`, `open` or `half_open`), now."""

    async def breakers(self) -> dict[str, BreakerRecord]:
        """The last saved breaker state of each action that has one."""
        ...
