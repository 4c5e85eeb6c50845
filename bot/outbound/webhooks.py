"""Outbound webhook calls: the one place ActionBot talks to an action's endpoint.

`WebhookClient.call` turns an action and its arguments into an `ActionResult` (a failed call
is a result, never an exception). The guard (`guard.py`) may stop it before anything is
sent: a dry run, an open circuit breaker, the action's `rate`. A call first takes its slots
(`bot/slots.py`: the action's `max_concurrency` and a pool connection, waited for at most the
queue timeout, else `busy`).
Every hop is HTTPS; redirects are followed by hand, each hop re-checked, and the action's own
headers (its secrets) are dropped once a redirect leaves the first origin. `PinnedBackend`,
under the connection pool, resolves a host once per new connection, refuses it if any address
is blocked by the `EgressPolicy`, and connects to the checked IP itself, so DNS rebinding
cannot slip through; TLS still verifies the host *name*. One deadline covers connect, send and
the whole body; the body is capped (`bot/webhook_body.py`); every call carries `User-Agent`,
`Idempotency-Key`, `X-ActionBot-Caller` (who is asking, as the platform verified it) and,
with a secret, an HMAC signature (`bot/outbound/signing.py`); each call is logged once at
INFO (never header values or bodies) and handed to the recorder.

An action with `retries` tries again after a connect error, 429, 502, 503 or 504, with
backoff (or the server's `Retry-After`), inside the same deadline and with the same
`Idempotency-Key`: one call, recorded once with its number of attempts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import ssl
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpcore2
import httpx2
from pydantic import SecretStr

from bot import __version__
from bot.actions.models import HEADER_VALUE, Action, Arguments, prepare_request
from bot.outbound.body import (
    TRANSPORT_ERRORS,
    CallFailed,
    Ending,
    failure,
    interpret,
    read_capped,
    refusal,
)
from bot.outbound.egress import EgressPolicy
from bot.outbound.guard import Guard, Pass
from bot.outbound.hops import Hop, follow, redirect_target, retry_after, scrub_json
from bot.outbound.parts import (
    CallObserver,
    CallRecorder,
    canonical_json,
    configured_keys,
    default_ssl_context,
    idempotency_key,
)
from bot.outbound.pinning import PinnedBackend, Resolver, pinned_pool, resolve_host
from bot.outbound.signing import DEFAULT_KEY_ID, SigningKey, signed_headers
from bot.outbound.slots import Busy, CallSlots
from bot.runtime import config
from bot.runtime.logs import Redactor
from bot.types import ActionResult, Outcome, caller_header

logger = logging.getLogger(__name__)

USER_AGENT = f"ActionBot/{__version__}"
_LOG_LINE = "webhook %s: %s status=%s latency_ms=%.0f attempts=%d call_id=%s error=%s"
NO_CALLER = caller_header("", "", "", "")
"""The caller of a call made without a platform user (never from a customer's turn)."""
RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers that say "not now": the request may be sent again with the same key."""
__all__ = [
    "USER_AGENT",
    "CallObserver",
    "CallRecorder",
    "WebhookClient",
    "canonical_json",
    "configured_keys",
    "default_ssl_context",
    "idempotency_key",
]
RETRY_BACKOFF = 0.25
"""Seconds before the first retry; doubled for each further one (unless `Retry-After`)."""


@dataclass(frozen=True)
class _Call:
    """What one call sends, whatever hop it is on."""

    action: Action
    arguments: Arguments
    key: str
    """The `Idempotency-Key`."""
    caller: str
    """The `X-ActionBot-Caller` value."""


class WebhookClient:
    """Calls action endpoints safely over one bounded connection pool (see the module
    docstring)."""

    def __init__(
        self,
        *,
        policy: EgressPolicy,
        recorder: CallRecorder | None = None,
        observer: CallObserver | None = None,
        signing_keys: Sequence[SigningKey] = (),
        secret: SecretStr | None = None,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver | None = None,
        default_timeout: float = config.DEFAULT_ACTION_TIMEOUT,
        max_timeout: float = config.DEFAULT_MAX_TIMEOUT,
        max_body_bytes: int = config.DEFAULT_MAX_BODY_BYTES,
        max_redirects: int = config.DEFAULT_MAX_REDIRECTS,
        connections: int = config.DEFAULT_WEBHOOK_CONNECTIONS,
        queue_timeout: float = config.DEFAULT_WEBHOOK_QUEUE_TIMEOUT,
        outside_policy: EgressPolicy | None = None,
        secrets: Iterable[str] = (),
        guard: Guard | None = None,
    ) -> None:
        self._policy = policy
        self.guard = guard or Guard()
        # The operator's allow list exempts the action's own endpoint. A redirect that leaves
        # that origin gets no exemptions by default: an outside server must not be able to
        # steer a call into the networks the operator opened for its own APIs.
        self._outside_policy = outside_policy or EgressPolicy()
        self._recorder = recorder
        self._observer = observer
        # The first key signs; `secret` alone is the one key `default`.
        keys = list(signing_keys)
        if not keys and secret is not None:
            keys = [SigningKey(DEFAULT_KEY_ID, secret.get_secret_value().encode("utf-8"))]
        self._signing_key = keys[0] if keys else None
        # A response that echoes one of our secrets (a header token, say) must not carry it
        # on to the model, the logs or the call log.
        self._redactor = Redactor(secrets)
        self._default_timeout = default_timeout
        self._max_timeout = max_timeout
        self._max_body_bytes = max_body_bytes
        self._max_redirects = max_redirects
        self._slots = CallSlots(connections=connections, queue_timeout=queue_timeout)
        # Named in verification errors: a system-wide SSL_CERT_FILE may not be the one meant.
        self._extra_ca = os.environ.get("SSL_CERT_FILE") if ssl_context is None else None
        context, lookup = ssl_context or default_ssl_context(), resolver or resolve_host
        self._pool = _pool(self._policy, context, lookup, connections)
        self._outside_pool = _pool(self._outside_policy, context, lookup, connections)

    def protect(self, secrets: Iterable[str]) -> None:
        """Blank these values out of responses too (secrets of actions added by a reload)."""
        self._redactor.add(secrets)

    @classmethod
    def from_settings(
        cls,
        settings: config.Settings,
        *,
        recorder: CallRecorder | None = None,
        observer: CallObserver | None = None,
        secrets: Iterable[str] = (),
        guard: Guard | None = None,
    ) -> Self:
        """A client configured from the operator's settings; `secrets` are the values to
        blank out of responses."""
        return cls(
            policy=EgressPolicy(settings.egress_allow_entries),
            recorder=recorder,
            observer=observer,
            signing_keys=configured_keys(settings),
            secrets=secrets,
            max_timeout=settings.max_timeout,
            max_body_bytes=settings.max_body_bytes,
            connections=settings.webhook_connections,
            queue_timeout=settings.webhook_queue_timeout,
            guard=guard,
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
        await self._pool.aclose()
        await self._outside_pool.aclose()

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
        event_key: str | None = None,
        caller: str = "",
        dry_run: bool | None = None,
        forced: bool = False,
    ) -> ActionResult:
        """Call `action`'s endpoint with validated `arguments`; failures are results too.

        `call_id` is the `Idempotency-Key` (a fresh one when not given); `event_key` names
        the turn whose journal records the result; `caller` is the `X-ActionBot-Caller`.
        The guard (`guard.py`) may stop the call first: `dry_run` overrides the action's
        `mode`, `forced` (an admin's test) skips the guard. The recorded latency is the
        call's own time once its slots are held; a `busy` call's latency is the time it
        waited for them; a call the guard stopped sent nothing (0 attempts).
        """
        call = _Call(action, arguments, call_id or uuid.uuid4().hex, caller or NO_CALLER)
        call_id = call.key
        started = time.perf_counter()
        tries = [0]
        checked = await self.guard.check(action, arguments, dry_run=dry_run, forced=forced)
        if isinstance(checked, Pass):
            ending, started = await self._send_held(call, tries, started)
        else:
            ending = checked
        ending = self._scrub(ending)
        ms = round((time.perf_counter() - started) * 1000, 1)
        attempts = max(tries[0], 1) if isinstance(checked, Pass) else 0
        result = ActionResult(
            action=action.name, call_id=call_id, latency_ms=ms, attempts=attempts, **vars(ending)
        )
        outcome, status, error = result.outcome.value, result.status, result.error
        logger.info(_LOG_LINE, action.name, outcome, status, ms, attempts, call_id, error)
        if isinstance(checked, Pass):
            await self.guard.finished(action, checked, result)
        shown = self._redactor.scrub(canonical_json(arguments))
        await self._record(result, conversation, event_key, call.caller, shown)
        return result

    async def _send_held(
        self, call: _Call, tries: list[int], started: float
    ) -> tuple[Ending, float]:
        """The call sent once it holds its slots: its ending, and when its own time began
        (when the slots were taken; `started` for a `busy` call, which waited)."""
        action = call.action
        try:
            async with self._slots.hold(action.name, limit=action.max_concurrency) as waited:
                self._queued(action.name, waited)
                started = time.perf_counter()
                with self._in_flight(action.name):
                    return await self._attempt(call, tries), started
        except Busy as busy:
            self._queued(action.name, busy.waited)
            return Ending(Outcome.BUSY, error=str(busy)), started

    def _scrub(self, ending: Ending) -> Ending:
        """The ending with every known secret value in its body and error replaced."""
        if not self._redactor.secrets:
            return ending
        scrub = self._redactor.scrub
        return dataclasses.replace(
            ending,
            data=scrub_json(ending.data, scrub),
            text=None if ending.text is None else scrub(ending.text),
            error=None if ending.error is None else scrub(ending.error),
        )

    def _queued(self, action: str, seconds: float) -> None:
        if self._observer is not None:
            self._observer.webhook_queued(action, seconds)

    @contextmanager
    def _in_flight(self, action: str) -> Iterator[None]:
        if self._observer is not None:
            self._observer.webhook_in_flight(action, 1)
        try:
            yield
        finally:
            if self._observer is not None:
                self._observer.webhook_in_flight(action, -1)

    async def _attempt(self, call: _Call, tries: list[int]) -> Ending:
        """The call under its one deadline, tried up to 1 + `action.retries` times;
        `tries[0]` counts the requests started."""
        action = call.action
        seconds = self.timeout_for(action)
        ending = Ending(Outcome.ERROR, error="the call was not sent")
        try:
            async with asyncio.timeout(seconds) as deadline:
                for attempt in range(action.retries + 1):
                    tries[0] += 1
                    ending, retry_after = await self._try_once(call)
                    if retry_after is None or attempt == action.retries:
                        return ending
                    wait = RETRY_BACKOFF * 2**attempt if retry_after < 0 else retry_after
                    when = deadline.when()
                    if when is not None and asyncio.get_running_loop().time() + wait >= when:
                        return ending  # the next try could not finish in time
                    await asyncio.sleep(wait)
        except TimeoutError:  # our deadline; the pool's own timeouts are off
            return Ending(Outcome.TIMEOUT, error=f"no complete response within {seconds:g} s")
        return ending

    async def _try_once(self, call: _Call) -> tuple[Ending, float | None]:
        """One try: its ending and, when it may be retried, the seconds the server asked us
        to wait (-1: it did not say)."""
        try:
            ending, retry_after = await self._exchange(call)
        except CallFailed as exc:
            return exc.ending, (-1.0 if exc.retryable else None)
        except Exception as exc:
            logger.warning("webhook %s failed unexpectedly", call.action.name, exc_info=True)
            return Ending(Outcome.ERROR, error=f"the call failed ({type(exc).__name__})"), None
        if ending.status in RETRY_STATUSES:
            return ending, retry_after if retry_after is not None else -1.0
        return ending, None

    async def _exchange(self, call: _Call) -> tuple[Ending, float | None]:
        """The request, with redirects followed: its ending and the `Retry-After` seconds."""
        prepared = prepare_request(call.action, call.arguments)
        body = b"" if prepared.json_body is None else _json_bytes(prepared.json_body)
        hop = Hop(method=prepared.method.value, url=httpx2.URL(prepared.url), body=body)
        for _ in range(self._max_redirects + 1):
            self._check_destination(hop)
            status, target, content, retry_after = await self._send(call, hop)
            if target is None:
                return interpret(status, content), retry_after
            hop = follow(hop, status, target)
        raise CallFailed(Outcome.ERROR, f"more than {self._max_redirects} redirects")

    def _check_destination(self, hop: Hop) -> None:
        url = hop.url
        if url.scheme != "https":
            what = "a redirect to" if hop.redirected else "the URL"
            message = f"refused {what} {url.scheme}://{url.host}: only https:// is allowed"
            raise CallFailed(Outcome.BLOCKED, message)
        policy = self._policy if hop.same_origin else self._outside_policy
        problem = policy.host_problem(url.host)
        if problem is not None:
            raise CallFailed(Outcome.BLOCKED, refusal(problem, redirected=hop.redirected))

    async def _send(
        self, call: _Call, hop: Hop
    ) -> tuple[int, httpx2.URL | None, bytes, float | None]:
        """One request: status, redirect target (if following one), the capped body and the
        seconds of a `Retry-After` header (None when absent or not a number of seconds)."""
        headers = self._headers(call, hop)
        pool = self._pool if hop.same_origin else self._outside_pool
        url = httpcore2.URL(
            scheme=hop.url.raw_scheme,
            host=hop.url.raw_host,
            port=hop.url.port,
            target=hop.url.raw_path,
        )
        try:
            async with pool.stream(
                hop.method, url, headers=headers.raw, content=hop.body or None
            ) as response:
                received = httpx2.Headers(response.headers)
                target = redirect_target(hop.url, response.status, received)
                content = b"" if target is not None else await self._body(response, received)
        except TRANSPORT_ERRORS as exc:
            raise failure(
                exc,
                host=hop.url.host,
                port=hop.url.port or 443,
                redirected=hop.redirected,
                extra_ca=self._extra_ca,
            ) from exc
        return response.status, target, content, retry_after(received)

    async def _body(self, response: httpcore2.Response, headers: httpx2.Headers) -> bytes:
        chunks = response.aiter_stream()
        return await read_capped(
            chunks, headers=headers, status=response.status, cap=self._max_body_bytes
        )

    def _headers(self, call: _Call, hop: Hop) -> httpx2.Headers:
        headers = httpx2.Headers({"Host": hop.url.netloc.decode("ascii")})
        headers["User-Agent"] = USER_AGENT
        headers["Accept"] = "application/json"
        headers["Accept-Encoding"] = "identity"  # the cap counts what we hold in memory
        if hop.same_origin:
            for name, value in call.action.header_values.items():
                if not HEADER_VALUE.fullmatch(secret := value.get_secret_value()):
                    raise CallFailed(Outcome.ERROR, f"header {name} has a value HTTP cannot carry")
                headers[name] = secret
        headers["Idempotency-Key"] = call.key
        if hop.body:
            headers["Content-Type"] = "application/json"
        if not hop.same_origin:
            return headers  # who is asking, and our signature, are for the action's own host
        headers["X-ActionBot-Caller"] = call.caller
        if self._signing_key is not None:
            signed = signed_headers(
                self._signing_key,
                method=hop.method,
                target=hop.url.raw_path.decode("ascii"),
                caller=call.caller,
                idempotency_key=call.key,
                body=hop.body,
            )
            headers.update(signed)
        return headers

    async def _record(
        self,
        result: ActionResult,
        conversation: str | None,
        event_key: str | None,
        caller: str,
        arguments: str,
    ) -> None:
        if self._recorder is None:
            return
        try:
            await self._recorder.record_call(
                result,
                conversation=conversation,
                event_key=event_key,
                caller=caller,
                arguments=arguments,
            )
        except Exception:
            logger.warning(
                "could not record call %s of %s", result.call_id, result.action, exc_info=True
            )


def _pool(
    policy: EgressPolicy, context: ssl.SSLContext, resolver: Resolver, connections: int
) -> httpcore2.AsyncConnectionPool:
    """A pool whose connections go only where `policy` allows (see bot/pinning.py)."""
    backend = PinnedBackend(policy=policy, resolver=resolver)
    return pinned_pool(ssl_context=context, backend=backend, connections=connections)


def _json_bytes(body: dict[str, Any]) -> bytes:
    """Serialised once, so the signed bytes are exactly the bytes sent."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")
