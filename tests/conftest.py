"""Shared fixtures: a test CA, the HTTPS webhook fake, client TLS trust, actions, a real
SQLite store, the scripted LLM and a webhook client that trusts the test CA."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import openai
import pytest
import trustme
from deployment import ACTIONS, SECRETS, Deployment, base_env
from postgres_server import MISSING, PostgresServer, find_bindir
from pydantic import SecretStr

from bot.actions.models import Action, ActionSet, Method, Parameter, ParameterType
from bot.engine import Engine, EngineLimits
from bot.llm.client import OpenAIChatModel
from bot.outbound.egress import EgressPolicy
from bot.outbound.webhooks import WebhookClient, default_ssl_context
from bot.runtime.config import Settings
from bot.store import Store
from bot.store.sqlite import SQLiteStore
from fakes.https_server import WebhookServer
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import FakeSlack


def loopback_only() -> EgressPolicy:
    """Tests reach the local fakes through the operator's allow list, as a deployment would.
    (Built when used, not at import: mutation testing forbids calling the code under test
    while modules load.)"""
    return EgressPolicy(["127.0.0.1/32"])


LIMITS = EngineLimits(
    max_tool_rounds=5, history_messages=40, history_chars=24000, result_chars=4000
)


def make_engine(
    actions: list[Action],
    *,
    store: Store,
    webhooks: WebhookClient,
    model: OpenAIChatModel,
    limits: EngineLimits = LIMITS,
) -> Engine:
    """An engine over real parts, with a recognisable operator prompt."""
    return Engine(
        actions=ActionSet(actions, source="test"),
        store=store,
        webhooks=webhooks,
        model=model,
        limits=limits,
        system_prompt="You are the assistant of Test Shop.",
    )


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
    max_concurrency: int = 10,
    **fields: Any,
) -> Action:
    """An `Action` for `url`, built directly rather than from an actions file.

    A parameter given by name is a required string. `headers` are the file's templates;
    `header_values` the resolved secrets (the templates themselves when not given); any
    other field (`mode`, `rate`, `confirm`, …) as the file would give it.
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
        max_concurrency=max_concurrency,
        headers=templates,
        parameters=[_parameter(p) for p in parameters],
        header_values={key: SecretStr(value) for key, value in values.items()},
        **fields,
    )


def inventory_action(server: WebhookServer, **changes: Any) -> Action:
    """The seed's `check_inventory` (part_name, device_model) on `server`'s /inventory/check."""
    return build_action(
        server.url("/inventory/check"),
        name="check_inventory",
        parameters=["part_name", "device_model"],
        **changes,
    )


def _parameter(spec: str | Parameter) -> Parameter:
    if isinstance(spec, Parameter):
        return spec
    return Parameter(name=spec, type=ParameterType.STRING, description=spec, required=True)


@pytest.fixture
def make_action() -> Callable[..., Action]:
    """`build_action`: `make_action(url, method=..., parameters=[...], headers=..., ...)`."""
    return build_action


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite store in a temporary file."""
    async with await SQLiteStore.open(tmp_path / "actionbot.db") as opened:
        yield opened


@pytest.fixture
async def llm() -> AsyncIterator[ScriptedLLM]:
    """The scripted OpenAI-compatible server; the test fails on unused or unexpected steps."""
    async with ScriptedLLM() as server:
        yield server


@pytest.fixture
async def chat_model(llm: ScriptedLLM) -> AsyncIterator[OpenAIChatModel]:
    """The real `openai` SDK pointed at the scripted server, without retries."""
    client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test-key", max_retries=0)
    model = OpenAIChatModel(client, model="test-model")
    yield model
    await model.aclose()


@pytest.fixture
async def webhooks(
    store: Store, client_ssl_context: ssl.SSLContext
) -> AsyncIterator[WebhookClient]:
    """A webhook client that trusts the test CA, may reach loopback, and records to `store`."""
    async with WebhookClient(
        policy=loopback_only(), recorder=store, ssl_context=client_ssl_context
    ) as client:
        yield client


SECRET = "Bearer sekrit"
"""A header secret that rendering tests must never find in their output."""


def secret_action(**changes: Any) -> Action:
    """The seed's inventory action, with a secret header resolved from the environment."""
    fields: dict[str, Any] = {
        "name": "check_inventory",
        "display_name": "Check Inventory",
        "description": "Check if a part is in stock. Use when a customer asks about parts.",
        "url": "https://api.yourshop.com/inventory/check",
        "method": Method.GET,
        "timeout": 5,
        "headers": {"Authorization": "Bearer ${TOKEN}"},
        "header_values": {"Authorization": SecretStr(SECRET)},
        "parameters": [
            Parameter(
                name="part_name",
                type=ParameterType.STRING,
                description="The part, e.g. 'screen'",
                required=True,
            ),
            Parameter(name="express", type=ParameterType.BOOLEAN, description="Express only"),
        ],
    }
    return Action(**(fields | changes))


def make_settings(**fields: Any) -> Settings:
    """Settings given by field name, passed under their documented variable names (the only
    names Settings accepts), without reading any .env file."""
    names = {
        name: field.validation_alias.choices[0]  # type: ignore[union-attr]
        for name, field in Settings.model_fields.items()
    }
    return Settings(_env_file=None, **{names[key]: value for key, value in fields.items()})  # type: ignore[call-arg]


@pytest.fixture
async def deployment(
    tmp_path: Path, ca: trustme.CA, webhook_server: WebhookServer, llm: ScriptedLLM
) -> AsyncIterator[Deployment]:
    """A data directory, an actions file and the environment of a real deployment, against
    the fake Slack (HTTP mode), the scripted LLM and the webhook fake."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    (tmp_path / "actions.toml").write_text(
        ACTIONS.format(url=webhook_server.url("/inventory/check"))
    )
    async with FakeSlack() as slack:
        env = base_env(
            tmp_path,
            **SECRETS,
            OPENAI_BASE_URL=llm.base_url,
            ACTIONBOT_LLM_MAX_RETRIES="0",
            ACTIONBOT_EGRESS_ALLOW="127.0.0.1",
            ACTIONBOT_HTTP_PORT="0",
            SSL_CERT_FILE=str(ca_file),
            SLACK_API_URL=slack.api_url,
        )
        yield Deployment(slack, llm, webhook_server, env, tmp_path)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the whole run (see `postgres_server.py`); the
    PostgreSQL tests skip without the binaries, unless `ACTIONBOT_REQUIRE_POSTGRES=1`."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("ACTIONBOT_REQUIRE_POSTGRES") == "1":
            pytest.fail(MISSING.replace("skipping", "and ACTIONBOT_REQUIRE_POSTGRES=1"))
        pytest.skip(MISSING)
    server = PostgresServer(bindir)
    try:
        server.init()
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the test cluster."""
    return postgres_server.new_database()
