"""Discord across replicas (`adapters.discord.shards`): each replica here is a real
`DiscordShards` with real discord.py clients against the fake Discord gateway, the replicas
sharing one real store, as replicas share one database. Leases are short so a takeover
happens within the test; every wait is on the fake's observable state."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import make_engine
from test_discord import CHANNEL, DM_CHANNEL, GUILD, messages_in, settings

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.shards import DiscordShards
from bot.actions.models import ActionSet
from bot.admin.operations import Admin
from bot.delivery import Inbox, this_place
from bot.llm.client import OpenAIChatModel
from bot.outbound.webhooks import WebhookClient
from bot.runtime.tasks import Turns
from bot.store import Store
from fakes.discord_server import FakeDiscord, guild_create, message_create, text_channel
from fakes.openai_server import ScriptedLLM

SHARDS = 2
COMMANDS = re.compile(r"/applications/\d+/(guilds/\d+/)?commands$")
LEASE = 1.0
Replica = Callable[[str], DiscordShards]


@pytest.fixture
async def fleet(
    store: Store, webhooks: WebhookClient, chat_model: OpenAIChatModel
) -> AsyncIterator[tuple[FakeDiscord, Replica]]:
    """The fake Discord and a way to make replicas (by lease owner name) over one store;
    every replica made is closed after the test."""
    engine = make_engine([], store=store, webhooks=webhooks, model=chat_model)
    admin = Admin(
        actions=ActionSet([], source="test"), store=store, webhooks=webhooks, result_chars=4000
    )
    made: list[DiscordShards] = []

    def replica(owner: str) -> DiscordShards:
        turns = Turns()
        inbox = Inbox(store, turns, metrics=engine.metrics, owner=owner)

        def make(shard: tuple[int, int] | None, commands: bool) -> DiscordAdapter:
            return DiscordAdapter(
                settings=settings(discord_guild=int(GUILD)),
                engine=engine,
                admin=admin,
                store=store,
                turns=turns,
                inbox=inbox,
                progress_delay=0,
                guild_ready_timeout=0.05,
                shard=shard,
                register=False,
                commands=commands,
            )

        shards = DiscordShards(
            count=SHARDS,
            make=make,
            leases=store,
            inbox=inbox,
            owner=owner,
            lease_seconds=LEASE,
            renew_seconds=LEASE / 10,
        )
        made.append(shards)
        return shards

    guild = guild_create(GUILD, channels=[text_channel(CHANNEL, "support")])
    async with FakeDiscord(guilds=[guild]) as fake:
        with fake.patched():
            try:
                yield fake, replica
            finally:
                for shards in made:
                    await shards.close()


def shards_of(identifies: list[dict[str, Any]]) -> list[list[int]]:
    return sorted(d["shard"] for d in identifies)


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (bounded) until `condition` holds: replicas change state on their own clock."""
    async with asyncio.timeout(10 * LEASE):
        while not condition():  # noqa: ASYNC110 - replicas keep no event to wait on
            await asyncio.sleep(LEASE / 20)


async def die(replica: DiscordShards) -> None:
    """The replica's process dies: its connections drop, its leases are left to expire."""
    for task in replica._tasks:
        task.cancel()
    for adapter in replica.held.values():
        await adapter.close()
    replica.held.clear()


async def test_each_shard_has_one_connection_and_a_dead_replicas_shard_moves(
    fleet: tuple[FakeDiscord, Replica],
) -> None:
    """Three replicas, two shards, started together: each shard is connected once (two
    IDENTIFYs, shards 0 and 1), the third replica holds none and is still ready. When a
    holder dies, its shard is connected again by a live replica once the lease expires."""
    fake, replica = fleet
    replicas = [replica(f"host-{n}:1:x") for n in range(3)]
    await asyncio.gather(*(r.start() for r in replicas))

    assert shards_of(fake.identifies) == [[0, SHARDS], [1, SHARDS]]
    assert len(fake.requests_to("PUT", COMMANDS)) == 1  # /actions registered once, by shard 0
    held = sorted(shard for r in replicas for shard in r.held)
    assert held == [0, 1]
    [idle] = [r for r in replicas if not r.held]
    assert await idle.ready()
    assert all([await r.ready() for r in replicas])

    [dead] = [r for r in replicas if 0 in r.held]
    await die(dead)
    *_, taken_over = await fake.wait_gateway(2, count=3, timeout=10 * LEASE)
    assert taken_over["shard"] == [0, SHARDS]
    live = [r for r in replicas if r is not dead]
    await eventually(lambda: sorted(shard for r in live for shard in r.held) == [0, 1])


async def test_a_restart_takes_over_its_own_shards_at_once(
    fleet: tuple[FakeDiscord, Replica], store: Store
) -> None:
    """The bot's earlier process on this host died holding both shards (leases an hour
    long): the restarted one connects them at start instead of waiting for the leases."""
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    earlier = f"thishost:{gone.pid}:{this_place()}-old"
    for shard in range(SHARDS):
        await store.hold_lease(DiscordShards.lease_name(shard), owner=earlier, seconds=3600)
    fake, replica = fleet
    restarted = replica(f"thishost:{os.getpid()}:{this_place()}-new")
    await restarted.start()
    assert 0 in restarted.held  # at start, at once
    await eventually(lambda: sorted(restarted.held) == [0, 1])
    assert shards_of(fake.identifies) == [[0, SHARDS], [1, SHARDS]]


async def test_a_live_replica_on_another_host_keeps_its_shard(
    fleet: tuple[FakeDiscord, Replica], store: Store
) -> None:
    """A shard held by a running replica elsewhere is not connected a second time."""
    for shard in range(SHARDS):
        await store.hold_lease(
            DiscordShards.lease_name(shard), owner="otherhost:7:live", seconds=3600
        )
    fake, replica = fleet
    here = replica(f"thishost:{os.getpid()}:new")
    await here.start()
    assert here.held == {}
    assert fake.identifies == []
    assert await here.ready()


async def test_messages_are_answered_through_the_shard_that_received_them(
    fleet: tuple[FakeDiscord, Replica], llm: ScriptedLLM
) -> None:
    """A DM arriving on a connected shard goes through the inbox and is answered."""
    fake, replica = fleet
    only = replica("host-a:1:x")
    await only.start()
    llm.reply("Hello from a shard")
    await fake.dispatch(
        "MESSAGE_CREATE", message_create("hi", channel_id=DM_CHANNEL, guild_id=None)
    )
    [post] = await fake.wait_for("POST", messages_in(DM_CHANNEL))
    assert post.json is not None
    assert post.json["content"] == "Hello from a shard"


async def test_a_replica_that_lost_a_shards_lease_disconnects_it(
    fleet: tuple[FakeDiscord, Replica], store: Store
) -> None:
    """Its lease now names another replica (this one could not renew in time): the
    connection is closed, so the shard is never connected twice."""
    _, replica = fleet
    only = replica("host-a:1:x")
    await only.start()
    assert 0 in only.held
    name = DiscordShards.lease_name(0)
    await store.drop_lease(name, owner="host-a:1:x")
    assert await store.hold_lease(name, owner="host-b:1:y", seconds=3600)
    await eventually(lambda: 0 not in only.held)
    assert await store.lease_holder(name) == "host-b:1:y"
