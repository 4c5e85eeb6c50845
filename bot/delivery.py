"""The durable inbox at work: every message is written down before it is acknowledged and
stays pending until its answer has been delivered.

Adapters hand each platform event to `Inbox.receive` before they acknowledge it. The store
writes it (or recognises a redelivery) in one statement, leased to this process; the turn then
runs in the background, in order within its conversation. The adapter's `Answer` function
runs the engine (or, when the entry already has the engine's reply, only delivers it) and
posts the answer; then the entry is settled `done`, or `failed` when the customer got an
apology. A redelivery of a settled or leased message is dropped; one whose lease expired
(its process died) is taken over.

With several replicas on one database, a turn also waits while an earlier message of its
conversation is in another replica's hands, and steps back behind an earlier message that
nobody holds, so each conversation is answered in arrival order, by one process at a time.

A process renews the leases of the messages it is answering, and every `REPLAY_SECONDS`
claims pending messages whose lease expired. At start, before the platforms take new
messages, it also takes over the messages a previous process on the same host held (it was
killed, or shut down with turns still running; other replicas running on the host keep
theirs), so a restarted bot answers them at once and
before anything newer of the same conversation; their turns wait until the platforms are
connected. A turn that raises, or whose answer could not be posted, leaves its message
pending for another attempt; a message whose turn has started `attempts` times without being
answered is settled `failed` and the customer told so. Messages received while shutting
down are written unleased and left for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from bot import wording
from bot.handoff import hand_over, with_a_person
from bot.runtime.metrics import Metrics
from bot.runtime.owners import host_owner, owner_gone, this_place
from bot.runtime.rates import CustomerLimits
from bot.runtime.tasks import Turns
from bot.store import DeliveryStore, InboxEntry
from bot.types import Confirmation, IncomingMessage, Reply

logger = logging.getLogger(__name__)
__all__ = ["CLAIM_BATCH", "Inbox", "host_owner", "owner_gone", "this_place"]

LEASE_SECONDS = 60.0
"""How long a process may hold a message without renewing; then another may take it over."""
HANDOFF_SECONDS = 24 * 3600.0
"""How long a conversation handed to a person stays silent unless resumed."""
REPLAY_SECONDS = 10.0
"""How often leases are renewed and expired ones looked for."""
CLAIM_BATCH = 100
"""Messages taken over at once; the rest on the next pass."""
ORDER_POLL_SECONDS = 0.05
ORDER_POLL_MAX_SECONDS = 0.25
"""How often a turn looks again whether the earlier messages of its conversation, handled by
another replica, are answered (doubling from the first to the second)."""

Decision = Literal["decided", "not_yours", "expired", "answered", "unknown"]
"""What became of a click on a confirmation card."""

Answer = Callable[[InboxEntry], Awaitable[Reply | None]]
"""An adapter's turn for one entry: run the engine unless `entry.reply` is set, post the
answer where `entry.route` says, and return the reply (None when it could not be posted)."""


class Inbox:
    """Receives messages durably and runs their turns (see the module docstring)."""

    def __init__(
        self,
        store: DeliveryStore,
        turns: Turns,
        *,
        metrics: Metrics,
        attempts: int = 3,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        started: bool = True,
        handoff_seconds: float = HANDOFF_SECONDS,
        customers: CustomerLimits | None = None,
        handoff_platforms: frozenset[str] | None = None,
    ) -> None:
        self.store = store
        self.turns = turns
        self.metrics = metrics
        self.attempts = attempts
        self.owner = owner or host_owner()
        self.lease_seconds = lease_seconds
        self.handoff_seconds = handoff_seconds
        self.handoff_platforms = handoff_platforms
        """Platforms where a conversation can be with a person (a handoff channel is set):
        only their messages cost the look-up; None: every platform's."""
        self.customers = customers or CustomerLimits(None)
        """`ACTIONBOT_USER_RATE`: turns per customer per platform, in this process."""
        self._answers: dict[str, Answer] = {}
        self._held: set[str] = set()
        """Keys of the messages this process is answering: the leases it renews."""
        self._started = asyncio.Event()
        if started:
            self._started.set()
        self.accepting = True

    def register(self, platform: str, answer: Answer) -> None:
        """Messages of `platform` are answered (and replayed) with `answer`."""
        self._answers[platform] = answer

    async def receive(self, message: IncomingMessage, route: Mapping[str, object]) -> bool:
        """Write `message` down (call before acknowledging it) and start its turn if it
        should run now; True when a turn started. While shutting down it is only written
        down, for the next start."""
        lease = self.lease_seconds if self.accepting and not self.turns.closing else 0.0
        entry = await self.store.receive(
            message, route=dict(route), owner=self.owner, lease_seconds=lease
        )
        if entry is None:
            if lease:
                logger.info(
                    "%s event %s already answered or in hand; skipping the redelivery",
                    message.platform,
                    message.event_id,
                )
            return False
        if entry.attempts > 1:
            logger.info("taking over %s (attempt %d)", entry.key, entry.attempts)
        return await self._start(entry)

    def platforms_started(self) -> None:
        """The platforms are connected: turns taken over at start may post now."""
        self._started.set()

    def hold_new(self) -> None:
        """Shutdown has begun: messages received from now on wait for the next start."""
        self.accepting = False

    async def update_route(self, entry: InboxEntry, changes: Mapping[str, object]) -> None:
        """Remember where the answer goes (a placeholder or thread just made), so a replay
        edits that message instead of posting another."""
        await self.store.update_route(entry.key, dict(changes))

    async def recover(self, *, at_start: bool = False) -> int:
        """Start the pending messages whose lease expired (at start also those held by
        earlier processes of this host that are gone); returns how many."""
        if not self._answers:
            return 0
        entries = await self.store.claim(
            owner=self.owner,
            lease_seconds=self.lease_seconds,
            platforms=sorted(self._answers),
            limit=CLAIM_BATCH,
            previous=await self._gone_owners() if at_start else None,
        )
        if entries:
            logger.info("answering %d messages left unanswered earlier", len(entries))
        for entry in entries:
            await self._start(entry)
        return len(entries)

    async def _gone_owners(self) -> list[str]:
        """Earlier processes of this host that hold messages and are gone (`owner_gone`);
        other live processes of the host (replicas started side by side) keep theirs."""
        host = self.owner.split(":", 1)[0]
        held = await self.store.lease_owners(f"{host}:")
        return [owner for owner in held if owner_gone(owner, me=self.owner)]

    async def keep_up(self) -> None:
        """Renew this process's leases and take over expired ones, every `REPLAY_SECONDS`,
        until cancelled."""
        while True:
            await asyncio.sleep(REPLAY_SECONDS)
            try:
                await self.store.renew(self.owner, sorted(self._held), self.lease_seconds)
                while await self.recover() == CLAIM_BATCH:
                    pass
            except Exception:
                logger.exception("could not renew or replay inbox messages")

    async def _start(self, entry: InboxEntry) -> bool:
        message = entry.message
        self._held.add(entry.key)
        started = self.turns.spawn(
            self._run(entry),
            name=f"{message.platform} turn {message.conversation}",
            after=f"{message.platform}:{message.conversation}",
        )
        if not started:
            await self._release(entry.key)
        return started

    async def _run(self, entry: InboxEntry) -> None:
        answer = self._answers[entry.message.platform]
        last = entry.attempts >= self.attempts
        if entry.attempts > self.attempts:
            logger.error(
                "giving up on %s: %d attempts did not answer it", entry.key, entry.attempts - 1
            )
            entry = entry.model_copy(update={"reply": Reply(text=wording.GAVE_UP, failed=True)})
        try:
            await self._started.wait()
            if not await self._in_order(entry):
                return
            if (
                entry.reply is None
                and self._may_be_handed_off(entry)
                and await with_a_person(self.store, entry)
            ):
                await self._settle(entry.key, failed=False, outcome="silent")
                return
            if entry.reply is None and entry.attempts <= 1:
                verdict = await self._customer_rate(entry)
                if verdict == "quiet":
                    await self._settle(entry.key, failed=False, outcome="rate_limited")
                    return
                if verdict == "tell":
                    slow_down = Reply(text=wording.SLOW_DOWN)
                    entry = entry.model_copy(update={"reply": slow_down})
            reply = await answer(entry)
        except asyncio.CancelledError:
            await self._release(entry.key)  # the next start answers it
            raise
        except Exception:
            logger.exception("answering %s failed; it will be tried again", entry.key)
            await self._release(entry.key)
            return
        if reply is not None and reply.confirmations:
            await self._park(entry.key, reply.confirmations)
            return
        if reply is None and not last:
            logger.warning(
                "the answer to %s could not be posted; it will be tried again", entry.key
            )
            await self._release(entry.key)
            return
        if reply is not None and reply.handoff is not None:
            await hand_over(self.store, entry, reply.handoff, self.handoff_seconds, self.metrics)
        failed = reply is None or reply.failed
        await self._settle(entry.key, failed=failed)

    def _may_be_handed_off(self, entry: InboxEntry) -> bool:
        platforms = self.handoff_platforms
        return platforms is None or entry.message.platform in platforms

    async def _customer_rate(self, entry: InboxEntry) -> str:
        """`ok`, or (over `ACTIONBOT_USER_RATE`) `tell` the customer once, then `quiet`:
        the model is not asked either way. Admins are not limited."""
        message = entry.message
        if message.is_admin:
            return "ok"
        verdict = await self.customers.check(message.platform, message.user_id)
        if verdict != "ok":
            self.metrics.rate_limited.labels(message.platform).inc()
            logger.info(
                "%s is over ACTIONBOT_USER_RATE (%s): %s not answered by the model",
                f"{message.platform}:{message.user_id}",
                self.customers.rate,
                entry.key,
            )
        return verdict

    async def _in_order(self, entry: InboxEntry) -> bool:
        """Whether the turn may run now, in its conversation's arrival order. Within this
        process `Turns` orders a conversation's turns; across replicas a turn waits while
        an earlier message is in another live process's hands. When an earlier message is
        free (its process died, or it was left for another attempt) or is this process's
        but queued behind this turn, this turn steps back (without using up an attempt)
        and both are taken again oldest first, so the earlier one is answered first. A turn
        that has waited a lease time steps back too, freeing its place among the running
        turns (replicas full of waiting turns must not wait on each other); the next replay
        pass takes it again."""
        if entry.first_in_line:  # its own write looked, and nothing was ahead of it
            return True
        loop = asyncio.get_running_loop()
        give_way_at = loop.time() + self.lease_seconds
        delay = ORDER_POLL_SECONDS
        while earlier := await self.store.earlier_pending(entry.key):
            free = any(
                holder is None or (holder == self.owner and key in self._held)
                for key, holder in earlier
            )
            if free or loop.time() >= give_way_at:
                logger.info("%s goes after %s, which arrived first", entry.key, earlier[0][0])
                self._held.discard(entry.key)
                await self.store.defer(entry.key, owner=self.owner)
                if free:
                    await self.recover()
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, ORDER_POLL_MAX_SECONDS)
        return True

    async def _park(self, key: str, waiting: list[Confirmation]) -> None:
        """The turn waits for clicks: out of replays until the last card expires (then the
        model is told it was not confirmed)."""
        self._held.discard(key)
        try:
            await self.store.park(key, until=max(c.expires_at for c in waiting))
            # A click may have come while the turn was still running: do not miss it.
            for confirmation in waiting:
                now = await self.store.confirmation_by_token(confirmation.token)
                if now is not None and now.state != "pending" and await self.store.wake(key):
                    await self.recover()
                    break
        except Exception:  # its lease expires and the turn asks again
            logger.exception("could not park %s for its confirmation", key)

    async def decide(
        self, token: str, *, confirmed: bool, user: str
    ) -> tuple[Decision, Confirmation | None]:
        """A click on a card: recorded when it comes from the user who asked, before the
        card expired, and first; then the waiting turn goes on (here, or on whichever
        process takes it)."""
        found = await self.store.confirmation_by_token(token)
        if found is None:
            return "unknown", None
        if found.requester != user:
            return "not_yours", found
        if found.expired(time.time()):
            return "expired", found
        if found.state != "pending" or not await self.store.decide(
            token, confirmed=confirmed, by=user
        ):
            return "answered", found
        logger.info(
            "%s %s by its requester", found.action, "confirmed" if confirmed else "cancelled"
        )
        if await self.store.wake(found.event_key):  # else its turn runs and will see it
            await self.recover()
        return "decided", found.model_copy(
            update={"state": "confirmed" if confirmed else "cancelled"}
        )

    async def _release(self, key: str) -> None:
        """Leave a message pending for the next attempt (by this process or another)."""
        self._held.discard(key)
        try:
            await self.store.release(key, owner=self.owner)
        except Exception:  # its lease expires instead
            logger.exception("could not release %s", key)

    async def _settle(self, key: str, *, failed: bool, outcome: str = "") -> None:
        self._held.discard(key)
        self.metrics.turns.labels(outcome or ("failed" if failed else "answered")).inc()
        try:
            await self.store.settle(key, failed=failed)
        except Exception:  # its lease expires and the reply kept with it is delivered again
            logger.exception("could not mark %s as answered", key)

    async def run_inline(
        self,
        message: IncomingMessage,
        answer: Answer,
        confirm: Callable[[Confirmation], Awaitable[bool]] | None = None,
    ) -> Reply | None:
        """Write `message` down and answer it now, in this task (the console). A call that
        needs confirming is asked with `confirm` (no answer: declined), then the turn goes
        on."""
        entry: InboxEntry | None = await self.store.receive(
            message, route={}, owner=self.owner, lease_seconds=self.lease_seconds
        )
        if entry is None:
            return None
        key = entry.key
        try:
            reply = await answer(entry)
            while reply is not None and reply.confirmations and entry is not None:
                for waiting in reply.confirmations:
                    yes = confirm is not None and await confirm(waiting)
                    await self.store.decide(waiting.token, confirmed=yes, by=message.user_id)
                entry = await self.store.entry(key)
                reply = await answer(entry) if entry is not None else None
        except BaseException:  # Ctrl-C: whoever asked is gone, so nobody replays it
            await self._settle(key, failed=True)
            raise
        await self._settle(key, failed=reply is None or reply.failed)
        return reply
