"""Shared fixtures: a test CA, the HTTPS webhook fake, client TLS trust and actions."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

import pytest
import trustme
from fakes.https_server import WebhookServer
from pydantic import SecretStr

from bot.actions import Action, Method, Parameter, ParameterType
from bot.webhooks import default_ssl_context


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A certificate authority for this test run only."""
    return trustme.CA()


@pytest.fixture
async def webhook_server(ca: trustme.CA) -> AsyncIterator[WebhookServer]:
    """A started HTTPS webhook fake, stopped after the test."""
    async with WebhookServer(ca) as server:
        yield server


@pytest.fixture
def client_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    """ActionBot's usual client context, plus trust in the test CA (verification stays on)."""
    context = default_ssl_context()
    ca.configure_trust(context)
    return context


def build_action(
    url: str,
    *,
    name: str = "test_action",
    method: str = "GET",
    parameters: Iterable[str | Parameter] = (),
    headers: Mapping[str, str] | None = None,
    header_values: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Action:
    """An `Action` for `url`, built directly rather than from an actions file.

    A parameter given by name is a required string. `headers` are the file's templates;
    `header_values` the resolved secrets (the templates themselves when not given).
    """
    templates = dict(headers or {})
    values = templates if header_values is None else dict(header_values)
    return Action(
        name=name,
        display_name=name.replace("_", " ").title(),
        description=f"Test action calling {url}.",
        url=url,
        method=Method(method),
        timeout=timeout,
        headers=templates,
        parameters=[_parameter(p) for p in parameters],
        header_values={key: SecretStr(value) for key, value in values.items()},
    )


def _parameter(spec: str | Parameter) -> Parameter:
    if isinstance(spec, Parameter):
        return spec
    return Parameter(name=spec, type=ParameterType.STRING, description=spec, required=True)


@pytest.fixture
def make_action() -> Callable[..., Action]:
    """`build_action`: `make_action(url, method=..., parameters=[...], headers=..., ...)`."""
    return build_action
