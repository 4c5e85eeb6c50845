"""How a webhook call ends: the response body read under its cap, then judged.

`read_capped` reads a response body up to the byte cap (inflating a compressed body itself,
with a bound); `interpret` turns status and body into an `Ending` (success, http_error or
invalid_response); `failure` turns a transport error into one. `CallFailed` ends a call early
with an outcome and a short message that is safe to show an admin and the model.
"""

from __future__ import annotations

import json
import ssl
import zlib
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpcore2
import httpx2

from bot.outbound.pinning import Refused, Unresolvable
from bot.types import JSONValue, Outcome

_E = TypeVar("_E", bound=BaseException)
_BAD_COMPRESSION = "the endpoint sent a compressed body that could not be decompressed"

TRANSPORT_ERRORS = (
    httpcore2.TimeoutException,
    httpcore2.NetworkError,
    httpcore2.ProtocolError,
    httpcore2.UnsupportedProtocol,
    Refused,
    Unresolvable,
)
"""What the connection pool (and `PinnedBackend` under it) raises when a request fails."""


@dataclass(frozen=True)
class Ending:
    """How a call ended, before latency and names are added to make an `ActionResult`."""

    outcome: Outcome
    status: int | None = None
    data: JSONValue = None
    text: str | None = None
    error: str | None = None


class CallFailed(Exception):
    """Ends a call early with an outcome and a short message that is safe to show;
    `retryable` when the request never reached the server (a connect error)."""

    def __init__(
        self, outcome: Outcome, error: str, *, status: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(error)
        self.ending = Ending(outcome, status=status, error=error)
        self.retryable = retryable


async def read_capped(
    chunks: AsyncIterable[bytes], *, headers: Mapping[str, str], status: int, cap: int
) -> bytes:
    """The whole (decoded) body, or `CallFailed` as soon as it is known to be over `cap`.

    We ask for no compression, but a server may compress anyway: the raw bytes are then
    inflated here with a bound, so a small compressed body cannot expand past the cap.
    """
    declared = headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(cap, status)
    inflater = _inflater(headers.get("Content-Encoding", ""), status)
    body = bytearray()
    async for chunk in chunks:
        try:
            body += inflater.decompress(chunk, cap + 1 - len(body)) if inflater else chunk
        except zlib.error:
            raise CallFailed(Outcome.INVALID_RESPONSE, _BAD_COMPRESSION, status=status) from None
        if len(body) > cap or (inflater is not None and inflater.unconsumed_tail):
            raise _too_large(cap, status)
    return bytes(body)


def interpret(status: int, content: bytes) -> Ending:
    """2xx JSON (or empty) is success; 2xx non-JSON is invalid; anything else http_error."""
    ok = 200 <= status < 300
    if ok and not content.strip():
        return Ending(Outcome.SUCCESS, status=status)
    data, is_json = _parse_json(content)
    text = None if is_json or not content else content.decode("utf-8", errors="replace")
    if ok and is_json:
        return Ending(Outcome.SUCCESS, status=status, data=data)
    if ok:
        error = "the endpoint did not return JSON"
        return Ending(Outcome.INVALID_RESPONSE, status=status, text=text, error=error)
    phrase = httpx2.codes.get_reason_phrase(status)
    error = f"HTTP {status} {phrase}".rstrip()
    return Ending(Outcome.HTTP_ERROR, status=status, data=data, text=text, error=error)


def failure(
    exc: Exception, *, host: str, port: int, redirected: bool, extra_ca: str | None = None
) -> CallFailed:
    """A transport failure as an outcome with a short message that names no secret.
    `extra_ca` is the CA file trusted besides the public CAs, named when verification fails."""
    refused = _find(exc, Refused)
    if refused is not None:
        return CallFailed(Outcome.BLOCKED, refusal(str(refused), redirected=redirected))
    if _find(exc, Unresolvable) is not None:
        return CallFailed(Outcome.ERROR, f"could not resolve {host}")
    if isinstance(exc, httpcore2.TimeoutException):
        return CallFailed(Outcome.TIMEOUT, f"timed out talking to {host}")
    # Nothing was sent when the connection could not be made (TLS refusals aside: trying
    # again would only fail again).
    retryable = isinstance(exc, httpcore2.ConnectError) and _find(exc, ssl.SSLError) is None
    problem = _connection_problem(exc, host, port, extra_ca)
    return CallFailed(Outcome.ERROR, problem, retryable=retryable)


def refusal(problem: str, *, redirected: bool) -> str:
    return f"refused a redirect: {problem}" if redirected else problem


def _parse_json(content: bytes) -> tuple[JSONValue, bool]:
    try:
        return json.loads(content), True
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
        return None, False


def _inflater(encoding: str, status: int) -> Any:
    """A bounded decompressor for gzip/deflate bodies, None for plain ones."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # gzip or zlib header
    message = f"the endpoint sent a body compressed with {name!r}, which ActionBot does not read"
    raise CallFailed(Outcome.INVALID_RESPONSE, message, status=status)


def _too_large(cap: int, status: int) -> CallFailed:
    message = f"the response is larger than {_size(cap)}"
    return CallFailed(Outcome.INVALID_RESPONSE, message, status=status)


def _size(count: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"


def _connection_problem(exc: Exception, host: str, port: int, extra_ca: str | None) -> str:
    verification = _find(exc, ssl.SSLCertVerificationError)
    if verification is not None:
        message = f"TLS certificate verification failed for {host}: {verification.verify_message}"
        if extra_ca:
            message += f" (trusted: the public CAs and SSL_CERT_FILE={extra_ca})"
        return message
    if _find(exc, ssl.SSLError) is not None:
        return f"TLS handshake with {host} failed"
    if _find(exc, ConnectionRefusedError) is not None:
        return f"connection refused by {host}:{port}"
    if isinstance(exc, httpcore2.ConnectError):
        return f"could not connect to {host}:{port}"
    if isinstance(exc, httpcore2.RemoteProtocolError):
        return f"{host} closed the connection or sent a malformed response"
    return f"the call to {host} failed ({type(exc).__name__})"


def _find(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first `kind` in the chain of causes that the pool builds while mapping errors."""
    current: BaseException | None = exc
    while current is not None and not isinstance(current, kind):
        current = current.__cause__ or current.__context__
    return current if isinstance(current, kind) else None
