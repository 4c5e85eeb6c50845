"""Egress policy: which addresses an outbound webhook call may reach.

Blocked unless the operator allows them in `ACTIONBOT_EGRESS_ALLOW`: loopback, private
(RFC 1918), link-local (incl. 169.254.169.254), CGNAT 100.64/10, 0.0.0.0/8, multicast,
reserved and every other non-global range, IPv6 ULA and link-local, and IPv6 forms that
embed one of those (IPv4-mapped, NAT64, 6to4, Teredo). Host literals in odd encodings
(`127.1`, `0x7f.1`, `2130706433`, `017700000001`) are read the way the C resolver reads them,
so they cannot hide a blocked address.

The policy is applied twice: to the URL's host when the actions file is loaded (names like
`localhost` and address literals), and to every resolved address at connect time, where the
address that was checked is the one connected to (see `bot/webhooks.py`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
"""Local-use NAT64 (RFC 8215) leads into the operator's own networks: never a public place."""
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def parse_ip_literal(host: str) -> IPAddress | None:
    """Read `host` as an address literal in any form the C resolver accepts, else None."""
    name = host.strip().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, NAT64, 6to4, Teredo), if any."""
    if isinstance(addr, ipaddress.IPv4Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    return None


def _ipv4_reason(addr: ipaddress.IPv4Address) -> str | None:
    checks: list[tuple[bool, str]] = [
        (addr in _THIS_NETWORK, "a 'this network' (0.0.0.0/8) address"),
        (addr.is_loopback, "a loopback address"),
        (addr.is_link_local, "a link-local address (this includes cloud metadata services)"),
        (addr in _CGNAT, "a carrier-grade NAT (100.64.0.0/10) address"),
        (addr.is_private, "a private or special-purpose address"),
        (addr.is_multicast, "a multicast address"),
        (addr.is_reserved, "a reserved address"),
        (not addr.is_global, "not a public address"),
    ]
    return next((reason for hit, reason in checks if hit), None)


def _ipv6_reason(addr: ipaddress.IPv6Address) -> str | None:
    checks: list[tuple[bool, str]] = [
        (addr.is_unspecified, "the unspecified address"),
        (addr in _LOCAL_NAT64, "a local-use NAT64 address (64:ff9b:1::/48)"),
        (addr.is_loopback, "a loopback address"),
        (addr.is_link_local, "a link-local address"),
        (addr.is_site_local, "a site-local address"),
        (addr in ipaddress.IPv6Network("fc00::/7"), "a unique-local (private) address"),
        (addr.is_multicast, "a multicast address"),
        (addr.is_reserved, "a reserved address"),
        (not addr.is_global, "not a public address"),
    ]
    return next((reason for hit, reason in checks if hit), None)


def blocked_reason(addr: IPAddress) -> str | None:
    """Why `addr` is not a public destination (a phrase after "is"), or None when it is one."""
    inner = embedded_ipv4(addr)
    if inner is not None:
        reason = _ipv4_reason(inner)
        return None if reason is None else f"an address that embeds {inner}, which is {reason}"
    if isinstance(addr, ipaddress.IPv4Address):
        return _ipv4_reason(addr)
    return _ipv6_reason(addr)


class EgressPolicy:
    """Blocks non-public destinations except the operator's allowed networks and host names."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.networks: list[IPNetwork] = []
        self.hosts: set[str] = set()
        for entry in allow:
            self._add(entry)

    def _add(self, entry: str) -> None:
        text = entry.strip()
        if not text:
            return
        literal = parse_ip_literal(text)
        if literal is not None:
            self.networks.append(ipaddress.ip_network(literal))
            return
        try:
            self.networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            self.hosts.add(_normalise_host(text))

    def _allowed(self, host: str, addr: IPAddress | None) -> bool:
        if _normalise_host(host) in self.hosts:
            return True
        if addr is None:
            return False
        candidates = [addr] + ([inner] if (inner := embedded_ipv4(addr)) else [])
        return any(a in net for a in candidates for net in self.networks)

    def address_problem(self, host: str, addr: IPAddress) -> str | None:
        """Why connecting to `addr` (resolved from `host`) is refused, or None if allowed."""
        reason = blocked_reason(addr)
        if reason is None or self._allowed(host, addr):
            return None
        shown = host if parse_ip_literal(host) is not None else f"{host} ({addr})"
        return f"{shown} is {reason}; outbound calls may only reach public addresses"

    def host_problem(self, host: str) -> str | None:
        """Load-time check of a URL host: local names and non-public literals, no DNS."""
        name = _normalise_host(host)
        literal = parse_ip_literal(name)
        if literal is not None:
            return self.address_problem(name, literal)
        is_local = name in _LOCAL_NAMES or name.endswith(".localhost")
        if is_local and not self._allowed(name, None):
            return f"{host} is this machine; outbound calls may only reach public addresses"
        return None


def _normalise_host(host: str) -> str:
    return host.strip().lower().rstrip(".")
