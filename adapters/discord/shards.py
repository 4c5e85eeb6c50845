"""Discord across replicas: one gateway connection per shard, over all replicas.

`ACTIONBOT_DISCORD_SHARDS` is the total number of shards. Each shard is a lease in the
database (`discord-shard-N`); a replica connects a shard only while it holds its lease. One
task renews the leases every `RENEW_SECONDS` (a shard whose lease is lost, or could not be
renewed for a lease time, is disconnected); another looks for free shards at the same pace,
so a shard whose replica died is connected again by another one once its lease expires.
Replicas started together spread the shards: a replica with none takes one at once, one
with some takes a free shard only when it was also free at its previous look. A replica that
holds no shard still serves Slack and HTTP, and still answers Discord messages it takes over
from the inbox, through Discord's REST API. At start a replica takes over at once the shards
of its own earlier process that has ended (a restart), so a single bot is not offline for a
lease time. Slash commands are registered by the client of shard 0 only; interactions go to
the one connection of their shard (and `once` skips a redelivered one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from adapters.discord.adapter import PLATFORM, DiscordAdapter
from adapters.discord.alerts import post_alert
from bot.delivery import Inbox, owner_gone
from bot.errors import ConfigError
from bot.store import InboxEntry, Leases
from bot.types import Reply

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
"""How long a shard stays with a replica that stopped renewing (it died, or lost the
database) before another may connect it."""
RENEW_SECONDS = 10.0
"""How often held shards are renewed and free ones looked for."""
START_SECONDS = 60.0
"""How long connecting one shard may take before it is given up (and its lease given back)."""

MakeAdapter = Callable[[tuple[int, int] | None, bool], DiscordAdapter]
"""A Discord adapter, not registered with the inbox, for one shard (shard id, count) or
(None) one that only checks the token or uses the REST API; the flag says whether it
registers `/actions` with Discord when it logs in."""


class DiscordShards:
    """The `Platform` for Discord: the shards this replica holds, one adapter each."""

    def __init__(
        self,
        *,
        count: int,
        make: MakeAdapter,
        leases: Leases,
        inbox: Inbox,
        owner: str,
        lease_seconds: float = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        start_seconds: float = START_SECONDS,
    ) -> None:
        self.count = count
        self.make = make
        self.leases = leases
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.start_seconds = start_seconds
        self.held: dict[int, DiscordAdapter] = {}
        self._renewed: dict[int, float] = {}
        """When each shard's lease (held or being connected) was last renewed."""
        self._free_seen: set[int] = set()
        """Shards found free (and not taken) at the last look."""
        self._tasks: list[asyncio.Task[None]] = []
        self._taking: asyncio.Task[None] | None = None
        self._rest: DiscordAdapter | None = None
        self._rest_lock = asyncio.Lock()
        self._closing = False
        inbox.register(PLATFORM, self.answer)

    @staticmethod
    def lease_name(shard: int) -> str:
        return f"discord-shard-{shard}"

    async def check(self) -> None:
        """The token, checked with Discord without connecting."""
        await self.make(None, False).check()

    async def start(self) -> None:
        """Take a free shard (and those of this process's ended predecessor) and connect
        it; with none to take, check the token all the same. `ConfigError` with what to
        fix, as an unsharded client."""
        for shard in range(self.count):
            await self._take_over_if_gone(shard)
        self._tasks.append(asyncio.create_task(self._keep_renewed(), name="discord leases"))
        await self._take_free(at_most_one=True)
        if not self.held:
            await self.check()
            logger.info(
                "Discord: no shard free for now (%d in all, held by other replicas, or by "
                "one that stopped: taken over once its lease expires); this replica serves "
                "the rest and answers Discord messages it takes over",
                self.count,
            )
        self._taking = asyncio.create_task(self._keep_taking(), name="discord free shards")
        self._tasks.append(self._taking)

    async def stop_receiving(self) -> None:
        """Take no more shards; the ones held stop receiving (and are given back on close)."""
        if self._taking is not None:
            self._taking.cancel()
        for adapter in list(self.held.values()):
            await adapter.stop_receiving()

    async def close(self) -> None:
        """Close every connection and give the shards back at once, so another replica
        (or the next start) connects them without waiting for the leases to expire."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for shard in list(self.held):
            await self._let_go(shard)
        if self._rest is not None:
            await self._rest.close()

    async def ready(self) -> bool:
        """Every shard this replica holds is connected (true with none held: it serves
        Slack and HTTP, and the other replicas serve Discord)."""
        return all([await adapter.ready() for adapter in self.held.values()])

    async def answer(self, entry: InboxEntry) -> Reply | None:
        """Answer with the client that received the message, else any connected one, else
        a REST-only client (this replica took over a message of a shard it does not hold)."""
        adapters = list(self.held.values())
        chosen = next((a for a in adapters if a.received(entry.key)), None)
        if chosen is None:
            chosen = adapters[0] if adapters else await self._rest_client()
        return await chosen.answer(entry)

    async def post_alert(self, channel_id: str, text: str) -> None:
        """An admin alert (`bot.runtime.alerts`), posted through a connected shard's
        client, else the REST-only one; raises when Discord refuses it."""
        adapters = list(self.held.values())
        chosen = adapters[0] if adapters else await self._rest_client()
        await post_alert(chosen.client, channel_id, text)

    # -- leases --------------------------------------------------------------------------

    async def _take_over_if_gone(self, shard: int) -> None:
        holder = await self.leases.lease_holder(self.lease_name(shard))
        if holder is not None and owner_gone(holder, me=self.owner):
            logger.info("Discord shard %d: taking over from %s, which has ended", shard, holder)
            await self.leases.drop_lease(self.lease_name(shard), owner=holder)

    async def _take_free(self, *, at_most_one: bool = False) -> None:
        """Connect free shards. A replica with none takes one at once; one that has some
        takes a shard only when it was also free at its previous look, so replicas
        started together spread the shards instead of the first taking them all."""
        free_before, self._free_seen = self._free_seen, set()
        for shard in range(self.count):
            if shard in self.held or self._closing:
                continue
            if self.held and (at_most_one or shard not in free_before):
                if await self.leases.lease_holder(self.lease_name(shard)) is None:
                    self._free_seen.add(shard)
                continue
            await self._take(shard)

    async def _take(self, shard: int) -> None:
        name = self.lease_name(shard)
        if not await self.leases.hold_lease(name, owner=self.owner, seconds=self.lease_seconds):
            return
        self._renewed[shard] = time.monotonic()  # renewed from now on while it connects
        adapter = self.make((shard, self.count), shard == 0)
        try:
            async with asyncio.timeout(self.start_seconds):
                await adapter.start()
        except BaseException as exc:  # refused, too slow, or cancelled by shutdown
            await asyncio.shield(self._abandon(shard, adapter))
            if isinstance(exc, TimeoutError):
                raise ConfigError(
                    f"Discord shard {shard} did not connect within {self.start_seconds:.0f} s"
                ) from None
            raise
        if shard not in self._renewed:  # its lease was lost while it connected
            await self._abandon(shard, adapter)
            return
        self.held[shard] = adapter
        logger.info("Discord shard %d of %d connected by this replica", shard, self.count)

    async def _keep_renewed(self) -> None:
        """Renew the leases of the shards held (or being connected) every `renew_seconds`,
        until closed; one shard's trouble never stops the others' renewals."""
        while True:
            await asyncio.sleep(self.renew_seconds)
            for shard in list(self._renewed):
                try:
                    await self._renew(shard)
                except Exception:
                    logger.exception("Discord shard %d: could not look after its lease", shard)

    async def _renew(self, shard: int) -> None:
        """Renew one shard's lease. A lease another replica holds now, or one not renewed
        for nearly a lease time (the database is out of reach), means the shard may be
        connected elsewhere soon: this replica disconnects it."""
        name = self.lease_name(shard)
        try:
            mine = await self.leases.hold_lease(name, owner=self.owner, seconds=self.lease_seconds)
        except Exception:
            logger.exception("Discord shard %d: could not renew its lease", shard)
            stale = time.monotonic() - self._renewed.get(shard, 0.0)
            mine = stale + self.renew_seconds < self.lease_seconds  # before it lapses
        else:
            if mine and shard not in self._renewed:  # given up meanwhile
                await self.leases.drop_lease(name, owner=self.owner)
                return
            if mine:
                self._renewed[shard] = time.monotonic()
        if not mine:
            self._renewed.pop(shard, None)
            if shard in self.held:
                logger.warning("Discord shard %d: its lease is lost; disconnecting", shard)
                await self.held.pop(shard).close()

    async def _keep_taking(self) -> None:
        """Connect free shards every `renew_seconds`, until stopped."""
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                await self._take_free()
            except ConfigError as exc:
                logger.error("Discord: could not connect a shard: %s", exc)
            except Exception:
                logger.exception("Discord: could not look for free shards")

    async def _abandon(self, shard: int, adapter: DiscordAdapter) -> None:
        self._renewed.pop(shard, None)
        await adapter.close()
        try:
            await self.leases.drop_lease(self.lease_name(shard), owner=self.owner)
        except Exception:  # it expires instead
            logger.exception("Discord shard %d: could not give the lease back", shard)

    async def _let_go(self, shard: int) -> None:
        await self._abandon(shard, self.held.pop(shard))

    async def _rest_client(self) -> DiscordAdapter:
        async with self._rest_lock:
            if self._rest is None:
                rest = self.make(None, False)
                await rest.login()
                self._rest = rest
        return self._rest
