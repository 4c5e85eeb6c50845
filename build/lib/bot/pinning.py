"""Connect-time egress enforcement: resolve once, check every address, connect to it.

`PinnedBackend` sits under httpx's connection pool as httpcore's network backend. For each new
connection it resolves the host once, refuses the host when any of its addresses is blocked by
the `EgressPolicy`, and connects to a checked IP itself, so a second DNS answer (rebinding) is
never used. TLS still sends SNI and verifies the certificate for the host *name*, because
httpcore passes `server_hostname` to `start_tls`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from bot.egress import EgressPolicy, IPAddress, parse_ip_literal

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""Looks up `host` (for `port`) and returns all its addresses; `resolve_host` by default."""


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
    """The policy refused a destination at connect time, inside httpcore's pool. httpx's
    `map_httpcore_exceptions` converts only httpcore's exceptions, so this arrives as is."""


class Unresolvable(Exception):
    """The resolver found no address for a host."""


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses the policy allows.

    The host is resolved once per new connection, every address is checked (one blocked
    address refuses the whole host), and the connection goes to a checked IP, never to the
    name. httpcore then calls `start_tls` with `server_hostname` set to the name.
    """

    def __init__(self, *, policy: EgressPolicy, resolver: Resolver = resolve_host) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,  # httpcore's option tuples, passed on
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in await self.checked_addresses(host, port):
            try:
                inner = self._inner.connect_tcp
                return await inner(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address to connect to for {host}")

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


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool that connects through `PinnedBackend`.

    httpx has no public setting for httpcore's network backend. Subclassing keeps httpx's
    request/response adaptation and exception mapping and replaces only the pool; the pool
    made by `super().__init__` is never used, and holds nothing until used.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext, backend: PinnedBackend) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=backend, keepalive_expiry=5.0
        )
