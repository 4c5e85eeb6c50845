"""A deployment for the MCP tests: an actions file on the HTTPS webhook fake, a database,
and the environment of a real `actionbot mcp` process, reached through the `mcp` SDK's own
client (over the process's stdio, or over streamable HTTP from `actionbot mcp --http`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx2
import mcp_types as types
import trustme
from deployment import Bot
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.session import ClientRequestContext, ElicitationFnT, IncomingMessage
from mcp.client.streamable_http import streamable_http_client

from fakes.https_server import WebhookServer, json_handler

ACTIONBOT = str(Path(sys.executable).parent / "actionbot")
WAIT = 30.0
"""Seconds any one wait may take; generous, since it only bounds a hang."""
TOKEN = "mcp-bearer-token-4711"
SIGNING_SECRET = "webhook-secret-4711"
INVENTORY_SECRET = "inventory-secret-4711"
STOCK = {"in_stock": True, "quantity": 4, "price": "$129"}
ARGUMENTS = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
RETURN = {"order_id": "A-1001"}

ACTIONS = """\
[[actions]]
name = "check_inventory"
display_name = "Check Inventory"
description = "Check if a specific part is in stock."
url = "{base}/inventory/check"
headers = {{ Authorization = "Bearer ${{INVENTORY_TOKEN}}" }}

[[actions.parameters]]
name = "part_name"
type = "string"
description = "The part"
required = true

[[actions.parameters]]
name = "device_model"
type = "string"
description = "The device"
required = true

[[actions]]
name = "create_return"
display_name = "Create Return"
description = "Open a return for an order."
url = "{base}/returns"
method = "POST"
confirm = true

[[actions.parameters]]
name = "order_id"
type = "string"
description = "The order"
required = true

[[actions.parameters]]
name = "via"
from = "platform"
description = "Where the return was asked for"

[[actions]]
name = "my_orders"
display_name = "My Orders"
description = "The asking customer's orders."
url = "{base}/orders"

[[actions.parameters]]
name = "customer_id"
from = "user.id"
description = "The chat user"

[[actions]]
name = "refund_anything"
display_name = "Refund Anything"
description = "Refund any order (staff only)."
url = "{base}/refunds"
audience = "admins"
"""


@dataclass
class Elicitations:
    """An elicitation callback giving the user's answers in order (`accept`, `decline`,
    `cancel`), and keeping the questions asked; asking more often fails the test."""

    answers: list[Literal["accept", "decline", "cancel"]]
    questions: list[str] = field(default_factory=list)

    async def __call__(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        assert len(self.questions) < len(self.answers), f"unexpected question: {params.message}"
        answer = self.answers[len(self.questions)]
        self.questions.append(params.message)
        return types.ElicitResult(action=answer, content={} if answer == "accept" else None)


@dataclass
class Notifications:
    """A message handler keeping the server's notifications, to wait on."""

    seen: list[types.ServerNotification] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ServerNotification):
            async with self.arrived:
                self.seen.append(message)
                self.arrived.notify_all()

    async def wait_for(self, kind: type[Any]) -> None:
        """Until a notification of `kind` has arrived (bounded by `WAIT`)."""
        async with asyncio.timeout(WAIT), self.arrived:
            await self.arrived.wait_for(lambda: any(isinstance(n, kind) for n in self.seen))


@dataclass
class McpDeployment:
    """The actions file, the database and the environment; the fake behind them."""

    cwd: Path
    env: dict[str, str]
    server: WebhookServer

    @contextlib.asynccontextmanager
    async def stdio(
        self,
        *,
        mode: str = "auto",
        elicitation: ElicitationFnT | None = None,
        notifications: Notifications | None = None,
    ) -> AsyncIterator[Client]:
        """The SDK's client on a fresh `actionbot mcp` process (its log in `mcp.log`)."""
        parameters = StdioServerParameters(
            command=ACTIONBOT, args=["mcp"], env=self.env, cwd=self.cwd
        )
        with (self.cwd / "mcp.log").open("a") as errlog:
            client = Client(
                stdio_client(parameters, errlog=errlog),
                mode=mode,
                elicitation_callback=elicitation,
                message_handler=notifications,
                read_timeout_seconds=WAIT,
            )
            async with client:
                yield client

    @contextlib.asynccontextmanager
    async def http_process(self, **extra: str) -> AsyncIterator[Bot]:
        """A running `actionbot mcp --http` (port 0), its log read as it is written."""
        process = await asyncio.create_subprocess_exec(
            ACTIONBOT,
            "mcp",
            "--http",
            cwd=self.cwd,
            env=self.env | {"ACTIONBOT_MCP_PORT": "0", "ACTIONBOT_MCP_TOKEN": TOKEN} | extra,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        bot = Bot(process)
        bot.reader = asyncio.create_task(bot.read_logs())
        try:
            yield bot
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await asyncio.gather(bot.reader, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def http(
        self, url: str, *, token: str = TOKEN, elicitation: ElicitationFnT | None = None
    ) -> AsyncIterator[Client]:
        """The SDK's client over streamable HTTP, sending `token` as its bearer token."""
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=WAIT) as http:
            transport = streamable_http_client(url, http_client=http)
            client = Client(transport, elicitation_callback=elicitation, read_timeout_seconds=WAIT)
            async with client:
                yield client

    async def cli(self, *args: str) -> tuple[int, str]:
        """`actionbot ARGS` as its own process: exit code and output (stdout + stderr)."""
        process = await asyncio.create_subprocess_exec(
            ACTIONBOT,
            *args,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), WAIT)
        return process.returncode or 0, out.decode()


def mcp_deployment(tmp_path: Path, ca: trustme.CA, server: WebhookServer) -> McpDeployment:
    """The actions above on `server` (inventory answers `STOCK`), trusted through
    `SSL_CERT_FILE` and reached through the operator's loopback allowance."""
    server.route("/inventory/check", json_handler(STOCK))
    server.route("/returns", json_handler({"return_id": "R-1"}))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    (tmp_path / "actions.toml").write_text(ACTIONS.format(base=server.url("")))
    keep = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env = keep | {
        "ACTIONBOT_ACTIONS": str(tmp_path / "actions.toml"),
        "ACTIONBOT_DB": str(tmp_path / "actionbot.db"),
        "ACTIONBOT_EGRESS_ALLOW": "127.0.0.1",
        "ACTIONBOT_WEBHOOK_SECRET": SIGNING_SECRET,
        "INVENTORY_TOKEN": INVENTORY_SECRET,
        "SSL_CERT_FILE": str(ca_file),
    }
    return McpDeployment(tmp_path, env, server)


def stats_row(output: str, name: str) -> list[str]:
    """The cells of `actions stats`'s row for `name`."""
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row for {name!r} in:\n{output}")
