"""One request of a webhook call and where a redirect leads it next."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from bot.outbound.body import CallFailed
from bot.types import Outcome

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_KEEPS_METHOD = frozenset({307, 308})


@dataclass(frozen=True)
class Hop:
    """One request of a call: the first, or one reached by following a redirect."""

    method: str
    url: httpx2.URL
    body: bytes
    same_origin: bool = True
    redirected: bool = False


def scrub_json(value: Any, scrub: Callable[[str], str]) -> Any:
    """`value` with `scrub` applied to every string in it, keys included."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_json(item, scrub) for item in value]
    if isinstance(value, dict):
        return {scrub(str(k)): scrub_json(v, scrub) for k, v in value.items()}
    return value


def retry_after(headers: httpx2.Headers) -> float | None:
    """`Retry-After` in seconds, when it is a small number of seconds (dates are ignored)."""
    value = headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() and len(value) < 6 else None


def redirect_target(url: httpx2.URL, status: int, headers: httpx2.Headers) -> httpx2.URL | None:
    location = headers.get("Location")
    if status not in _REDIRECTS or not location:
        return None
    try:
        return url.join(location).copy_with(fragment=None)
    except httpx2.InvalidURL:
        message = "the endpoint redirected to an invalid URL"
        raise CallFailed(Outcome.INVALID_RESPONSE, message, status=status) from None


def follow(hop: Hop, status: int, target: httpx2.URL) -> Hop:
    """307/308 repeat the request; 301/302/303 become a GET without a body."""
    keep = status in _KEEPS_METHOD
    return Hop(
        method=hop.method if keep else "GET",
        url=target,
        body=hop.body if keep else b"",
        same_origin=hop.same_origin and _origin(hop.url) == _origin(target),
        redirected=True,
    )


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else None)
