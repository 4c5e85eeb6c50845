"""Chat Completions posts on the SDK client's own connection pool, without its request objects.

For each request the `openai` SDK builds and copies an options model, merges and validates
headers, parses and joins URLs and wraps the answer: together more CPU than the rest of a
turn. `OpenAIChatModel` builds its bodies itself and reads the answers as JSON, so on the hot
path it only needs the HTTP exchange. `DirectPost` does that exchange on the client's own
`httpx2` client (its pool, TLS trust, proxies and limits) with the client's own headers
(less the SDK's `X-Stainless-*` telemetry), key, timeout and `max_retries`, and keeps the
SDK's meaning:

- connection errors, timeouts, 408, 409, 429 and 5xx are retried (an `x-should-retry`
  header decides when present), after `retry-after-ms`/`Retry-After` when the server gives
  one of at most two minutes (a longer one is not retried), else 0.5 s doubling up to 8 s,
  less up to 25 % jitter;
- what is not retried raises the SDK's errors: `APITimeoutError`, `APIConnectionError`,
  and for a status the same `APIStatusError` subclass, message and `body` the SDK gives.

Only a plain `openai.AsyncOpenAI` with a static API key qualifies (`DirectPost.over`);
clients with a key provider, custom auth, a workload identity, a provider runtime or a
subclass (Azure) keep the SDK's whole path.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import ssl
import time
from collections.abc import Mapping
from typing import Any

import anyio
import httpx2
import openai

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 120.0
INFINITY = frozenset({"inf", "+inf", "infinity", "+infinity"})
RETRIED_STATUSES = frozenset({408, 409, 429})
STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


class DirectPost:
    """`POST {base_url}/chat/completions` for one SDK client (see the module)."""

    def __init__(self, client: openai.AsyncOpenAI, http: httpx2.AsyncClient) -> None:
        self._http = http
        url = httpx2.URL(str(client.base_url).rstrip("/") + "/chat/completions")
        if client.default_query:
            url = url.copy_merge_params({k: str(v) for k, v in client.default_query.items()})
        self._url = url
        # The SDK's own telemetry (`X-Stainless-*`: its version, the OS, the runtime, the
        # retry count) is left out: a dozen headers on every request that no server acts on.
        telemetry = {*client.platform_headers(), "X-Stainless-Async"}
        headers = {
            name: value
            for name, value in client.default_headers.items()
            if isinstance(value, str) and name not in telemetry
        }
        headers.update(client.auth_headers)
        self._headers = headers
        timeout = client.timeout
        self._timeout: Any = (
            timeout
            if isinstance(timeout, httpx2.Timeout | int | float)
            else httpx2.USE_CLIENT_DEFAULT
        )
        self._retries = client.max_retries

    @classmethod
    def over(cls, client: object) -> DirectPost | None:
        """The direct path for `client`, or None where the SDK's whole path must run."""
        if type(client) is not openai.AsyncOpenAI:
            return None
        http = getattr(client, "_client", None)  # the pool the SDK itself sends on
        plain = (
            isinstance(client.api_key, str)
            and bool(client.api_key)
            and client.custom_auth is None
            and client.workload_identity is None
            and isinstance(http, httpx2.AsyncClient)
        )
        return cls(client, http) if plain and isinstance(http, httpx2.AsyncClient) else None

    async def post(self, content: bytes) -> bytes:
        """The answer's body; the SDK's errors when it fails (after its retries)."""
        for retried in range(self._retries + 1):
            last = retried == self._retries
            request = self._http.build_request(
                "POST", self._url, content=content, headers=self._headers, timeout=self._timeout
            )
            try:
                response = await self._http.send(request)
            except httpx2.TimeoutException as exc:
                if last:
                    raise openai.APITimeoutError(request=request) from exc
                await asyncio.sleep(backoff(retried))
                continue
            except (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream) as exc:
                # (TLS failures anyio does not map to an httpx2 error, as the SDK counts them)
                if last:
                    raise openai.APIConnectionError(request=request) from exc
                await asyncio.sleep(backoff(retried))
                continue
            if response.is_success:
                return response.content
            if last or not should_retry(response):
                raise status_error(response)
            await asyncio.sleep(retry_delay(retried, response.headers))
        raise AssertionError("unreachable: the last attempt returns or raises")


def backoff(retried: int) -> float:
    """0.5 s doubling per retry taken, at most 8 s, less up to 25 % jitter."""
    delay = min(INITIAL_RETRY_DELAY * 2.0 ** min(retried, 1000), MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not security


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait (`retry-after-ms`, then `Retry-After` as seconds or
    an HTTP date); None when it says nothing readable."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value)
        except ValueError:
            continue
        if delay == math.inf and value.strip().lower() not in INFINITY:
            return MAX_RETRY_AFTER + 1  # an overflowing number: far too long, not "forever"
        return delay / divisor
    date = headers.get("retry-after")
    parsed = email.utils.parsedate_tz(date) if date else None
    return None if parsed is None else email.utils.mktime_tz(parsed) - time.time()


def retry_delay(retried: int, headers: Mapping[str, str]) -> float:
    wait = retry_after(headers)
    if wait is not None and math.isfinite(wait) and 0 < wait <= MAX_RETRY_AFTER:
        return wait
    return backoff(retried)


def should_retry(response: httpx2.Response) -> bool:
    wait = retry_after(response.headers)
    if wait is not None and math.isfinite(wait) and wait > MAX_RETRY_AFTER:
        return False
    told = response.headers.get("x-should-retry")
    if told in ("true", "false"):
        return told == "true"
    return response.status_code in RETRIED_STATUSES or response.status_code >= 500


def status_error(response: httpx2.Response) -> openai.APIStatusError:
    """The error the SDK raises for this answer: its class by status, `body` the parsed
    JSON's `error` object (else the JSON, else the text), the message naming the status and
    the server's message."""
    message = f"Error code: {response.status_code}"
    body: object = response.text.strip()
    try:
        body = json.loads(str(body))
    except ValueError:
        pass
    else:
        error = body.get("error", body) if isinstance(body, dict) else None
        detail = error.get("message") if isinstance(error, dict) else None
        if isinstance(detail, str) and detail:
            message += f" - {detail}"
    data = body.get("error", body) if isinstance(body, dict) else body
    kind = STATUS_ERRORS.get(response.status_code)
    if kind is None:
        kind = openai.InternalServerError if response.status_code >= 500 else openai.APIStatusError
    return kind(message, response=response, body=data)
