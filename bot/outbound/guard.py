"""Guardrails in front of every webhook call: dry run, circuit breaker, the action's rate.

`Guard.check` runs before a call takes its slots. It answers with an `Ending` when the call
is not to be sent, in this order:

- **dry run** (the action's `mode = "dry_run"`, or `/actions dryrun NAME on`): the model is
  shown what would have been sent (`would_call`, the arguments) and told to say so;
- **circuit breaker open** (`breaker.py`): the endpoint failed too often in a row;
- **the action's `rate`** used up (`60/minute`, per process).

Otherwise the call goes out, and `Guard.finished` feeds its result to the breaker. A call an
admin forces (`/actions test`) skips the three checks, and its result counts as a probe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.actions.models import Action, Arguments, prepare_request
from bot.outbound.body import Ending
from bot.outbound.breaker import Admission, Breakers
from bot.runtime.rates import Limits, parse_rate
from bot.types import ActionResult, Outcome

DRY_RUN_NOTE = (
    "This action is in dry-run mode: nothing was sent and nothing was done. Tell the "
    "customer plainly that this is a test and the request was not carried out."
)


def short_circuited(seconds: float) -> str:
    """What the model is told while an action's breaker is open."""
    wait = max(1, math.ceil(seconds))
    return (
        "temporarily unavailable: its endpoint failed several times in a row, so no request "
        f"was sent (the next try is in about {wait} s). Tell the customer to try again later, "
        "or offer to hand the conversation to a person."
    )


def rate_limited(rate: str) -> str:
    """What the model is told when an action's own rate is used up."""
    return (
        f"called too often: this action allows {rate} and no request was sent. Tell the "
        "customer to try again in a little while."
    )


@dataclass(frozen=True)
class Pass:
    """A call allowed out, and how the breaker let it (a probe must be reported back)."""

    admission: Admission


class Guard:
    """The checks before each call (see the module docstring)."""

    def __init__(self, breakers: Breakers | None = None) -> None:
        self.breakers = breakers or Breakers()
        self._rates = Limits()

    async def check(
        self,
        action: Action,
        arguments: Arguments,
        *,
        dry_run: bool | None = None,
        forced: bool = False,
    ) -> Ending | Pass:
        """An `Ending` for a call that is not to be sent, else how it may go. `dry_run` is
        the admin's override of the action's `mode` (None: the mode as loaded)."""
        if forced:
            closed = self.breakers.state(action.name) == "closed"
            return Pass("call" if closed else "probe")
        if dry_run if dry_run is not None else action.mode == "dry_run":
            return _dry_run(action, arguments)
        admission = self.breakers.admit(action.name)
        if admission == "refuse":
            error = short_circuited(self.breakers.retry_in(action.name))
            return Ending(Outcome.SHORT_CIRCUITED, error=error)
        if action.rate is not None and not await self._rates.allow(
            action.name, parse_rate(action.rate)
        ):
            if admission == "probe":
                self.breakers.release(action.name)
            return Ending(Outcome.RATE_LIMITED, error=rate_limited(action.rate))
        return Pass(admission)

    async def finished(self, action: Action, passed: Pass, result: ActionResult) -> None:
        await self.breakers.finished(action.name, passed.admission, result)


def _dry_run(action: Action, arguments: Arguments) -> Ending:
    prepared = prepare_request(action, arguments)
    data = {
        "dry_run": True,
        "would_call": f"{prepared.method.value} {prepared.url}",
        "arguments": dict(arguments),
        "note": DRY_RUN_NOTE,
    }
    return Ending(Outcome.DRY_RUN, data=data)
