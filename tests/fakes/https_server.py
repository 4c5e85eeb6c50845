"""An HTTPS webhook endpoint on loopback, for tests of outbound calls.

The certificate is issued by a test CA (trustme) for `localhost`, `127.0.0.1`, `::1` and
`*.webhook.test` (a reserved name only an injected resolver can resolve). Every request is
recorded; a path answers with the handler registered for it, or else echoes the request::

    async with WebhookServer(ca) as server:
        server.route("/stock", json_handler({"in_stock": True}))
        ...  # call server.url("/stock?part=screen")
        assert server.requests[0].query == {"part": "screen"}

`hang` and `drip` register misbehaving endpoints; both let go when the server stops, so a
test never leaves a handler running.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import trustme
from aiohttp import web
from multidict import CIMultiDict

from fakes.loopback import LoopbackServer

TEST_DOMAIN = "webhook.test"
CERT_IDENTITIES = ("localhost", "127.0.0.1", "::1", f"*.{TEST_DOMAIN}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived: the raw path and query are kept percent-encoded."""

    method: str
    path: str
    raw_query: str
    headers: CIMultiDict[str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        """The query string decoded, one value per name."""
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


def json_handler(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Handler:
    """A handler that always answers `payload` as JSON."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.json_response(payload, status=status, headers=headers)

    return handle


def body_handler(
    body: bytes, *, status: int = 200, content_type: str = "application/json"
) -> Handler:
    """A handler that always answers these exact bytes (with a Content-Length)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=status, content_type=content_type)

    return handle


def redirect_handler(location: str, *, status: int = 302) -> Handler:
    """A handler that redirects to `location` (absolute or relative)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handle


async def echo(request: web.Request) -> web.StreamResponse:
    """The default handler: the request's method, raw path, decoded query and JSON body."""
    body = await request.read()
    payload = {
        "method": request.method,
        "path": request.raw_path.partition("?")[0],
        "query": dict(request.query),
        "json": json.loads(body) if body else None,
    }
    return web.json_response(payload)


class WebhookServer(LoopbackServer):
    """An HTTPS server on 127.0.0.1 (port 0) that records requests and answers by path."""

    def __init__(self, ca: trustme.CA) -> None:
        super().__init__()
        self.requests: list[RecordedRequest] = []
        self.stopping = asyncio.Event()
        self._received = asyncio.Condition()
        self._ca = ca
        self._routes: dict[str, Handler] = {}

    def url(self, path: str = "/", *, host: str = "127.0.0.1") -> str:
        """`https://<host>:<port><path>`; `host` may be any name the certificate covers."""
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> None:
        """Answer requests for `path` (exact raw path, any method) with `handler`."""
        self._routes[path] = handler

    # A bounded wait is the point of this helper, so the timeout is part of its signature.
    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until at least `n` requests have arrived."""
        try:
            async with asyncio.timeout(timeout), self._received:
                await self._received.wait_for(lambda: len(self.requests) >= n)
        except TimeoutError:
            got = len(self.requests)
            raise AssertionError(f"expected {n} requests within {timeout}s, got {got}") from None

    def hang(self, path: str) -> None:
        """`path` never sends response headers (until the server stops)."""

        async def handle(request: web.Request) -> web.StreamResponse:
            await self.stopping.wait()
            return web.Response(status=503)

        self.route(path, handle)

    def drip(self, path: str, *, chunk: bytes = b" ", interval: float = 0.2) -> None:
        """`path` sends 200 headers at once, then `chunk` every `interval` s, chunked, forever."""

        async def handle(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            try:
                await response.prepare(request)
                while not self.stopping.is_set():
                    await response.write(chunk)
                    await asyncio.sleep(interval)
            except ConnectionError:
                pass  # the client went away, as the tests expect it to
            return response

        self.route(path, handle)

    def build_app(self) -> web.Application:
        """TLS on 127.0.0.1: every path is dispatched to its route or the echo."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def release(self) -> None:
        """Let hanging and dripping handlers go."""
        self.stopping.set()

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*CERT_IDENTITIES).configure_cert(context)
        return context

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path, _, raw_query = request.raw_path.partition("?")
        body = await request.read()
        headers = CIMultiDict(request.headers)
        async with self._received:
            self.requests.append(RecordedRequest(request.method, path, raw_query, headers, body))
            self._received.notify_all()
        return await self._routes.get(path, echo)(request)
