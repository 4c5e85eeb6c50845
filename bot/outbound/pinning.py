"""Connect-time egress enforcement: resolve once, check every address, connect to it.

`PinnedBackend` is the network backend of the webhook client's connection pool (httpcore2,
public API). For each new connection it resolves the host once, refuses the host when any of
its addresses is blocked by the `EgressPolicy`, and connects to a checked IP itself, so a second
DNS answer (rebinding) is never used. TLS still sends SNI and verifies the certificate for the
host *name*, because the pool passes `server_hostname` to `start_tls`.

httpcore2 rather than httpcore 1.x: httpcore 1.0.x leaks a pool slot for good whenever a
request is cancelled after the pool gave it a fresh connection but before it ran (a known
bug), so a burst of webhook timeouts could shrink the pool to nothing; httpcore2 reclaims
such connections. `pinned_pool` is the one place the pool is made.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore2

from bot.outbound.egress import EgressPolicy, IPAddress, parse_ip_literal

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""Looks up `host` (for `port`) and returns all its addresses; `resolve_host` by default."""
KEEPALIVE_SECONDS = 5.0
"""How long an idle connection to an endpoint is kept for reuse."""


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`, in its order (the default)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class Refused(Exception):
    """The policy refused a destination at connect time, inside the connection pool."""


class Unresolvable(Exception):
    """The resolver found no address for a host."""


class PinnedBackend(httpcore2.AsyncNetworkBackend):
    """A network backend that connects only to addresses the policy allows.

    The host is resolved once per new connection, every address is checked (one blocked
    address refuses the whole host), and the connection goes to a checked IP, never to the
    name. The pool then calls `start_tls` with `server_hostname` set to the name.
    """

    def __init__(self, *, policy: EgressPolicy, resolver: Resolver = resolve_host) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,  # httpcore2's option tuples, passed on
    ) -> httpcore2.AsyncNetworkStream:
        failure: httpcore2.ConnectError | None = None
        for address in await self.checked_addresses(host, port):
            try:
                inner = self._inner.connect_tcp
                stream = await inner(str(address), port, timeout, local_address, socket_options)
                return _ClosingStream(stream)
            except httpcore2.ConnectError as exc:
                failure = exc
        raise failure or httpcore2.ConnectError(f"no address to connect to for {host}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def checked_addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve `host` once and check every address; raise `Refused` if any is blocked."""
        literal = parse_ip_literal(host)
        addresses = [literal] if literal is not None else await self._lookup(host, port)
        for address in addresses:
            problem = self._policy.address_problem(host, address)
            if problem is not None:
                raise Refused(problem)
        return addresses

    async def _lookup(self, host: str, port: int) -> list[IPAddress]:
        try:
            addresses = await self._resolver(host, port)
        except OSError as exc:  # socket.gaierror and friends
            raise Unresolvable(host) from exc
        if not addresses:
            raise Unresolvable(host)
        return addresses


class _ClosingStream(httpcore2.AsyncNetworkStream):
    """A connected TCP stream whose TLS handshake, when cut off (the call's deadline cancels
    it), closes the socket at once. httpcore2 closes it only on an error, and leaves a
    cancelled handshake's socket to the garbage collector: under a burst of timeouts that is
    one open file per call until the next collection."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's signature
    ) -> httpcore2.AsyncNetworkStream:
        try:
            return await self._inner.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            await self._inner.aclose()  # closes the socket before its first await
            raise

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def pinned_pool(
    *, ssl_context: ssl.SSLContext, backend: PinnedBackend, connections: int
) -> httpcore2.AsyncConnectionPool:
    """A connection pool of at most `connections` that connects only through `backend`.

    Idle connections are kept briefly (an action called again soon skips a TLS handshake).
    The webhook client never queues more requests on the pool than it has connections, so
    waiting for capacity happens in the client, where it is bounded and measured.
    """
    return httpcore2.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
        network_backend=backend,
    )
