"""PostgreSQL and replicas: what one turn asks of each database, and turns/s for 1–3 replicas.

1. **Database work per one-action turn, SQLite vs PostgreSQL**, along the path `actionbot run`
   takes: `Inbox.receive` writes the message and starts its turn in the background, the engine
   answers (two model requests, one webhook call, journaled), the inbox settles the message
   (the `actionbot-receive` variant of `bench/variants.py`; the fakes of `bench/fakes.py` in
   their own process). Each count runs in a fresh process (`python -m bench.measure trips`)
   and is attributed to the store method that was running:
   - SQLite: the statements its connection runs (`sqlite3.Connection.set_trace_callback`;
     SQLite reports a trigger's subprogram with its statement's text again, so consecutive
     repeats are folded into one statement). In-process: no network round trip.
   - PostgreSQL: the requests the store makes of its asyncpg pool (a counting proxy:
     `execute`/`fetch`/`fetchval`/`fetchrow` count 1, also on an `acquire()`d connection, and a
     `transaction()` 2 for BEGIN and COMMIT), and the round trips on the wire (a proxy between
     the pool and the server counts each `Sync` and simple `Query` message: every one is a wait
     for the server's answer; among them asyncpg's reset of a connection released to the pool
     and the preparing of a statement new to a connection).
   CPU per turn at concurrency 1, 16 and 128 is `time.process_time()` of the measuring
   process (a fresh one per measurement, `bench/measure.py`), and for PostgreSQL also the CPU
   of the database server's processes (`/proc`), since SQLite does that work inside the bot.
   The bot's CPU is compared with the raw floor's (`raw-floor`, measured alongside).
2. **Turns/s for 1, 2 and 3 replicas**: real `actionbot run` processes in Slack HTTP mode on
   one throwaway PostgreSQL database, signed events spread round-robin over their
   `/slack/events` (600 events each in its own thread; then 20 DM conversations of 30 messages,
   each conversation's messages sent one after another and alternating between replicas).
   Wall time from the first event until every answer is posted (the fake Slack counts the
   final answers per event: the LLM fake repeats the `ref-TAG` of the question in the answer),
   CPU of the bot processes from `/proc/<pid>/stat`, the database server's CPU, and the
   statements the server ran (`pg_stat_statements`, preloaded in the throwaway cluster).
   Every event must be answered exactly once (per-event answer counts from the fake Slack;
   in the database every message settled `done` at its first attempt, one recorded call
   each) and each conversation's answers posted in the order its messages were sent.
3. **Acknowledgement latency on each database**: `bench/ack.py`'s burst of 500 events in one
   second against one `actionbot run` on SQLite, then on PostgreSQL.

The PostgreSQL cluster is `tests/postgres_server.PostgresServer` (initdb + pg_ctl in a temporary
folder), removed at the end; without the PostgreSQL binaries the section prints one line.

Run alone: `python -m bench.replicas` (starts its own fakes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

TESTS = Path(__file__).resolve().parent.parent / "tests"
COST_TURNS = {1: 120, 16: 192, 128: 384}
COST_REPEATS = 2
TRIP_TURNS = 50
RAW_FLOOR_TARGET = 1.3
"""The bot's CPU per turn on either database, at most this many times the raw floor's
(`bench/variants.py`), measured alongside."""
TARGET_ROUND_TRIPS = 6
SINGLE_EVENTS = 600
CONVERSATIONS, MESSAGES = 20, 30
SENDERS = 32
"""Events of the single-message workload in flight at once (Slack does not wait either)."""
REPLICAS = (1, 2, 3)
ANSWER_WAIT = 240.0
"""Seconds to wait for every answer before reporting the missing ones."""
LATE_SECONDS = 1.0
"""After the last answer, how long to go on watching for a second answer to any event."""
KEEPS_UP = 0.9
"""Throughput with more replicas "does not fall" when it is at least this share of one
replica's (the rest is the shared machine's run-to-run noise)."""
ACK_BURST = 500
"""Events of `bench/ack.py`'s burst (sent open-loop over one second) for the acknowledgement
comparison of the two databases."""
SSL_REQUEST, GSS_REQUEST = 80877103, 80877104
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- CPU from /proc -------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (index 0 is field 3, state)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (utime + stime)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def server_cpu_seconds(postmaster: int) -> float:
    """CPU of a PostgreSQL server: the postmaster, its children that ended (cutime + cstime)
    and those running (backends, checkpointer, autovacuum…)."""
    fields = _stat(postmaster)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if int(child[1]) == postmaster:
            total += (int(child[11]) + int(child[12])) / CLOCK_TICKS
    return total


# -- counting a turn's database work (runs inside `python -m bench.measure trips`) -----------


@dataclass
class Tally:
    """What each store method asked of the database while `counting`. `current` is the store
    method running now: turns are counted one at a time, so there is only ever one."""

    counting: bool = False
    current: str = ""
    calls: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    round_trips: Counter[str] = field(default_factory=Counter)
    resets: Counter[str] = field(default_factory=Counter)
    prepares: Counter[str] = field(default_factory=Counter)
    _last_statement: str | None = None

    @property
    def method(self) -> str:
        return self.current or "(outside the store)"

    def install(self, store: Any) -> None:
        """Wrap the store's public coroutine methods so the work is attributed to them."""
        for name in dir(type(store)):
            if name.startswith("_") or name in ("open", "close"):
                continue
            method = getattr(store, name)
            if inspect.iscoroutinefunction(method):
                setattr(store, name, self._wrap(name, method))

    def _wrap(self, name: str, method: Any) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            if self.counting:
                self.calls[name] += 1
            outer, self.current = self.current, name
            try:
                return await method(*args, **kwargs)
            finally:
                self.current = outer

        return counted

    def request(self, n: int = 1) -> None:
        if self.counting:
            self.requests[self.method] += n

    def statement(self, sql: str) -> None:
        """SQLite's trace callback: a statement began (or a trigger of it: the same text)."""
        if sql == self._last_statement:
            return
        self._last_statement = sql
        self.request()

    def message(self, kind: str, body: bytes) -> None:
        """A message the client sent the PostgreSQL server."""
        if not self.counting:
            return
        if kind in "SQ":  # the client now waits for ReadyForQuery: one round trip
            self.round_trips[self.method] += 1
        if kind == "Q" and b"pg_advisory_unlock_all" in body:
            self.resets[self.method] += 1
        if kind == "P":
            self.prepares[self.method] += 1

    def per_method(self) -> dict[str, dict[str, int]]:
        names = set(self.calls) | set(self.requests) | set(self.round_trips)
        return {
            name: {
                "calls": self.calls[name],
                "requests": self.requests[name],
                "round_trips": self.round_trips[name],
                "resets": self.resets[name],
                "prepares": self.prepares[name],
            }
            for name in sorted(names)
        }


class _Counting:
    """Delegates to an asyncpg pool or connection, counting each request."""

    def __init__(self, target: Any, tally: Tally) -> None:
        self._target = target
        self._tally = tally

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._tally.request()
        return await self._target.execute(*args, **kwargs)

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self._tally.request()
        return await self._target.executemany(*args, **kwargs)

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        self._tally.request()
        return await self._target.fetch(*args, **kwargs)

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        self._tally.request()
        return await self._target.fetchval(*args, **kwargs)

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        self._tally.request()
        return await self._target.fetchrow(*args, **kwargs)


class CountingPool(_Counting):
    """The store's pool, counting requests; `acquire()` yields a counting connection."""

    def acquire(self, *args: Any, **kwargs: Any) -> _Acquired:
        return _Acquired(self._target.acquire(*args, **kwargs), self._tally)


class _Acquired:
    def __init__(self, context: Any, tally: Tally) -> None:
        self._context = context
        self._tally = tally

    async def __aenter__(self) -> _CountingConnection:
        return _CountingConnection(await self._context.__aenter__(), self._tally)

    async def __aexit__(self, *exc: object) -> Any:
        return await self._context.__aexit__(*exc)


class _CountingConnection(_Counting):
    def transaction(self, *args: Any, **kwargs: Any) -> _Transaction:
        return _Transaction(self._target.transaction(*args, **kwargs), self._tally)


class _Transaction:
    """BEGIN on entry and COMMIT (or ROLLBACK) on exit: one request each."""

    def __init__(self, transaction: Any, tally: Tally) -> None:
        self._transaction = transaction
        self._tally = tally

    async def __aenter__(self) -> Any:
        self._tally.request()
        return await self._transaction.__aenter__()

    async def __aexit__(self, *exc: object) -> Any:
        self._tally.request()
        return await self._transaction.__aexit__(*exc)


class WireCounter:
    """A TCP proxy in front of the PostgreSQL server that tells the tally each message the
    client sends (the protocol's startup messages are untyped; every later one is a type byte
    and a length)."""

    def __init__(self, url: str, tally: Tally) -> None:
        self._parts = urlsplit(url)
        self._tally = tally
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The database URL with the proxy's port."""
        netloc = self._parts.netloc.rsplit(":", 1)[0] + f":{self.port}"
        return urlunsplit(self._parts._replace(netloc=netloc))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _connection(self, client: asyncio.StreamReader, to_client: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        server, to_server = await asyncio.open_connection(
            self._parts.hostname, self._parts.port or 5432
        )
        try:
            await asyncio.gather(self._from_client(client, to_server), _pipe(server, to_client))
        finally:
            to_server.close()
            to_client.close()
            self._pipes.discard(task)

    async def _from_client(self, client: asyncio.StreamReader, to_server: Any) -> None:
        buffer = bytearray()
        startup = True
        while data := await client.read(65536):
            buffer += data
            while True:
                if startup:
                    if len(buffer) < 8:
                        break
                    length = int.from_bytes(buffer[:4], "big")
                    if len(buffer) < length:
                        break
                    code = int.from_bytes(buffer[4:8], "big")
                    del buffer[:length]
                    startup = code in (SSL_REQUEST, GSS_REQUEST)
                    continue
                if len(buffer) < 5:
                    break
                length = int.from_bytes(buffer[1:5], "big")
                if len(buffer) < 1 + length:
                    break
                kind = chr(buffer[0])
                self._tally.message(kind, bytes(buffer[5 : 1 + length]) if kind == "Q" else b"")
                del buffer[: 1 + length]
            to_server.write(data)
            await to_server.drain()
        to_server.close()


async def _pipe(reader: asyncio.StreamReader, writer: Any) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def count_trips(
    *, llm: str, webhook: str, ca: str, database_url: str | None, turns: int, warmup: int
) -> dict[str, Any]:
    """`turns` one-action turns, one at a time, after `warmup` ones, through the inbox of an
    `actionbot-receive` variant; what each store method asked of the database."""
    from bench.variants import create

    tally = Tally()
    wire = None
    url = database_url
    if url is not None and not url.startswith("sqlite"):
        wire = WireCounter(url, tally)
        await wire.start()
        url = wire.url
    variant = await create("actionbot-receive", llm=llm, webhook=webhook, ca=ca, database_url=url)
    try:
        store = variant.store
        tally.install(store)
        if wire is None:
            store._db.set_trace_callback(tally.statement)
        else:
            store._pool = CountingPool(store._pool, tally)
        for i in range(warmup):
            await variant.turn(f"warmup{i}")
        tally.counting = True
        for i in range(turns):
            await variant.turn(f"counted{i}")
        tally.counting = False
    finally:
        await variant.close()
        if wire is not None:
            await wire.close()
    backend = "sqlite" if wire is None else "postgresql"
    return {"backend": backend, "turns": turns, "methods": tally.per_method()}


# -- the PostgreSQL server ------------------------------------------------------------------


@dataclass
class Postgres:
    """The throwaway cluster, its postmaster's pid, and whether `pg_stat_statements` is on."""

    server: Any
    postmaster: int
    statements: bool

    def new_database(self) -> str:
        return str(self.server.new_database())

    def url(self, database: str = "postgres") -> str:
        return str(self.server.url(database))

    def remove(self) -> None:
        self.server.remove()


def start_postgres() -> Postgres | None:
    """A new cluster (`tests/postgres_server.py`) with `pg_stat_statements` preloaded when
    the extension is installed; None without the PostgreSQL binaries."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from postgres_server import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        return None
    server = PostgresServer(bindir)
    try:
        server.init()
        statements = _has_statements_extension(bindir)
        if statements:
            asyncio.run(
                _sql(
                    server.url(), "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
                )
            )
            server.stop()
            server.start()
            asyncio.run(_sql(server.url(), "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        pid = int((server.data / "postmaster.pid").read_text().split()[0])
    except BaseException:
        server.remove()
        raise
    return Postgres(server, pid, statements)


def _has_statements_extension(bindir: Path) -> bool:
    done = subprocess.run(  # noqa: S603 - PostgreSQL's own pg_config
        [str(bindir / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and (Path(done.stdout.strip()) / "pg_stat_statements.so").exists()


async def _sql(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


# -- section 1: round trips and CPU per turn -------------------------------------------------


def database_tables(fakes: dict[str, str], postgres: Postgres) -> str:
    from bench.run import measure, table, verdict

    trip_options = ("--turns", str(TRIP_TURNS))
    sqlite = measure(fakes, "trips", *trip_options)
    pg = measure(fakes, "trips", *trip_options, "--database-url", postgres.new_database())
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(COST_REPEATS):
        for concurrency, turns in COST_TURNS.items():
            options = ["--variant", "actionbot-receive", "--concurrency", str(concurrency)]
            options += ["--turns", str(turns)]
            runs.setdefault(("SQLite", concurrency), []).append(measure(fakes, "cost", *options))
            floor = ("--variant", "raw-floor", "--concurrency", str(concurrency))
            floor += ("--turns", str(turns))
            runs.setdefault(("raw floor", concurrency), []).append(measure(fakes, "cost", *floor))
            options += ["--database-url", postgres.new_database()]
            options += ["--server-pid", str(postgres.postmaster)]
            runs.setdefault(("PostgreSQL", concurrency), []).append(
                measure(fakes, "cost", *options)
            )
    costs = {key: min(found, key=lambda r: r["cpu_ms_per_turn"]) for key, found in runs.items()}

    def total(result: dict[str, Any], column: str) -> float:
        return sum(m[column] for m in result["methods"].values()) / result["turns"]

    def calls(result: dict[str, Any]) -> float:
        return total(result, "calls")

    trips = total(pg, "round_trips")
    requests = total(pg, "requests")
    resets, prepares = total(pg, "resets"), total(pg, "prepares")
    summary = [
        [
            "SQLite",
            f"{calls(sqlite):.2f}",
            f"{total(sqlite, 'requests'):.2f} statements",
            "none: in-process",
            "—",
        ],
        [
            "PostgreSQL",
            f"{calls(pg):.2f}",
            f"{requests:.2f} requests at the pool",
            f"{trips:.2f} ({resets:.2f} connection resets, {prepares:.2f} prepares)",
            f"{verdict(trips <= TARGET_ROUND_TRIPS)} "
            f"(at the pool: {verdict(requests <= TARGET_ROUND_TRIPS)})",
        ],
    ]
    methods = sorted(set(sqlite["methods"]) | set(pg["methods"]))
    per_method = []
    for name in methods:
        s = sqlite["methods"].get(name, {})
        p = pg["methods"].get(name, {})
        per_method.append(
            [
                name,
                f"{p.get('calls', s.get('calls', 0)) / TRIP_TURNS:.2f}",
                f"{s.get('requests', 0) / TRIP_TURNS:.2f}",
                f"{p.get('requests', 0) / TRIP_TURNS:.2f}",
                f"{p.get('round_trips', 0) / TRIP_TURNS:.2f}",
                f"{p.get('resets', 0) / TRIP_TURNS:.2f}",
            ]
        )
    per_method.append(
        [
            "total",
            f"{calls(pg):.2f}",
            f"{total(sqlite, 'requests'):.2f}",
            f"{requests:.2f}",
            f"{trips:.2f}",
            f"{resets:.2f}",
        ]
    )
    cost_rows = []
    for (database, concurrency), r in sorted(
        costs.items(), key=lambda kv: (kv[0][1], kv[0][0] != "SQLite")
    ):
        if database == "raw floor":
            continue
        server = r.get("server_cpu_ms_per_turn")
        ratio = r["cpu_ms_per_turn"] / costs["raw floor", concurrency]["cpu_ms_per_turn"]
        cost_rows.append(
            [
                database,
                str(concurrency),
                f"{r['cpu_ms_per_turn']:.2f}",
                "— (in the bot)" if server is None else f"{server:.2f}",
                f"{ratio:.2f} ({verdict(ratio <= RAW_FLOOR_TARGET)})",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['turns_per_s']:.0f}",
            ]
        )
    return (
        table(
            f"Database work per one-action turn ({TRIP_TURNS} turns, one at a time; "
            f"target ≤ {TARGET_ROUND_TRIPS} round trips on PostgreSQL)",
            [
                "database",
                "store calls",
                "asked of the database",
                "network round trips",
                f"≤ {TARGET_ROUND_TRIPS}",
            ],
            summary,
        )
        + "\n"
        + table(
            "Per store method, per turn",
            [
                "store method",
                "calls",
                "SQLite statements",
                "PostgreSQL pool requests",
                "PostgreSQL round trips",
                "of which connection resets",
            ],
            per_method,
        )
        + "\n"
        + table(
            f"CPU per turn, SQLite vs PostgreSQL (best of {COST_REPEATS})",
            [
                "database",
                "concurrency",
                "bot CPU ms/turn",
                "PostgreSQL server CPU ms/turn",
                f"bot / raw floor (≤ {RAW_FLOOR_TARGET})",
                "p50 ms",
                "p99 ms",
                "turns/s",
            ],
            cost_rows,
        )
    )


# -- section 2: replicas ----------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    bodies: list[bytes]
    tags: list[str]
    conversations: list[list[int]]
    """Indexes into `bodies`: one list per conversation, in sending order."""


def _signed(body: bytes) -> dict[str, str]:
    from bench.ack import SIGNING_SECRET

    timestamp = str(int(time.time()))
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def _callback(i: int, event: dict[str, Any]) -> bytes:
    body = {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event": event,
        "event_id": f"EvReplica{i}",
        "event_time": 1_700_000_000 + i,
    }
    return json.dumps(body).encode()


def single_messages(n: int) -> Workload:
    """`n` app mentions, each starting its own thread (its own conversation)."""
    bodies, tags = [], []
    for i in range(n):
        ts = f"{1_700_000_000 + i}.000100"
        tags.append(f"e{i}")
        mention = {
            "type": "app_mention",
            "user": "U1",
            "text": f"<@UBOT> do you have iPhone 15 Pro screens? ref-e{i}",
            "ts": ts,
            "channel": "C1",
            "event_ts": ts,
        }
        bodies.append(_callback(i, mention))
    return Workload(f"{n} × 1 message", bodies, tags, [[i] for i in range(n)])


def conversations(count: int, messages: int) -> Workload:
    """`count` DM conversations of `messages` messages each."""
    bodies, tags, order = [], [], []
    for c in range(count):
        order.append([])
        for m in range(messages):
            i = len(bodies)
            ts = f"{1_700_000_000 + i}.000200"
            tags.append(f"c{c}m{m}")
            dm = {
                "type": "message",
                "channel_type": "im",
                "channel": f"D{c}",
                "user": "U1",
                "text": f"do you have iPhone 15 Pro screens? ref-c{c}m{m}",
                "ts": ts,
                "event_ts": ts,
            }
            bodies.append(_callback(i, dm))
            order[-1].append(i)
    return Workload(f"{count} × {messages} messages", bodies, tags, order)


async def _send_all(ports: list[int], workload: Workload) -> list[float]:
    """Send every event, spreading them round-robin over the replicas: the single messages
    `SENDERS` at a time; each conversation's messages one after another, consecutive ones to
    different replicas. Acknowledgement latencies in ms (an event not acknowledged with 200 is
    an error)."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def send(i: int, replica: int) -> None:
            url = f"http://127.0.0.1:{ports[replica % len(ports)]}/slack/events"
            body = workload.bodies[i]
            started = time.perf_counter()
            async with session.post(url, data=body, headers=_signed(body)) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"event {i}: HTTP {response.status}")
            latencies.append((time.perf_counter() - started) * 1000)

        if all(len(c) == 1 for c in workload.conversations):
            queue = iter(range(len(workload.bodies)))

            async def worker() -> None:
                for i in queue:
                    await send(i, i)

            await asyncio.gather(*(worker() for _ in range(SENDERS)))
        else:

            async def conversation(c: int, indexes: list[int]) -> None:
                for m, i in enumerate(indexes):
                    await send(i, c + m)

            await asyncio.gather(
                *(conversation(c, x) for c, x in enumerate(workload.conversations))
            )
    return latencies


async def _finals(session: aiohttp.ClientSession, slack: str, detail: bool = False) -> Any:
    async with session.get(f"{slack}finals", params={"detail": "1"} if detail else {}) as r:
        return await r.json()


async def _drive(
    fakes: dict[str, str],
    postgres: Postgres,
    url: str,
    bots: list[tuple[subprocess.Popen[bytes], int]],
    workload: Workload,
) -> dict[str, Any]:
    import asyncpg

    n = len(workload.bodies)
    slack = fakes["slack"]
    database = await asyncpg.connect(url)
    stats = await asyncpg.connect(postgres.url()) if postgres.statements else None
    try:
        async with aiohttp.ClientSession() as session:
            await session.post(f"{slack}finals/reset")
            if stats is not None:
                await stats.execute("SELECT pg_stat_statements_reset()")
            pids = [process.pid for process, _ in bots]
            cpu = sum(process_cpu_seconds(pid) for pid in pids)
            server = server_cpu_seconds(postgres.postmaster)
            started = time.perf_counter()
            limit = started + ANSWER_WAIT

            async def answered() -> float:
                # Counters in other processes: there is no event to wait on.
                while await _finals(session, slack) < n and time.perf_counter() < limit:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                return time.perf_counter() - started

            latencies, wall = await asyncio.gather(
                _send_all([port for _, port in bots], workload), answered()
            )
            while time.perf_counter() < limit and await database.fetchval(  # noqa: ASYNC110
                "SELECT count(*) /* bench */ FROM inbox WHERE state = 'pending'"
            ):
                await asyncio.sleep(0.05)
            cpu = sum(process_cpu_seconds(pid) for pid in pids) - cpu
            server = server_cpu_seconds(postgres.postmaster) - server
            await asyncio.sleep(LATE_SECONDS)
            detail = await _finals(session, slack, detail=True)
        inbox = await database.fetchrow(
            "SELECT /* bench */ count(*) FILTER (WHERE state = 'done') AS done, "
            "count(*) FILTER (WHERE attempts > 1) AS retried FROM inbox"
        )
        calls = await database.fetchval("SELECT count(*) /* bench */ FROM calls")
        statements = resets = 0
        by_statement: Counter[str] = Counter()
        if stats is not None:
            rows = await stats.fetch(
                "SELECT s.query, s.calls FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1",
                urlsplit(url).path.lstrip("/"),
            )
            resets = sum(r["calls"] for r in rows if "pg_advisory_unlock_all" in r["query"])
            reset_parts = ("pg_advisory_unlock_all", "CLOSE ALL", "UNLISTEN", "RESET ALL")
            statements = sum(
                r["calls"]
                for r in rows
                if not any(p in r["query"] for p in (*reset_parts, "/* bench */"))
            )
            for r in rows:
                if "/* bench */" not in r["query"] and not any(
                    p in r["query"] for p in reset_parts[1:]
                ):
                    by_statement[statement_name(r["query"])] += r["calls"]
    finally:
        await database.close()
        if stats is not None:
            await stats.close()
    counts: dict[str, int] = detail["tags"]
    in_order = all(
        [tag for tag in detail["channels"].get(f"D{c}", [])] == [workload.tags[i] for i in indexes]
        for c, indexes in enumerate(workload.conversations)
        if len(indexes) > 1
    )
    return {
        "events": n,
        "answered": sum(1 for tag in workload.tags if counts.get(tag, 0) >= 1),
        "twice": sum(1 for tag in workload.tags if counts.get(tag, 0) > 1),
        "wall_s": wall,
        "bot_cpu_s": cpu,
        "server_cpu_s": server,
        "ack_p99_ms": sorted(latencies)[min(len(latencies) - 1, round(0.99 * len(latencies)))],
        "done": int(inbox["done"]),
        "retried": int(inbox["retried"]),
        "calls": int(calls),
        "statements": statements,
        "resets": resets,
        "in_order": in_order if len(workload.conversations) < n else None,
        "by_statement": dict(by_statement),
    }


STATEMENTS = (
    ("SELECT id, payload,", "turn_inputs (history and toggles)"),
    ("INSERT INTO inbox", "receive"),
    ("FROM inbox AS earlier", "earlier_pending"),
    ("SELECT payload FROM messages", "load_messages"),
    ("FROM action_state", "action_states"),
    ("WITH started AS", "start_call"),
    ("WITH journaled AS", "record_call"),
    ("UPDATE inbox SET reply", "finish_turn"),
    ("UPDATE inbox SET route", "update_route"),
    ("UPDATE inbox SET state", "settle"),
    ("UPDATE inbox SET lease_until", "renew (every 10 s)"),
    ("WHERE seq IN", "claim (replay pass, every 10 s)"),
    ("attempts = CASE WHEN", "defer"),
    ("SET lease_owner = NULL, lease_until = 0 WHERE", "release"),
    ("pg_advisory_unlock_all", "asyncpg's reset on release"),
)
"""The store method (or what else) behind a statement the server counted."""


def statement_name(query: str) -> str:
    for text, name in STATEMENTS:
        if text in query:
            return name
    return " ".join(query.split())[:48]


def run_replicas(
    fakes: dict[str, str], postgres: Postgres, replicas: int, workload: Workload
) -> dict[str, Any]:
    """`replicas` fresh `actionbot run` processes on a new database, the workload sent to
    them; stopped afterwards."""
    from bench.ack import start_bot

    url = postgres.new_database()
    folders = [Path(tempfile.mkdtemp(prefix="actionbot-replica-")) for _ in range(replicas)]
    bots: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for folder in folders:
            bots.append(start_bot(fakes, folder, {"ACTIONBOT_DATABASE_URL": url}))
        return asyncio.run(_drive(fakes, postgres, url, bots, workload))
    finally:
        for process, _ in bots:
            process.send_signal(signal.SIGTERM)
        for process, _ in bots:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def replica_tables(fakes: dict[str, str], postgres: Postgres) -> str:
    from bench.run import table, verdict

    rows = []
    per_statement: dict[str, dict[str, float]] = {}
    for workload in (single_messages(SINGLE_EVENTS), conversations(CONVERSATIONS, MESSAGES)):
        base = None
        for replicas in REPLICAS:
            r = run_replicas(fakes, postgres, replicas, workload)
            if replicas in (REPLICAS[0], REPLICAS[-1]):
                column = f"{workload.name}, {replicas} replica{'s' * (replicas > 1)}"
                per_statement[column] = {
                    name: calls / r["events"] for name, calls in r["by_statement"].items()
                }
            n = r["events"]
            rate = n / r["wall_s"]
            base = base or rate
            once = r["answered"] == n and r["twice"] == 0 and r["done"] == n
            once = once and r["calls"] == n and r["retried"] == 0
            order = "" if r["in_order"] is None else f", in order: {verdict(r['in_order'])}"
            statements = (
                f"{r['statements'] / n:.1f} + {r['resets'] / n:.1f} resets"
                if postgres.statements
                else "—"
            )
            holds = "" if replicas == 1 else f", {verdict(rate >= KEEPS_UP * base)}"
            rows.append(
                [
                    workload.name,
                    str(replicas),
                    f"{r['answered']}/{n}, twice: {r['twice']}",
                    f"{r['wall_s']:.1f}",
                    f"{rate:.0f} ({rate / base:.2f}×{holds})",
                    f"{r['bot_cpu_s']:.1f} ({r['bot_cpu_s'] * 1000 / n:.1f} ms/turn)",
                    f"{r['server_cpu_s']:.1f}",
                    f"{r['ack_p99_ms']:.0f}",
                    statements,
                    f"{verdict(once)}{order}",
                ]
            )
    header = [
        "workload",
        "replicas",
        "answered",
        "wall s",
        "turns/s (vs 1; ≥ 0.9×)",
        "bot CPU s",
        "server CPU s",
        "ack p99 ms",
        "server statements/turn",
        "each answered once",
    ]
    result = table("Replicas on one PostgreSQL database (Slack HTTP mode)", header, rows)
    if not postgres.statements:
        return result
    names = [name for _, name in STATEMENTS if any(name in c for c in per_statement.values())]
    names += sorted({n for c in per_statement.values() for n in c} - set(names))
    statement_rows = [
        [name, *(f"{c.get(name, 0):.2f}" for c in per_statement.values())] for name in names
    ]
    statement_rows.append(
        ["total ≈ round trips", *(f"{sum(c.values()):.2f}" for c in per_statement.values())]
    )
    return (
        result
        + "\n"
        + table(
            "Statements per turn the server ran for `actionbot run` (pg_stat_statements)",
            ["statement", *per_statement],
            statement_rows,
        )
    )


def ack_tables(fakes: dict[str, str], postgres: Postgres) -> str:
    """`bench/ack.py`'s burst against one `actionbot run` on each database."""
    from bench.ack import TARGET_P99_MS, burst, percentile, start_bot
    from bench.run import table, verdict

    rows = []
    for database in ("SQLite", "PostgreSQL"):
        env = {} if database == "SQLite" else {"ACTIONBOT_DATABASE_URL": postgres.new_database()}
        with tempfile.TemporaryDirectory(prefix="actionbot-ack-") as name:
            process, port = start_bot(fakes, Path(name), env)
            try:
                latencies, statuses, _ = asyncio.run(burst(port, ACK_BURST, fakes["slack"], 1.0))
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
        p99 = percentile(latencies, 0.99)
        rows.append(
            [
                database,
                f"{sum(s == 200 for s in statuses)}/{ACK_BURST}",
                f"{percentile(latencies, 0.5):.1f}",
                f"{p99:.1f}",
                f"{max(latencies):.1f}",
                verdict(p99 < TARGET_P99_MS),
            ]
        )
    return table(
        f"Slack acknowledgement latency, {ACK_BURST} events in 1 s, one process "
        "(the burst of bench/ack.py)",
        ["database", "acknowledged", "p50 ms", "p99 ms", "max ms", f"p99 < {TARGET_P99_MS:.0f} ms"],
        rows,
    )


def replicas_tables(fakes: dict[str, str]) -> str:
    """Both parts, on a throwaway cluster (or one line saying why they were skipped)."""
    postgres = start_postgres()
    if postgres is None:
        return "PostgreSQL and replicas: skipped (PostgreSQL binaries not found).\n"
    try:
        return "\n".join(
            (
                database_tables(fakes, postgres),
                replica_tables(fakes, postgres),
                ack_tables(fakes, postgres),
            )
        )
    finally:
        postgres.remove()


def main() -> None:
    from bench.run import start_fakes

    fakes_process, fakes = start_fakes()
    try:
        print(replicas_tables(fakes), flush=True)
    finally:
        assert fakes_process.stdin is not None
        fakes_process.stdin.close()
        fakes_process.wait(timeout=30)


if __name__ == "__main__":
    main()
