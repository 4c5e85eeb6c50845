"""Where a turn's CPU goes: `python -m bench.profile [--variant actionbot] [--turns 300]`.

Runs the variant's turns (concurrency 1, after a warm-up) under `cProfile` with the process
CPU clock (waiting is not counted) against the bench fakes (started here, in their own
process) and prints a table of the CPU spent in each place: a package (`openai`,
`httpcore2`, `pydantic`, …), a module of ActionBot (`bot/engine.py`, …), a standard library
module, or a C function (`{method 'read' of '_ssl._SSLSocket' objects}`), largest first.
Profiling slows every Python call, so the shares matter, not the milliseconds. `--top N`
also prints the N functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import re
import sys
import time
from collections import Counter

from bench.measure import run_turns
from bench.run import start_fakes, table
from bench.variants import create

WARMUP = 30
_SITE = re.compile(r"site-packages/([^/]+)")
_OURS = re.compile(r"/((?:bot|adapters|actionbot)/[^ ]+\.py)$")


def place(path: str) -> str:
    """Where a frame's code lives: our module, a package, or the standard library."""
    if ours := _OURS.search(path):
        return ours.group(1)
    if found := _SITE.search(path):
        return found.group(1).removesuffix(".py")
    if path.startswith("<"):
        return "(builtins)"
    return "stdlib: " + path.rsplit("/", 1)[-1]


async def profile(variant_name: str, turns: int, top: int) -> str:
    process, fakes = start_fakes()
    try:
        variant = await create(
            variant_name, llm=fakes["llm"], webhook=fakes["webhook"], ca=fakes["ca"]
        )
        try:
            await run_turns(variant, turns=WARMUP, concurrency=1)
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            await run_turns(variant, turns=turns, concurrency=1)
            profiler.disable()
        finally:
            await variant.close()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)
    stats = pstats.Stats(profiler)
    totals: Counter[str] = Counter()
    for (path, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        totals[function if path == "~" else place(path)] += row[2]  # own time
    whole = sum(totals.values()) or 1.0
    rows = [
        [where, f"{seconds * 1000 / turns:.2f}", f"{seconds / whole:.0%}"]
        for where, seconds in totals.most_common(15)
    ]
    out = table(
        f"Profile of `{variant_name}`: own CPU per turn by place ({turns} turns, c=1)",
        ["where", "ms/turn (profiled)", "share"],
        rows,
    )
    if top:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
        out += "\n" + text.getvalue()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="actionbot")
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--top", type=int, default=0)
    args = parser.parse_args()
    print(asyncio.run(profile(args.variant, args.turns, args.top)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
