"""Discord across replicas: one gateway connection per shard, over all replicas.

`ACTIONBOT_DISCORD_SHARDS` is the total number of shards. Each shard is a lease in the
database (`discord-shard-N`); a replica connects a shard only while it holds its lease,
renews it every `RENEW_SECONDS`, and looks for free shards at the same pace, so a shard
whose replica died is connected again by another one within `LEASE_SECONDS` (plus one look).
A replica that holds no shard still serves Slack and HTTP, and still answers Discord
messages it takes over from the inbox, through Discord's REST API. At start a replica takes
over at once the shards of its host's earlier process that has ended (a restart), so a
single bot is not offline for a lease time. Slash commands are registered by whichever
replica connects shard 0; interactions go to the one connection of their shard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from adapters.discord.adapter import PLATFORM, DiscordAdapter
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

MakeAdapter = Callable[[tuple[int, int] | None], DiscordAdapter]
"""A Discord adapter, not registered with the inbox, for one shard (shard id, count), or
(None) one that only checks the token or uses the REST API."""


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
    ) -> None:
        self.count = count
        self.make = make
        self.leases = leases
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.held: dict[int, DiscordAdapter] = {}
        self._rest: DiscordAdapter | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._free_seen: set[int] = set()
        """Shards found free (and not taken) at the last look."""
        self._closing = False
        inbox.register(PLATFORM, self.answer)

    @staticmethod
    def lease_name(shard: int) -> str:
        return f"discord-shard-{shard}"

    async def check(self) -> None:
        """The token, checked with Discord without connecting."""
        await self.make(None).check()

    async def start(self) -> None:
        """Take every free shard (and those of this host's ended earlier process) and
        connect them; with none to take, check the token all the same. `ConfigError` with
        what to fix, as an unsharded client."""
        for shard in range(self.count):
            await self._take_over_if_gone(shard)
        await self._take_free(at_most_one=True)
        if not self.held:
            await self.check()
            logger.info(
                "Discord: all %d shards are connected by other replicas; this one serves "
                "the rest and answers Discord messages it takes over",
                self.count,
            )
        self._keeper = asyncio.create_task(self._keep(), name="discord shard leases")

    async def stop_receiving(self) -> None:
        for adapter in list(self.held.values()):
            await adapter.stop_receiving()

    async def close(self) -> None:
        """Close every connection and give the shards back at once, so another replica
        (or the next start) connects them without waiting for the leases to expire."""
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        for shard in list(self.held):
            await self._let_go(shard)
        if self._rest is not None:
            await self._rest.close()

    async def ready(self) -> bool:
        """Every shard held is connected (true with none held: Slack and HTTP are served)."""
        return all([await adapter.ready() for adapter in self.held.values()])

    async def answer(self, entry: InboxEntry) -> Reply | None:
        """Answer with the client that received the message, else any connected one, else
        a REST-only client (this replica took over a message of a shard it does not hold)."""
        adapters = list(self.held.values())
        chosen = next((a for a in adapters if a.received(entry.key)), None)
        if chosen is None:
            chosen = adapters[0] if adapters else await self._rest_client()
        return await chosen.answer(entry)

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
        adapter = self.make((shard, self.count))
        try:
            await adapter.start()
        except BaseException:  # a refused token, or cancelled by shutdown mid-connect
            await asyncio.shield(self._abandon(adapter, name))
            raise
        self.held[shard] = adapter
        logger.info("Discord shard %d of %d connected by this replica", shard, self.count)

    async def _renew(self) -> None:
        for shard in list(self.held):
            name = self.lease_name(shard)
            if not await self.leases.hold_lease(name, owner=self.owner, seconds=self.lease_seconds):
                logger.warning(
                    "Discord shard %d: another replica holds it now; disconnecting", shard
                )
                adapter = self.held.pop(shard)
                await adapter.close()

    async def _keep(self) -> None:
        """Renew held shards and connect free ones, every `renew_seconds`, until closed."""
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                await self._renew()
                await self._take_free()
            except ConfigError as exc:
                logger.error("Discord: could not connect a shard: %s", exc)
            except Exception:
                logger.exception("Discord: could not renew or take shard leases")

    async def _let_go(self, shard: int) -> None:
        adapter = self.held.pop(shard)
        await adapter.close()
        try:
            await self.leases.drop_lease(self.lease_name(shard), owner=self.owner)
        except Exception:  # it expires instead
            logger.exception("Discord shard %d: could not give the lease back", shard)

    async def _abandon(self, adapter: DiscordAdapter, name: str) -> None:
        await adapter.close()
        await self.leases.drop_lease(name, owner=self.owner)

    async def _rest_client(self) -> DiscordAdapter:
        if self._rest is None:
            rest = self.make(None)
            await rest.login()
            self._rest = rest
        return self._rest
