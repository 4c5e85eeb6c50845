"""A real `actionbot run` process against the fakes: the deployment the process tests share.

The bot runs as a subprocess against fakes in the test's event loop (Slack Web API, scripted
LLM, HTTPS webhook). Its HTTP port is read from its own startup log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from fakes.https_server import WebhookServer
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import FakeSlack, event_callback, message, signed_headers

ACTIONBOT = str(Path(sys.executable).parent / "actionbot")
REPO = Path(__file__).resolve().parent.parent
WAIT = 30.0
SECRETS = {
    "OPENAI_API_KEY": "sk-test-openai-key-4711",
    "SLACK_BOT_TOKEN": "xoxb-secret-bot-token-4711",
    "SLACK_SIGNING_SECRET": "signing-secret-4711",
    "ACTIONBOT_WEBHOOK_SECRET": "webhook-secret-4711",
    "INVENTORY_TOKEN": "inventory-secret-4711",
}
ARGS = {"part_name": "screen", "device_model": "iPhone 15 Pro"}
ACTIONS = """\
[[actions]]
name = "check_inventory"
display_name = "Check Inventory"
description = "Check if a specific part is in stock."
url = "{url}"
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
"""


@dataclass
class Bot:
    """A running `actionbot run` process and its log, read as it is written."""

    process: asyncio.subprocess.Process
    logs: list[str] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    reader: asyncio.Task[None] | None = None

    async def read_logs(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            async with self.changed:
                self.logs.append(raw.decode(errors="replace").rstrip("\n"))
                self.changed.notify_all()

    async def wait_for_log(self, pattern: str) -> re.Match[str]:
        """The first log line matching `pattern`, waiting for it to be written."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            return next((m for line in self.logs if (m := regex.search(line))), None)

        async with asyncio.timeout(WAIT), self.changed:
            await self.changed.wait_for(lambda: found() is not None or self.exited())
        match = found()
        assert match is not None, f"no log line matching {pattern!r}:\n" + "\n".join(self.logs)
        return match

    def exited(self) -> bool:
        return self.process.returncode is not None

    async def port(self) -> int:
        """The HTTP port, once the bot reports itself running (platforms connected)."""
        port = int((await self.wait_for_log(r"HTTP server listening on [^:]+:(\d+)")).group(1))
        await self.wait_for_log("ActionBot is running")
        return port

    async def finish(self) -> int:
        """Wait for the process to exit by itself and for its log to be fully read."""
        code = await asyncio.wait_for(self.process.wait(), WAIT)
        if self.reader is not None:
            await asyncio.wait_for(self.reader, WAIT)
        return code


@dataclass
class Deployment:
    """The fakes, a data directory and the environment a real deployment would have."""

    slack: FakeSlack
    llm: ScriptedLLM
    server: WebhookServer
    env: dict[str, str]
    cwd: Path

    @contextlib.asynccontextmanager
    async def running(self, **extra: str) -> AsyncIterator[Bot]:
        process = await asyncio.create_subprocess_exec(
            ACTIONBOT,
            "run",
            cwd=self.cwd,
            env=self.env | extra,
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

    async def cli(self, *args: str) -> tuple[int, str]:
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

    async def send_event(self, port: int, text: str, *, event_id: str, status: int = 200) -> None:
        """Post a signed Slack event and check the HTTP status the bot answers with."""
        body = json.dumps(
            event_callback(message(text, "U1", "D1", self.slack.next_ts()), event_id=event_id)
        )
        headers = signed_headers(SECRETS["SLACK_SIGNING_SECRET"], body)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
            ) as response,
        ):
            assert response.status == status


def base_env(cwd: Path, **values: str) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return (
        keep
        | {
            "ACTIONBOT_DB": str(cwd / "actionbot.db"),
            "ACTIONBOT_ACTIONS": str(cwd / "actions.toml"),
        }
        | values
    )


def answer_with_inventory(deployment: Deployment, final: str) -> None:
    deployment.llm.tool_calls(("check_inventory", ARGS))
    deployment.llm.reply(final)


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()
