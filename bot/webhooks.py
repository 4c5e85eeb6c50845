"""Outbound webhook calls: the one place ActionBot talks to an action's endpoint.

`WebhookClient.call` turns an action and its arguments into an `ActionResult` (a failed call
is a result, never an exception). Every hop is HTTPS; redirects are followed by hand, each
hop re-checked, and the action's own headers (its secrets) are dropped once a redirect leaves
the first origin. `PinnedBackend`, under httpx's connection pool, resolves a host once per new
connection, refuses it if any address is blocked by the `EgressPolicy`, and connects to the
checked IP itself, so DNS rebinding cannot slip through; TLS still verifies the host *name*.
One deadline covers connect, send and the whole body; the body is capped; every call carries
`User-Agent`, `Idempotency-Key` and, with a secret, an HMAC signature (`sign`); each call is
logged once at INFO (never header values or bodies) and handed to the recorder.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import ssl
import time
import uuid
import zlib
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import certifi
import httpx
from pydantic import SecretStr

from bot import __version__, config
from bot.actions import HEADER_VALUE, Action, Arguments, prepare_request
from bot.egress import EgressPolicy
from bot.errors import ConfigError
from bot.pinning import (
    PinnedBackend,
    PinnedTransport,
    Refused,
    Resolver,
    Unresolvable,
    resolve_host,
)
from bot.types import ActionResult, JSONValue, Outcome

logger = logging.getLogger(__name__)

USER_AGENT = f"ActionBot/{__version__}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_KEEPS_METHOD = frozenset({307, 308})
_E = TypeVar("_E", bound=BaseException)
_LOG_LINE = "webhook %s: %s status=%s latency_ms=%.0f call_id=%s error=%s"


class CallRecorder(Protocol):
    """Where each call's result goes (the store), with the conversation it belongs to."""

    async def record_call(self, result: ActionResult, *, conversation: str | None = None) -> None:
        """Record one finished call."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-ActionBot-Signature` value: `v1=` + hex HMAC-SHA256 of `<timestamp>.<body>`."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def default_ssl_context(extra_ca_file: str | None = None) -> ssl.SSLContext:
    """certifi's CA bundle plus, as extra trust, `extra_ca_file` (default `$SSL_CERT_FILE`)."""
    context = ssl.create_default_context(cafile=certifi.where())
    extra = extra_ca_file if extra_ca_file is not None else os.environ.get("SSL_CERT_FILE")
    if extra:
        try:
            context.load_verify_locations(cafile=extra)
        except OSError as exc:  # ssl.SSLError is an OSError too
            raise ConfigError(f"Cannot load extra CA certificates from {extra}: {exc}") from None
    return context


@dataclass(frozen=True)
class _Ending:
    """How a call ended, before latency and names are added to make an `ActionResult`."""

    outcome: Outcome
    status: int | None = None
    data: JSONValue = None
    text: str | None = None
    error: str | None = None


class _Failed(Exception):
    """Ends a call early with an outcome and a short message that is safe to show."""

    def __init__(self, outcome: Outcome, error: str, *, status: int | None = None) -> None:
        super().__init__(error)
        self.ending = _Ending(outcome, status=status, error=error)


@dataclass(frozen=True)
class _Hop:
    """One request of a call: the first, or one reached by following a redirect."""

    method: str
    url: httpx.URL
    body: bytes
    same_origin: bool = True
    redirected: bool = False


class WebhookClient:
    """Calls action endpoints safely over one connection pool (see the module docstring)."""

    def __init__(
        self,
        *,
        policy: EgressPolicy,
        recorder: CallRecorder | None = None,
        secret: SecretStr | None = None,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver | None = None,
        default_timeout: float = config.DEFAULT_ACTION_TIMEOUT,
        max_timeout: float = config.DEFAULT_MAX_TIMEOUT,
        max_body_bytes: int = config.DEFAULT_MAX_BODY_BYTES,
        max_redirects: int = config.DEFAULT_MAX_REDIRECTS,
        outside_policy: EgressPolicy | None = None,
    ) -> None:
        self._policy = policy
        # The operator's allow list exempts the action's own endpoint. A redirect that leaves
        # that origin gets no exemptions by default: an outside server must not be able to
        # steer a call into the networks the operator opened for its own APIs.
        self._outside_policy = outside_policy or EgressPolicy()
        self._recorder = recorder
        self._secret = secret
        self._default_timeout = default_timeout
        self._max_timeout = max_timeout
        self._max_body_bytes = max_body_bytes
        self._max_redirects = max_redirects
        context, lookup = ssl_context or default_ssl_context(), resolver or resolve_host
        self._client = _pinned_client(policy, context, lookup)
        self._outside_client = _pinned_client(self._outside_policy, context, lookup)

    @classmethod
    def from_settings(
        cls, settings: config.Settings, *, recorder: CallRecorder | None = None
    ) -> Self:
        """A client configured from the operator's settings."""
        return cls(
            policy=EgressPolicy(settings.egress_allow_entries),
            recorder=recorder,
            secret=settings.webhook_secret,
            max_timeout=settings.max_timeout,
            max_body_bytes=settings.max_body_bytes,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self._client.aclose()
        await self._outside_client.aclose()

    def timeout_for(self, action: Action) -> float:
        """Seconds allowed for one call of `action`: its own timeout, capped by the maximum."""
        return min(action.timeout or self._default_timeout, self._max_timeout)

    async def call(
        self,
        action: Action,
        arguments: Arguments,
        *,
        conversation: str | None = None,
        call_id: str | None = None,
    ) -> ActionResult:
        """Call `action`'s endpoint with validated `arguments`; failures are results too."""
        call_id = call_id or uuid.uuid4().hex
        started = time.perf_counter()
        ending = await self._attempt(action, arguments, call_id)
        ms = round((time.perf_counter() - started) * 1000, 1)
        result = ActionResult(action=action.name, call_id=call_id, latency_ms=ms, **vars(ending))
        outcome, status, error = result.outcome.value, result.status, result.error
        logger.info(_LOG_LINE, action.name, outcome, status, ms, call_id, error)
        await self._record(result, conversation)
        return result

    async def _attempt(self, action: Action, arguments: Arguments, call_id: str) -> _Ending:
        seconds = self.timeout_for(action)
        try:
            async with asyncio.timeout(seconds):
                return await self._exchange(action, arguments, call_id)
        except TimeoutError:  # only our deadline: httpx's own timeouts are off
            return _Ending(Outcome.TIMEOUT, error=f"no complete response within {seconds:g} s")
        except _Failed as exc:
            return exc.ending
        except Exception as exc:
            logger.warning("webhook %s failed unexpectedly", action.name, exc_info=True)
            return _Ending(Outcome.ERROR, error=f"the call failed ({type(exc).__name__})")

    async def _exchange(self, action: Action, arguments: Arguments, call_id: str) -> _Ending:
        prepared = prepare_request(action, arguments)
        body = b"" if prepared.json_body is None else _json_bytes(prepared.json_body)
        hop = _Hop(method=prepared.method.value, url=httpx.URL(prepared.url), body=body)
        for _ in range(self._max_redirects + 1):
            self._check_destination(hop)
            status, target, content = await self._send(action, hop, call_id)
            if target is None:
                return _interpret(status, content)
            hop = _follow(hop, status, target)
        raise _Failed(Outcome.ERROR, f"more than {self._max_redirects} redirects")

    def _check_destination(self, hop: _Hop) -> None:
        url = hop.url
        if url.scheme != "https":
            what = "a redirect to" if hop.redirected else "the URL"
            message = f"refused {what} {url.scheme}://{url.host}: only https:// is allowed"
            raise _Failed(Outcome.BLOCKED, message)
        policy = self._policy if hop.same_origin else self._outside_policy
        problem = policy.host_problem(url.host)
        if problem is not None:
            raise _Failed(Outcome.BLOCKED, _refusal(problem, hop))

    async def _send(
        self, action: Action, hop: _Hop, call_id: str
    ) -> tuple[int, httpx.URL | None, bytes]:
        """One request: status, redirect target (if following one) and the capped body."""
        headers = self._headers(action, hop, call_id)
        client = self._client if hop.same_origin else self._outside_client
        request = client.build_request(
            hop.method, hop.url, headers=headers, content=hop.body or None
        )
        try:
            response = await client.send(request, stream=True)
            try:
                target = _redirect_target(response)
                content = b"" if target is not None else await self._read_capped(response)
            finally:
                await response.aclose()
        except (httpx.HTTPError, Refused, Unresolvable) as exc:
            raise _failure(exc, hop) from exc
        return response.status_code, target, content

    def _headers(self, action: Action, hop: _Hop, call_id: str) -> httpx.Headers:
        headers = httpx.Headers({"User-Agent": USER_AGENT, "Accept": "application/json"})
        headers["Accept-Encoding"] = "identity"  # the cap counts what we hold in memory
        if hop.same_origin:
            for name, value in action.header_values.items():
                if not HEADER_VALUE.fullmatch(secret := value.get_secret_value()):
                    raise _Failed(Outcome.ERROR, f"header {name} has a value HTTP cannot carry")
                headers[name] = secret
        headers["Idempotency-Key"] = call_id
        if hop.body:
            headers["Content-Type"] = "application/json"
        if self._secret is not None and hop.same_origin:
            timestamp = str(int(time.time()))
            key = self._secret.get_secret_value().encode("utf-8")
            headers["X-ActionBot-Timestamp"] = timestamp
            headers["X-ActionBot-Signature"] = sign(key, timestamp, hop.body)
        return headers

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The whole (decoded) body, or `_Failed` as soon as it is known to be over the cap.

        We ask for no compression, but a server may compress anyway: the raw bytes are then
        inflated here with a bound, so a small compressed body cannot expand past the cap.
        """
        cap, status = self._max_body_bytes, response.status_code
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _too_large(cap, status)
        inflater = _inflater(response.headers.get("Content-Encoding", ""), status)
        body = bytearray()
        async for chunk in response.aiter_raw():
            try:
                body += inflater.decompress(chunk, cap + 1 - len(body)) if inflater else chunk
            except zlib.error:
                raise _Failed(Outcome.INVALID_RESPONSE, _BAD_COMPRESSION, status=status) from None
            if len(body) > cap or (inflater is not None and inflater.unconsumed_tail):
                raise _too_large(cap, status)
        return bytes(body)

    async def _record(self, result: ActionResult, conversation: str | None) -> None:
        if self._recorder is None:
            return
        try:
            await self._recorder.record_call(result, conversation=conversation)
        except Exception:
            logger.warning(
                "could not record call %s of %s", result.call_id, result.action, exc_info=True
            )


def _pinned_client(
    policy: EgressPolicy, context: ssl.SSLContext, resolver: Resolver
) -> httpx.AsyncClient:
    """An httpx client whose connections go only where `policy` allows (see bot/pinning.py)."""
    backend = PinnedBackend(policy=policy, resolver=resolver)
    return httpx.AsyncClient(
        transport=PinnedTransport(ssl_context=context, backend=backend),
        follow_redirects=False,
        trust_env=False,
        timeout=None,  # noqa: S113 - one asyncio deadline per call covers it all (`_attempt`)
    )


def _json_bytes(body: dict[str, Any]) -> bytes:
    """Serialised once, so the signed bytes are exactly the bytes sent."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def _redirect_target(response: httpx.Response) -> httpx.URL | None:
    location = response.headers.get("Location")
    if response.status_code not in _REDIRECTS or not location:
        return None
    try:
        return response.url.join(location).copy_with(fragment=None)
    except httpx.InvalidURL:
        message = "the endpoint redirected to an invalid URL"
        raise _Failed(Outcome.INVALID_RESPONSE, message, status=response.status_code) from None


def _follow(hop: _Hop, status: int, target: httpx.URL) -> _Hop:
    """307/308 repeat the request; 301/302/303 become a GET without a body."""
    keep = status in _KEEPS_METHOD
    return _Hop(
        method=hop.method if keep else "GET",
        url=target,
        body=hop.body if keep else b"",
        same_origin=hop.same_origin and _origin(hop.url) == _origin(target),
        redirected=True,
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else None)


def _interpret(status: int, content: bytes) -> _Ending:
    """2xx JSON (or empty) is success; 2xx non-JSON is invalid; anything else http_error."""
    ok = 200 <= status < 300
    if ok and not content.strip():
        return _Ending(Outcome.SUCCESS, status=status)
    data, is_json = _parse_json(content)
    text = None if is_json or not content else content.decode("utf-8", errors="replace")
    if ok and is_json:
        return _Ending(Outcome.SUCCESS, status=status, data=data)
    if ok:
        error = "the endpoint did not return JSON"
        return _Ending(Outcome.INVALID_RESPONSE, status=status, text=text, error=error)
    phrase = httpx.codes.get_reason_phrase(status)
    error = f"HTTP {status} {phrase}".rstrip()
    return _Ending(Outcome.HTTP_ERROR, status=status, data=data, text=text, error=error)


def _parse_json(content: bytes) -> tuple[JSONValue, bool]:
    try:
        return json.loads(content), True
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
        return None, False


_BAD_COMPRESSION = "the endpoint sent a compressed body that could not be decompressed"


def _inflater(encoding: str, status: int) -> Any:
    """A bounded decompressor for gzip/deflate bodies, None for plain ones."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # gzip or zlib header
    message = f"the endpoint sent a body compressed with {name!r}, which ActionBot does not read"
    raise _Failed(Outcome.INVALID_RESPONSE, message, status=status)


def _too_large(cap: int, status: int) -> _Failed:
    message = f"the response is larger than {_size(cap)}"
    return _Failed(Outcome.INVALID_RESPONSE, message, status=status)


def _size(count: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"


def _refusal(problem: str, hop: _Hop) -> str:
    return f"refused a redirect: {problem}" if hop.redirected else problem


def _failure(exc: Exception, hop: _Hop) -> _Failed:
    """A transport failure as an outcome with a short message that names no secret."""
    host, port = hop.url.host, hop.url.port or 443
    refused = _find(exc, Refused)
    if refused is not None:
        return _Failed(Outcome.BLOCKED, _refusal(str(refused), hop))
    if _find(exc, Unresolvable) is not None:
        return _Failed(Outcome.ERROR, f"could not resolve {host}")
    if isinstance(exc, httpx.TimeoutException):
        return _Failed(Outcome.TIMEOUT, f"timed out talking to {host}")
    return _Failed(Outcome.ERROR, _connection_problem(exc, host, port))


def _connection_problem(exc: Exception, host: str, port: int) -> str:
    verification = _find(exc, ssl.SSLCertVerificationError)
    if verification is not None:
        return f"TLS certificate verification failed for {host}: {verification.verify_message}"
    if _find(exc, ssl.SSLError) is not None:
        return f"TLS handshake with {host} failed"
    if _find(exc, ConnectionRefusedError) is not None:
        return f"connection refused by {host}:{port}"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect to {host}:{port}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} closed the connection or sent a malformed response"
    return f"the call to {host} failed ({type(exc).__name__})"


def _find(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first `kind` in the chain of causes that httpx and httpcore build while mapping."""
    current: BaseException | None = exc
    while current is not None and not isinstance(current, kind):
        current = current.__cause__ or current.__context__
    return current if isinstance(current, kind) else None
