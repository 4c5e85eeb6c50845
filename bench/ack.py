"""Slack acknowledgement latency: bursts of signed events against a real `actionbot run`.

A fresh `actionbot run` in Slack HTTP mode (its Web API, LLM and webhook are the instant
fakes of `bench/fakes.py`, in their own process) receives a burst of N signed `app_mention`
events, each in its own thread, so each starts a turn. The burst is open-loop: event i is sent
at i/N of a second whatever happened to the earlier ones (Slack does not wait for our
answers either), so turns started by the first events run while the later ones arrive. The
latency of an event is the time from writing it to reading its whole HTTP answer, measured by
this process (a separate one) over connections opened before the burst, as a load balancer's
are; the first row is the same burst against an aiohttp route that only reads the body, the
floor of this measure on this machine. Slack retries an event not acknowledged within 3 s.
The table also shows how long after the first event the last of the N turns posted its
answer: holding turns back to keep acknowledgements fast must not slow the answers down.

Run alone: `python -m bench.ack` (starts its own fakes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

TARGET_P99_MS = 100.0
"""The p99 target of 500 events in one second (also per database in `bench/replicas.py`)."""
SCENARIOS = ((200, 0.0, 50.0), (200, 1.0, None), (500, 1.0, TARGET_P99_MS))
"""(events, seconds they are spread over, p99 target in ms): 200 sent at once (concurrent),
then 200 and 500 open-loop over one second."""
SIGNING_SECRET = "bench-signing-secret"  # noqa: S105 - the benchmark deployment's own
ACTIONBOT = str(Path(sys.executable).parent / "actionbot")
ACTIONS = """\
[[actions]]
name = "check_inventory"
display_name = "Check Inventory"
description = "Check if a specific part is in stock."
url = "{webhook}/inventory"
max_concurrency = 100

[[actions.parameters]]
name = "part_name"
type = "string"
description = "The part"
required = true

[[actions.parameters]]
name = "device_model"
type = "string"
description = "The device"
required = true
"""


def bot_env(fakes: dict[str, str], folder: Path) -> dict[str, str]:
    (folder / "actions.toml").write_text(ACTIONS.format(webhook=fakes["webhook"]))
    return {
        "PATH": os.environ.get("PATH", ""),
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": fakes["llm"],
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fakes["slack"],
        "SSL_CERT_FILE": fakes["ca"],
        "ACTIONBOT_EGRESS_ALLOW": "127.0.0.1",
        "ACTIONBOT_ACTIONS": str(folder / "actions.toml"),
        "ACTIONBOT_DB": str(folder / "actionbot.db"),
        "ACTIONBOT_HTTP_PORT": "0",
        "ACTIONBOT_SHUTDOWN_GRACE": "1",
        "LOG_LEVEL": "WARNING",
    }


def start_bot(
    fakes: dict[str, str], folder: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """`actionbot run` (with `extra_env` added to its settings), once it reports itself
    running; its HTTP port."""
    log = (folder / "bot.log").open("wb")
    env = bot_env(fakes, folder) | {"LOG_LEVEL": "INFO"} | (extra_env or {})
    process = subprocess.Popen(  # noqa: S603 - our own entry point
        [ACTIONBOT, "run"], cwd=folder, env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        text = (folder / "bot.log").read_text(errors="replace")
        port = re.search(r"HTTP server listening on [^:]+:(\d+)", text)
        if port and "ActionBot is running" in text:
            return process, int(port.group(1))
        time.sleep(0.05)
    process.kill()
    raise SystemExit("actionbot run did not start:\n" + (folder / "bot.log").read_text()[-3000:])


def event(i: int) -> bytes:
    ts = f"{1_700_000_000 + i}.000100"
    mention = {
        "type": "app_mention",
        "user": "U1",
        "text": "<@UBOT> do you have iPhone 15 Pro screens?",
        "ts": ts,
        "channel": "C1",
        "event_ts": ts,
    }
    body = {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event": mention,
        "event_id": f"EvBench{i}",
        "event_time": 1_700_000_000 + i,
    }
    return json.dumps(body).encode()


def signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


async def answered(session: aiohttp.ClientSession, slack: str) -> int:
    async with session.get(f"{slack}answers") as response:
        return int(await response.json())


def request_bytes(port: int, path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in signed(body).items())
    return (head + "Connection: close\r\n\r\n").encode() + body


async def post(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> tuple[float, int]:
    """Write one request on an open connection; its latency (ms) and status."""
    reader, writer = connection
    started = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    await reader.readexactly(int(length.group(1)) if length else 0)
    latency = (time.perf_counter() - started) * 1000
    writer.close()
    return latency, int(head.split(b" ", 2)[1])


async def burst(
    port: int, n: int, slack: str | None, spread: float, path: str = "/slack/events"
) -> tuple[list[float], list[int], float]:
    """Latencies (ms) and statuses of n events sent open-loop over `spread` seconds (0: all
    at once), and the seconds from the first event until all n turns have answered (0 when
    `slack` is None: nothing to wait for).

    The connections are open before the burst (as a load balancer's are) and each request is
    written in one piece, so the measure is the server's time and not this client's."""
    requests = [request_bytes(port, path, event(i)) for i in range(n)]
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(n)]
    async with aiohttp.ClientSession() as session:
        before = await answered(session, slack) if slack else 0

        async def send(i: int, at: float) -> tuple[float, int]:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            return await post(connections[i], requests[i])

        start = time.perf_counter() + 0.2
        results = await asyncio.gather(*[send(i, start + i * spread / n) for i in range(n)])
        limit = start + 120
        # A counter in another process: there is no event to wait on.
        while slack and await answered(session, slack) - before < n:
            if time.perf_counter() > limit:
                break
            await asyncio.sleep(0.05)
        all_answered = time.perf_counter() - start if slack else 0.0
    return [r[0] for r in results], [r[1] for r in results], all_answered


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary(n: int, latencies: list[float], statuses: list[int], seconds: float) -> dict[str, Any]:
    return {
        "n": n,
        "ok": sum(status == 200 for status in statuses),
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "answered": seconds,
    }


def measure(fakes: dict[str, str], n: int, spread: float = 1.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="actionbot-ack-") as name:
        process, port = start_bot(fakes, Path(name))
        try:
            result = asyncio.run(burst(port, n, fakes["slack"], spread))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    return summary(n, *result)


def measure_floor(fakes: dict[str, str], n: int) -> dict[str, Any]:
    """The same burst at once against a route of the fakes' aiohttp server that only reads
    the body: what this client and an aiohttp server cost on this machine."""
    port = int(fakes["slack"].rsplit(":", 1)[1].split("/", 1)[0])
    return summary(n, *asyncio.run(burst(port, n, None, 0.0, path="/floor")))


def row(name: str, r: dict[str, Any], target: str) -> list[str]:
    answered = f"{r['answered']:.1f}" if r["answered"] else "—"
    cells = [f"{r['ok']}/{r['n']}", f"{r['p50']:.1f}", f"{r['p99']:.1f}", f"{r['max']:.1f}"]
    return [name, *cells, target, answered]


def ack_table(fakes: dict[str, str]) -> str:
    from bench.run import table, verdict

    floor = measure_floor(fakes, SCENARIOS[0][0])
    rows = [row(f"{floor['n']} at once, floor: an aiohttp route that only reads", floor, "—")]
    for n, spread, goal in SCENARIOS:
        r = measure(fakes, n, spread)
        target = "—" if goal is None else f"< {goal:g}: {verdict(r['p99'] < goal)}"
        rows.append(row(f"{n} at once" if spread == 0 else f"{n} in {spread:g} s", r, target))
    header = ["events", "acknowledged", "p50 ms", "p99 ms", "max ms", "p99 target ms"]
    header.append("all answered after s")
    return table("Slack HTTP mode: acknowledgement latency under a burst", header, rows)


def main() -> None:
    from bench.run import start_fakes

    fakes_process, fakes = start_fakes()
    try:
        print(ack_table(fakes), flush=True)
    finally:
        assert fakes_process.stdin is not None
        fakes_process.stdin.close()
        fakes_process.wait(timeout=30)


if __name__ == "__main__":
    main()
