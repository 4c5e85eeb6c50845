"""Starting and stopping `actionbot run` when something is wrong: one line per problem and
exit code 2 at start, never a traceback or an endless retry; SIGTERM always ends it."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator

import pytest
from deployment import WAIT, Bot, Deployment, get

APP_TOKEN = "xapp-1-secret-app-token-4711"


def socket_mode(deployment: Deployment) -> None:
    """Switch the deployment from HTTP mode to Socket Mode."""
    deployment.env.pop("SLACK_SIGNING_SECRET")
    deployment.env["SLACK_APP_TOKEN"] = APP_TOKEN


async def exit_and_output(bot: Bot) -> tuple[int, str]:
    code = await bot.finish()
    return code, "\n".join(bot.logs)


def assert_one_clear_failure(code: int, output: str, *expected: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output, output
    for text in expected:
        assert text in output, output


@pytest.fixture
async def silent_listener() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers (a hung service)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_rejected_app_token_stops_the_start_naming_it(deployment: Deployment) -> None:
    """Slack answers `invalid_auth` to the app token: exit 2 at once with a line naming
    SLACK_APP_TOKEN, instead of retrying forever."""
    socket_mode(deployment)
    deployment.slack.fail_next("apps.connections.open", "invalid_auth", times=100)
    async with deployment.running() as bot:
        code, output = await exit_and_output(bot)
    assert_one_clear_failure(code, output, "SLACK_APP_TOKEN", "invalid_auth")
    assert APP_TOKEN not in output


async def test_port_in_use_is_one_line(deployment: Deployment) -> None:
    """The HTTP port is taken: one line saying so and which setting to change."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        deployment.env["ACTIONBOT_HTTP_PORT"] = str(port)
        async with deployment.running() as bot:
            code, output = await exit_and_output(bot)
    assert_one_clear_failure(code, output, f"port {port} is in use", "ACTIONBOT_HTTP_PORT")


async def test_unreachable_slack_is_one_line(deployment: Deployment) -> None:
    """Slack's API cannot be reached at start: one line naming Slack and the URL."""
    deployment.env["SLACK_API_URL"] = "http://slack-api.invalid/api/"
    async with deployment.running() as bot:
        code, output = await exit_and_output(bot)
    assert_one_clear_failure(code, output, "cannot reach Slack", "slack-api.invalid")


async def test_sigterm_during_a_hung_start_stops_promptly(
    deployment: Deployment, silent_listener: int
) -> None:
    """Slack's API accepts the connection and never answers: SIGTERM still ends the process
    at once (exit 0, a stop requested by the operator), not after the client's timeout."""
    deployment.env["SLACK_API_URL"] = f"http://127.0.0.1:{silent_listener}/api/"
    async with deployment.running() as bot:
        await bot.wait_for_log("HTTP server listening")
        bot.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(bot.finish(), 10)
    assert code == 0
    assert "Traceback" not in "\n".join(bot.logs)


async def test_socket_mode_connection_lost_after_start(deployment: Deployment) -> None:
    """Slack goes away after a good start: the bot keeps retrying, /readyz turns 503, the
    loss is logged, and SIGTERM ends the process within the grace period."""
    socket_mode(deployment)
    deployment.env["ACTIONBOT_SHUTDOWN_GRACE"] = "2"
    async with deployment.running() as bot:
        port = await bot.port()
        assert (await get(port, "/readyz"))[0] == 200
        await deployment.slack.stop()
        await bot.wait_for_log("Slack connection lost")
        status, body = await get(port, "/readyz")
        bot.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(bot.finish(), 2 + WAIT / 3)
    assert status == 503, body
    assert '"slack": false' in body
    assert code == 0
    assert "Traceback" not in "\n".join(bot.logs)


async def test_startup_names_settings_the_environment_takes_over_from_dotenv(
    deployment: Deployment,
) -> None:
    """`.env` sets SSL_CERT_FILE too, and the environment wins: the start log names the
    setting (not its value), and the `.env` value with a blank OPENAI_BASE_URL line changes
    nothing."""
    (deployment.cwd / ".env").write_text(
        "SSL_CERT_FILE=/srv/elsewhere/ca.pem\nOPENAI_BASE_URL=\nCRM_TOKEN=x\n"
    )
    async with deployment.running() as bot:
        await bot.port()
        line = await bot.wait_for_log("set in the environment, so .env's value is not used")
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0
    assert line.string.endswith('not used: SSL_CERT_FILE"}')
    assert "/srv/elsewhere" not in "\n".join(bot.logs)


async def test_a_damaged_database_is_one_line_and_exit_1(deployment: Deployment) -> None:
    """A database file that is not a database: one line naming it, exit 1, nothing started
    (no HTTP server, no platform connection)."""
    (deployment.cwd / "actionbot.db").write_bytes(b"not a database, " * 400)
    async with deployment.running() as bot:
        code, output = await exit_and_output(bot)
    assert code == 1, output
    assert "Cannot use the database" in output
    assert "file is not a database" in output
    assert "Traceback" not in output
    assert "HTTP server listening" not in output
    assert deployment.slack.calls("auth.test") == []


async def test_a_database_locked_by_another_process_is_one_line_and_exit_1(
    deployment: Deployment,
) -> None:
    """Another process holds the database's write lock for longer than the bot waits:
    one line saying it is locked, exit 1."""
    holder = sqlite3.connect(deployment.cwd / "actionbot.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        async with deployment.running() as bot:
            code, output = await exit_and_output(bot)
    finally:
        holder.close()
    assert code == 1, output
    assert "Cannot use the database" in output
    assert "database is locked" in output
    assert "Traceback" not in output
