"""One measurement in its own process (so each variant's CPU is only its own).

    python -m bench.measure cost --variant actionbot --concurrency 16 --turns 400 ...
    python -m bench.measure parallel ...      # ActionBot, k = 1, 2, 4, 8 slow actions
    python -m bench.measure growth --variant langchain ...
    python -m bench.measure memory --turns 10000 ...
    python -m bench.measure cost --variant actionbot-receive --database-url postgresql://…
    python -m bench.measure trips --database-url postgresql://…   # see bench/replicas.py

Prints one JSON object. The fakes' addresses come from `--llm`, `--webhook`, `--ca`. With
`--server-pid` (the PostgreSQL postmaster), `cost` also reports the database server's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.variants import ActionBotVariant, create

WARMUP_TURNS = 20
GROWTH_TURNS = (1, 10, 50, 200)
_conversations = itertools.count()


def rss_mib() -> float:
    """Resident memory of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_turns(variant: Any, *, turns: int, concurrency: int) -> list[float]:
    """`turns` turns, each in a new conversation, `concurrency` at a time; latencies in ms."""
    latencies: list[float] = []
    queue = iter(range(turns))

    async def worker() -> None:
        for _ in queue:
            conversation = f"c{next(_conversations)}"
            started = time.perf_counter()
            await variant.turn(conversation)
            latencies.append((time.perf_counter() - started) * 1000)
            if hasattr(variant, "forget"):
                variant.forget(conversation)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def cost(args: argparse.Namespace) -> dict[str, Any]:
    from bench.replicas import server_cpu_seconds

    variant = await create(
        args.variant, llm=args.llm, webhook=args.webhook, ca=args.ca, database_url=args.database_url
    )
    server = 0.0
    try:
        await run_turns(variant, turns=WARMUP_TURNS, concurrency=min(args.concurrency, 8))
        if args.server_pid:
            server = server_cpu_seconds(args.server_pid)
        cpu, wall = time.process_time(), time.perf_counter()
        latencies = await run_turns(variant, turns=args.turns, concurrency=args.concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if args.server_pid:
            server = server_cpu_seconds(args.server_pid) - server
    finally:
        await variant.close()
    return {
        "variant": args.variant,
        "concurrency": args.concurrency,
        "turns": args.turns,
        "cpu_ms_per_turn": cpu * 1000 / args.turns,
        "server_cpu_ms_per_turn": server * 1000 / args.turns if args.server_pid else None,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "turns_per_s": args.turns / wall,
    }


async def parallel(args: argparse.Namespace) -> dict[str, Any]:
    variant = await ActionBotVariant.create(
        llm=args.llm, webhook=args.webhook, ca=args.ca, path="/slow"
    )
    walls: dict[str, float] = {}
    try:
        await variant.turn("warmup", "parallel:1")
        for k in (1, 2, 4, 8):
            samples = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                await variant.turn(f"p{next(_conversations)}", f"parallel:{k}")
                samples.append((time.perf_counter() - started) * 1000)
            walls[str(k)] = statistics.median(samples)
    finally:
        await variant.close()
    return {"wall_ms": walls}


async def growth(args: argparse.Namespace) -> dict[str, Any]:
    variant = await create(args.variant, llm=args.llm, webhook=args.webhook, ca=args.ca)
    base = args.llm.removesuffix("/v1")
    async with httpx.AsyncClient() as http:
        await http.post(f"{base}/reset")
        try:
            for _ in range(max(GROWTH_TURNS)):
                await variant.turn("one-long-conversation")
        finally:
            await variant.close()
        sizes = (await http.get(f"{base}/sizes")).json()
    # Each turn makes two requests; a turn's first request carries the new user message.
    return {"variant": args.variant, "bytes": {str(t): sizes[2 * (t - 1)] for t in GROWTH_TURNS}}


async def memory(args: argparse.Namespace) -> dict[str, Any]:
    variant = await create("actionbot", llm=args.llm, webhook=args.webhook, ca=args.ca)
    try:
        await run_turns(variant, turns=args.turns // 20, concurrency=args.concurrency)
        start = rss_mib()
        started = time.perf_counter()
        await run_turns(variant, turns=args.turns, concurrency=args.concurrency)
        seconds = time.perf_counter() - started
        end = rss_mib()
    finally:
        await variant.close()
    return {"turns": args.turns, "rss_start_mib": start, "rss_end_mib": end, "seconds": seconds}


async def trips(args: argparse.Namespace) -> dict[str, Any]:
    from bench.replicas import count_trips

    return await count_trips(
        llm=args.llm,
        webhook=args.webhook,
        ca=args.ca,
        database_url=args.database_url,
        turns=args.turns,
        warmup=WARMUP_TURNS,
    )


SCENARIOS = {
    "cost": cost,
    "parallel": parallel,
    "growth": growth,
    "memory": memory,
    "trips": trips,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--variant", default="actionbot")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--llm", required=True)
    parser.add_argument("--webhook", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--server-pid", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(SCENARIOS[args.scenario](args))))


if __name__ == "__main__":
    main()
