"""`make bench`: every benchmark in one run, printed as tables with the targets.

The fakes run in one process, each measurement in another (`bench/measure.py`), so the CPU
a measurement reports is only its own. Targets are printed as met / not met; nothing here
is a test, and nothing fails the build.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CONCURRENCY_TURNS = {1: 120, 16: 192, 128: 384}
REPEATS = 3
"""Each cost measurement runs this many times, interleaved with the other variants; the run
with the least CPU is reported, since interference from the machine only ever adds."""
PARALLEL_TARGET = 1.1
"""Eight 200 ms actions of one model turn take at most this many times as long as one."""
VARIANTS = ("raw-floor", "floor", "actionbot", "actionbot-off", "langchain")
MEMORY_TURNS = 10_000


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def measure(fakes: dict[str, str], scenario: str, *options: str) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.measure",
        scenario,
        "--llm",
        fakes["llm"],
        "--webhook",
        fakes["webhook"],
        "--ca",
        fakes["ca"],
        *options,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[2:5])} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"### {title}", "", line(header), rule, *map(line, rows), ""])


def cost_tables(fakes: dict[str, str]) -> str:
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(REPEATS):
        for c, n in CONCURRENCY_TURNS.items():
            for v in VARIANTS:
                options = ("--variant", v, "--concurrency", str(c), "--turns", str(n))
                runs.setdefault((v, c), []).append(measure(fakes, "cost", *options))
    results = {key: min(found, key=lambda r: r["cpu_ms_per_turn"]) for key, found in runs.items()}
    rows = [
        [
            v,
            str(c),
            f"{r['cpu_ms_per_turn']:.2f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['turns_per_s']:.0f}",
        ]
        for (v, c), r in results.items()
    ]
    targets = []
    for c in CONCURRENCY_TURNS:
        bot = results["actionbot", c]["cpu_ms_per_turn"]
        floor = results["floor", c]["cpu_ms_per_turn"]
        chain = results["langchain", c]["cpu_ms_per_turn"]
        targets.append(
            [
                str(c),
                f"{bot / floor:.2f}",
                verdict(bot <= 1.5 * floor),
                f"{bot / chain:.2f}",
                verdict(bot <= 0.5 * chain),
            ]
        )
    raw = []
    for c in CONCURRENCY_TURNS:
        bot = results["actionbot", c]["cpu_ms_per_turn"]
        floor = results["raw-floor", c]["cpu_ms_per_turn"]
        raw.append([str(c), f"{floor:.2f}", f"{bot:.2f}", f"{bot / floor:.2f}"])
        raw[-1].append(verdict(bot <= 1.3 * floor))
    durable = []
    for c in CONCURRENCY_TURNS:
        on = results["actionbot", c]["cpu_ms_per_turn"]
        off = results["actionbot-off", c]["cpu_ms_per_turn"]
        durable.append(
            [str(c), f"{on:.2f}", f"{off:.2f}", f"{on / off:.2f}", verdict(on <= 1.1 * off)]
        )
    header = ["variant", "concurrency", "CPU ms/turn", "p50 ms", "p99 ms", "turns/s"]
    return (
        table(f"Cost per turn: message → one action → answer (best of {REPEATS})", header, rows)
        + "\n"
        + table(
            "Targets: ActionBot CPU ≤ 1.5 × floor and ≤ 0.5 × LangChain",
            ["concurrency", "ActionBot/floor", "≤ 1.5", "ActionBot/LangChain", "≤ 0.5"],
            targets,
        )
        + "\n"
        + table(
            "Target: ActionBot (inbox and journal on) CPU ≤ 1.3 × the raw floor",
            ["concurrency", "raw floor ms/turn", "ActionBot ms/turn", "ratio", "≤ 1.3"],
            raw,
        )
        + "\n"
        + table(
            "Target: the inbox and the journal cost ≤ 10 % more CPU per turn",
            ["concurrency", "on ms/turn", "off ms/turn", "on/off", "≤ 1.10"],
            durable,
        )
    )


def parallel_table(fakes: dict[str, str]) -> str:
    walls = measure(fakes, "parallel")["wall_ms"]
    rows = [[k, f"{ms:.0f}"] for k, ms in walls.items()]
    ratio = walls["8"] / walls["1"]
    rows.append(["k=8 / k=1", f"{ratio:.2f} (target ≤ 1.1: {verdict(ratio <= PARALLEL_TARGET)})"])
    return table(
        "Parallel actions: one model turn, k actions of 200 ms each", ["k", "turn wall ms"], rows
    )


def growth_and_memory_tables(fakes: dict[str, str]) -> str:
    """One after the other: the growth runs read the fakes' shared record of request sizes."""
    bot = measure(fakes, "growth", "--variant", "actionbot")["bytes"]
    chain = measure(fakes, "growth", "--variant", "langchain")["bytes"]
    memory = measure(fakes, "memory", "--turns", str(MEMORY_TURNS), "--concurrency", "16")
    return growth_table(bot, chain) + "\n" + memory_table(memory)


def growth_table(bot: dict[str, int], chain: dict[str, int]) -> str:
    rows = [[turn, str(bot[turn]), str(chain[turn])] for turn in bot]
    bounded = bot["200"] <= 1.2 * bot["10"]
    grows = chain["200"] > 1.2 * chain["10"]
    rows.append(
        [
            "200 vs 10",
            f"{bot['200'] / bot['10']:.2f}× ({verdict(bounded)} ≤ 1.2)",
            f"{chain['200'] / chain['10']:.2f}× (grows: {'yes' if grows else 'no'})",
        ]
    )
    return table(
        "Prompt growth: request bytes sent to the LLM in one conversation",
        ["turn", "ActionBot", "LangChain"],
        rows,
    )


def memory_table(result: dict[str, Any]) -> str:
    start, end = result["rss_start_mib"], result["rss_end_mib"]
    flat = end - start <= 0.1 * start
    rows = [
        [
            f"{MEMORY_TURNS}",
            f"{start:.1f}",
            f"{end:.1f}",
            f"{end - start:+.1f} MiB ({verdict(flat)}: growth ≤ 10 %)",
        ]
    ]
    return table(
        "Memory of the bot process over many turns",
        ["turns", "RSS start MiB", "RSS end MiB", "flat"],
        rows,
    )


def store_table() -> str:
    command = [sys.executable, "-m", "bench.store_scale", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    result: dict[str, Any] = json.loads(done.stdout)
    timings = result["timings"]
    stats_ms = timings["stats_all"]["median_ms"]
    rows = [
        [
            "rows",
            f"{result['calls']:,} calls over {result['actions']} actions, "
            f"{result['conversations']:,} conversations, {result['messages']:,} messages",
        ],
        [
            "/actions stats (all actions), median",
            f"{stats_ms:.1f} ms (target < 50 ms: {verdict(stats_ms < 50)})",
        ],
        ["/actions stats NAME, median", f"{timings['stats_one']['median_ms']:.1f} ms"],
        ["record one call, median", f"{timings['record_call']['median_ms']:.2f} ms"],
        ["load one conversation, median", f"{timings['load_messages']['median_ms']:.2f} ms"],
        ["database size", f"{result['db_mib']:.0f} MiB"],
    ]
    return table("Store at scale", ["measure", "value"], rows)


def audit_table() -> str:
    from bench.audit import audit_table as measure_audit

    return measure_audit()


def ack_table(fakes: dict[str, str]) -> str:
    from bench.ack import ack_table as measure_acks

    return measure_acks(fakes)


def replicas_tables(fakes: dict[str, str]) -> str:
    from bench.replicas import replicas_tables as measure_replicas

    return measure_replicas(fakes)


def start_fakes() -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fakes"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


SECTIONS = {
    "cost": cost_tables,
    "parallel": parallel_table,
    "growth": growth_and_memory_tables,
    "ack": ack_table,
    "replicas": replicas_tables,
}


def main() -> None:
    """Every section, or only those named: `python -m bench.run cost ack`."""
    only = sys.argv[1:] or [*SECTIONS, "store", "audit"]
    unknown = set(only) - {*SECTIONS, "store", "audit"}
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; known: {[*SECTIONS]} store audit")
    started = time.perf_counter()
    print(f"# ActionBot benchmarks\n\nMachine: {machine()}\n", flush=True)
    fakes_process, fakes = start_fakes()
    try:
        sections = [SECTIONS[name] for name in SECTIONS if name in only]
        for section in sections:
            section_started = time.perf_counter()
            print(section(fakes), flush=True)
            print(f"({time.perf_counter() - section_started:.0f} s)\n", flush=True)
    finally:
        assert fakes_process.stdin is not None
        fakes_process.stdin.close()
        fakes_process.wait(timeout=30)
    if "store" in only:
        print(store_table(), flush=True)
    if "audit" in only:
        print(audit_table(), flush=True)
    print(f"Total time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
