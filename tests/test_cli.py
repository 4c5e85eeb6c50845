"""The `actionbot` command with only environment configuration, against the HTTPS webhook
fake (trusted through SSL_CERT_FILE), the scripted LLM and a real SQLite file in a temporary
directory.

Most tests run the command in this process through typer's `CliRunner`, in a worker thread:
the command runs its own event loop (`asyncio.run`) while the fakes keep serving on the
test's. Each run gets the working directory and exactly the environment a subprocess would,
and leaves the environment (which `.env` loading edits), the working directory and the root
logger (which `configure_logging` replaces) as it found them. Where a real process is the
point (stdin a real pipe, the terminal check, the installed console script) the test runs
the installed `actionbot` executable instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import traceback
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from typer.testing import CliRunner

from actionbot.cli import app
from bot.runtime.logs import QUIET_LOGGERS
from bot.wording import LLM_DOWN
from fakes.https_server import WebhookServer, json_handler
from fakes.openai_server import ScriptedLLM

ACTIONBOT = Path(sys.executable).parent / "actionbot"
REPO = Path(__file__).resolve().parent.parent
CLI_TIMEOUT = 60.0
"""Seconds any one command may take; generous, since it only bounds a hung process."""

INVENTORY_PATH = "/inventory/check"
STOCK = {"in_stock": True, "quantity": 4, "price": "$129"}
QUESTION = "Do you have iPhone 15 Pro screens in stock?"
ANSWER = "Yes! We have 4 iPhone 15 Pro screens in stock at $129 each."
SEED_ARGUMENTS = {"part_name": "screen", "device_model": "iPhone 15 Pro"}

INVENTORY_TOML = """\
[[actions]]
name = "check_inventory"
display_name = "Check Inventory"
description = "Check if a specific part is in stock. Use when a customer asks about parts."
url = "{url}"
method = "GET"

[[actions.parameters]]
name = "part_name"
type = "string"
description = "The part the customer asks about, e.g. 'screen'"
required = true

[[actions.parameters]]
name = "device_model"
type = "string"
description = "The device the part is for, e.g. 'iPhone 15 Pro'"
required = true
"""


@dataclass(frozen=True)
class Finished:
    """How one `actionbot` run ended."""

    code: int
    stdout: str
    stderr: str


def base_env(**settings: str) -> dict[str, str]:
    """PATH and HOME from the developer, plus exactly these settings (never their OPENAI_*)."""
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    env.update(settings)
    return env


async def run_cli(*args: str, cwd: Path, env: Mapping[str, str], stdin: str = "") -> Finished:
    """Run `actionbot ARGS` in `cwd` (so no developer .env is read), feeding `stdin`."""
    process = await asyncio.create_subprocess_exec(
        str(ACTIONBOT),
        *args,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), CLI_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"actionbot {' '.join(args)} did not finish in {CLI_TIMEOUT}s"
        ) from None
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


@contextmanager
def process_state(cwd: Path, env: Mapping[str, str]) -> Iterator[None]:
    """Inside: `cwd` and exactly `env`, as a subprocess would have them. After: the working
    directory, the environment and the logging setup as they were before."""
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    saved_showwarning = warnings.showwarning
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()
        # configure_logging removed pytest's capture handlers; they go back, its own go.
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_quiet.items():
            logging.getLogger(name).setLevel(level)
        if warnings.showwarning is not saved_showwarning:
            logging.captureWarnings(False)  # restores the saved showwarning


async def invoke_cli(*args: str, cwd: Path, env: Mapping[str, str], stdin: str = "") -> Finished:
    """`run_cli` in this process: `actionbot ARGS` through CliRunner in a worker thread."""
    with process_state(cwd, env):
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(CliRunner().invoke, app, list(args), input=stdin), CLI_TIMEOUT
            )
        except TimeoutError:
            # A thread cannot be stopped: this only turns a hang into a named failure.
            raise AssertionError(
                f"actionbot {' '.join(args)} did not finish in {CLI_TIMEOUT}s"
            ) from None
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What the interpreter would print before exiting 1 in a real process.
        stderr += "".join(traceback.format_exception(result.exception))
    return Finished(result.exit_code, result.stdout, stderr)


@dataclass
class Deployment:
    """An operator's setup in a temporary directory: an actions file whose `check_inventory`
    calls the webhook fake, a database file, and the environment that wires it together."""

    cwd: Path
    env: dict[str, str]
    server: WebhookServer
    llm: ScriptedLLM

    async def run(self, *args: str, stdin: str = "") -> Finished:
        """`actionbot ARGS` in this process."""
        return await invoke_cli(*args, cwd=self.cwd, env=self.env, stdin=stdin)

    async def run_process(self, *args: str, stdin: str = "") -> Finished:
        """`actionbot ARGS` as the installed executable, in a process of its own."""
        return await run_cli(*args, cwd=self.cwd, env=self.env, stdin=stdin)


def write_ca(ca: trustme.CA, directory: Path) -> Path:
    path = directory / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def deployment(
    tmp_path: Path, ca: trustme.CA, webhook_server: WebhookServer, llm: ScriptedLLM
) -> Deployment:
    """A working deployment: inventory on the HTTPS fake, the scripted LLM, a fresh database."""
    webhook_server.route(INVENTORY_PATH, json_handler(STOCK))
    actions = tmp_path / "actions.toml"
    actions.write_text(INVENTORY_TOML.format(url=webhook_server.url(INVENTORY_PATH)))
    env = base_env(
        ACTIONBOT_ACTIONS=str(actions),
        ACTIONBOT_DB=str(tmp_path / "actionbot.db"),
        ACTIONBOT_EGRESS_ALLOW="127.0.0.1",
        SSL_CERT_FILE=str(write_ca(ca, tmp_path)),
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_API_KEY="test",
        ACTIONBOT_LLM_MAX_RETRIES="0",
    )
    return Deployment(tmp_path, env, webhook_server, llm)


def table_row(output: str, name: str) -> list[str]:
    """The whitespace-separated cells of the table line that starts with `name`."""
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row for {name!r} in:\n{output}")


def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- actions validate ---------------------------------------------------------------------


async def test_validate_the_example_file(tmp_path: Path) -> None:
    """The shipped example validates once its secret is set, and lists its three actions."""
    example = str(REPO / "actions.example.toml")
    finished = await invoke_cli(
        "actions", "validate", example, cwd=tmp_path, env=base_env(CRM_TOKEN="x")
    )
    assert finished.code == 0, finished.stderr
    for name in ("check_inventory", "warranty_status", "loyalty_status"):
        assert name in finished.stdout
    assert "4 action(s)" in finished.stdout


async def test_validate_names_a_missing_secret(tmp_path: Path) -> None:
    """Without CRM_TOKEN the example is invalid and the error names the variable."""
    example = str(REPO / "actions.example.toml")
    finished = await invoke_cli("actions", "validate", example, cwd=tmp_path, env=base_env())
    assert finished.code != 0
    assert "CRM_TOKEN" in finished.stderr
    assert "loyalty_status" in finished.stderr
    assert "Traceback" not in finished.stderr


BROKEN_TOML = """\
[[actions]]
name = "lookup_order"
display_name = "Lookup Order"
description = "Look up an order."
url = "http://api.example.com/orders"
colour = "red"
"""


async def test_validate_locates_an_unknown_key(tmp_path: Path) -> None:
    """A broken file fails with the file, the line, the action and the unknown key named."""
    (tmp_path / "broken.toml").write_text(BROKEN_TOML)
    finished = await invoke_cli("actions", "validate", "broken.toml", cwd=tmp_path, env=base_env())
    assert finished.code != 0
    assert "broken.toml:6" in finished.stderr
    assert "'lookup_order'" in finished.stderr
    assert "'colour'" in finished.stderr
    assert "unknown key" in finished.stderr
    assert "Traceback" not in finished.stderr


async def test_validate_reports_every_problem_together(tmp_path: Path) -> None:
    """An http:// URL and an unknown key in one action are both reported, each with its line."""
    (tmp_path / "broken.toml").write_text(BROKEN_TOML)
    finished = await invoke_cli("actions", "validate", "broken.toml", cwd=tmp_path, env=base_env())
    assert finished.code != 0
    assert "broken.toml:6" in finished.stderr
    assert "'colour'" in finished.stderr
    assert "broken.toml:5" in finished.stderr
    assert "https://" in finished.stderr


# --- chat ---------------------------------------------------------------------------------


async def test_seed_example_end_to_end(deployment: Deployment) -> None:
    """The product page's example: the question reaches the webhook through the LLM's tool
    call, the answer is printed, and the call shows up in `actions stats`."""
    llm, server = deployment.llm, deployment.server
    llm.tool_calls(("check_inventory", SEED_ARGUMENTS))
    llm.reply(ANSWER)
    finished = await deployment.run("chat", stdin=QUESTION + "\n")
    assert finished.code == 0, finished.stderr
    assert finished.stdout.splitlines() == [ANSWER]
    assert len(server.requests) == 1
    assert server.requests[0].path == INVENTORY_PATH
    assert server.requests[0].query == SEED_ARGUMENTS

    assert len(llm.requests) == 2
    offered = [tool["function"]["name"] for tool in llm.requests[0]["tools"]]
    assert offered == ["check_inventory"]
    assert llm.requests[0]["messages"][-1] == {"role": "user", "content": QUESTION}
    tool_messages = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1
    content = tool_messages[0]["content"]
    assert "in_stock" in content
    result = json.loads(content)
    assert result["ok"] is True
    assert result["status"] == 200
    assert result["data"] == STOCK

    stats = await deployment.run("actions", "stats")
    assert stats.code == 0, stats.stderr
    assert table_row(stats.stdout, "check_inventory")[1:4] == ["1", "1", "0"]


async def test_piped_chat_answers_each_line_in_order(deployment: Deployment) -> None:
    """Piped input gets one answer per line, in order; `/actions` lines never reach the LLM."""
    llm = deployment.llm
    llm.reply("First answer.")
    llm.reply("Second answer.")
    stdin = "Hello there\n\nWhat are your opening hours?\n/actions list\n"
    # The installed executable with stdin a real pipe, end to end.
    finished = await deployment.run_process("chat", stdin=stdin)
    assert finished.code == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[:2] == ["First answer.", "Second answer."]
    assert lines[2].split()[0] == "NAME"
    assert table_row(finished.stdout, "check_inventory")[-2:] == ["active", "0"]
    assert len(llm.requests) == 2
    assert llm.requests[1]["messages"][-1]["content"] == "What are your opening hours?"
    history = [m["content"] for m in llm.requests[1]["messages"][1:-1]]
    assert history == ["Hello there", "First answer."]


async def test_chat_without_a_model_says_what_to_set(tmp_path: Path) -> None:
    """With no LLM configured, chat exits non-zero and explains OpenAI and Ollama settings."""
    finished = await invoke_cli("chat", cwd=tmp_path, env=base_env(), stdin="Hello\n")
    assert finished.code != 0
    assert "OPENAI_API_KEY" in finished.stderr
    assert "OPENAI_BASE_URL" in finished.stderr
    assert "Ollama" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stdout == ""


async def test_chat_apologises_when_the_llm_is_down(tmp_path: Path) -> None:
    """An unreachable LLM gets the customer a friendly apology per line, and chat keeps going."""
    actions = tmp_path / "actions.toml"
    actions.write_text(INVENTORY_TOML.format(url="https://api.example.com/inventory/check"))
    env = base_env(
        ACTIONBOT_ACTIONS=str(actions),
        ACTIONBOT_DB=str(tmp_path / "actionbot.db"),
        OPENAI_BASE_URL=f"http://127.0.0.1:{closed_port()}/v1",
        OPENAI_API_KEY="test",
        ACTIONBOT_LLM_MAX_RETRIES="0",
    )
    finished = await invoke_cli("chat", cwd=tmp_path, env=env, stdin="Hello?\nAnyone there?\n")
    assert finished.code == 0, finished.stderr
    assert finished.stdout.splitlines() == [LLM_DOWN, LLM_DOWN]
    assert "Traceback" not in finished.stdout + finished.stderr


# --- actions test / stats -----------------------------------------------------------------


async def test_actions_test_calls_the_endpoint(deployment: Deployment) -> None:
    """`actions test` calls the endpoint once, prints outcome, status and body, and is counted."""
    finished = await deployment.run(
        "actions", "test", "check_inventory", "part_name=screen", "device_model=iPhone 15 Pro"
    )
    assert finished.code == 0, finished.stderr
    assert "success" in finished.stdout
    assert "HTTP 200" in finished.stdout
    assert '"in_stock":true' in finished.stdout
    assert '"price":"$129"' in finished.stdout
    assert [r.query for r in deployment.server.requests] == [SEED_ARGUMENTS]

    stats = await deployment.run("actions", "stats", "check_inventory")
    assert stats.code == 0, stats.stderr
    assert table_row(stats.stdout, "check_inventory")[1:4] == ["1", "1", "0"]


async def test_actions_test_reports_a_failing_endpoint(deployment: Deployment) -> None:
    """A 500 from the endpoint makes `actions test` exit 1 and print `http_error`."""
    deployment.server.route(INVENTORY_PATH, json_handler({"error": "down"}, status=500))
    finished = await deployment.run(
        "actions", "test", "check_inventory", "part_name=screen", "device_model=iPhone 15 Pro"
    )
    assert finished.code == 1
    assert "http_error" in finished.stdout
    assert "HTTP 500" in finished.stdout
    stats = await deployment.run("actions", "stats", "check_inventory")
    assert "http_error 1" in stats.stdout


async def test_actions_test_refuses_a_missing_argument(deployment: Deployment) -> None:
    """Without a required argument `actions test` exits 1 naming it and calls nothing."""
    finished = await deployment.run("actions", "test", "check_inventory", "part_name=screen")
    assert finished.code == 1
    assert "device_model" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert deployment.server.requests == []


async def test_console_and_resume_from_the_shell(deployment: Deployment) -> None:
    """`actions console` prints the 24-hour view with the call just made; `actions resume`
    of a conversation nobody handed over says so and exits 0; without a name it is a usage
    error."""
    await deployment.run(
        "actions", "test", "check_inventory", "part_name=screen", "device_model=iPhone 15 Pro"
    )
    console = await deployment.run("actions", "console")
    assert console.code == 0, console.stderr
    row = table_row(console.stdout, "check_inventory")
    assert row[-5:-2] == ["active", "1", "100%"]
    assert row[-1] == "ms"
    resumed = await deployment.run("actions", "resume", "slack:C1")
    assert resumed.code == 0, resumed.stderr
    assert "nothing to resume" in resumed.stdout
    missing = await deployment.run("actions", "resume")
    assert missing.code == 2


# --- actions enable / disable / show ------------------------------------------------------


async def test_disable_show_enable_round_trip(deployment: Deployment) -> None:
    """`disable` persists across commands, `show` says who changed it, `enable` restores it."""
    disabled = await deployment.run("actions", "disable", "check_inventory")
    assert disabled.code == 0, disabled.stderr
    assert "disabled" in disabled.stdout

    listing = await deployment.run("actions", "list")
    assert table_row(listing.stdout, "check_inventory")[-2:] == ["inactive", "0"]

    shown = await deployment.run("actions", "show", "check_inventory")
    assert shown.code == 0, shown.stderr
    state = next(line for line in shown.stdout.splitlines() if "state:" in line)
    assert "inactive (set by cli:" in state

    enabled = await deployment.run("actions", "enable", "check_inventory")
    assert enabled.code == 0, enabled.stderr
    listing = await deployment.run("actions", "list")
    assert table_row(listing.stdout, "check_inventory")[-2:] == ["active", "0"]


async def test_show_an_unknown_action(deployment: Deployment) -> None:
    """`show` of a name that does not exist exits 1 and names the actions that do."""
    finished = await deployment.run("actions", "show", "nope")
    assert finished.code == 1
    assert "'nope'" in finished.stderr
    assert "check_inventory" in finished.stderr
    assert "Traceback" not in finished.stderr


# --- run and settings ---------------------------------------------------------------------


async def test_run_without_a_terminal_or_platform(tmp_path: Path) -> None:
    """`run` with piped stdin and no platform tokens exits 2 and says what to set."""
    # A real process, so the terminal check looks at a real pipe.
    finished = await run_cli("run", cwd=tmp_path, env=base_env(OPENAI_API_KEY="test"))
    assert finished.code == 2
    for hint in ("SLACK_BOT_TOKEN", "DISCORD_TOKEN", "actionbot chat"):
        assert hint in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize("command", [("actions", "list"), ("chat",)])
async def test_invalid_settings_are_named(tmp_path: Path, command: tuple[str, ...]) -> None:
    """A malformed setting exits 2 with a readable message naming it, not a traceback."""
    env = base_env(ACTIONBOT_HTTP_PORT="abc", OPENAI_API_KEY="test")
    finished = await invoke_cli(*command, cwd=tmp_path, env=env)
    assert finished.code == 2
    assert "ACTIONBOT_HTTP_PORT" in finished.stderr
    assert "Traceback" not in finished.stderr


async def test_dotenv_supplies_action_secrets(tmp_path: Path) -> None:
    """A ${VAR} secret set only in .env is found, and the environment still wins over .env."""
    example = (REPO / "actions.example.toml").read_text()
    (tmp_path / "actions.toml").write_text(example)
    (tmp_path / ".env").write_text("CRM_TOKEN=from-dotenv\nACTIONBOT_ACTIONS=missing.toml\n")
    env = base_env(ACTIONBOT_ACTIONS="actions.toml")

    finished = await invoke_cli("actions", "validate", cwd=tmp_path, env=env)

    assert finished.code == 0, finished.stderr
    assert "loyalty_status" in finished.stdout


# --- the in-process harness ---------------------------------------------------------------


async def test_in_process_runs_leave_no_trace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An in-process run that loads a .env and sets up logging leaves the environment, the
    working directory, the root logger and pytest's log capture as it found them."""
    (tmp_path / ".env").write_text("CRM_TOKEN=from-dotenv\n")
    environ, cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    showwarning = warnings.showwarning

    example = str(REPO / "actions.example.toml")
    finished = await invoke_cli("actions", "validate", example, cwd=tmp_path, env=base_env())

    assert finished.code == 0, finished.stderr  # CRM_TOKEN came from the .env
    assert dict(os.environ) == environ
    assert os.getcwd() == cwd
    assert (root.handlers, root.level) == (handlers, level)
    assert warnings.showwarning is showwarning
    logging.getLogger(__name__).warning("after the run")
    assert "after the run" in caplog.messages
