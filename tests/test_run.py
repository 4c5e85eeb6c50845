"""`actionbot run` as a real process: Slack HTTP mode, health, metrics, shutdown, logs.

The bot runs as a subprocess against the fakes in this test's event loop (Slack Web API,
scripted LLM, HTTPS webhook); see `tests/deployment.py`.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

from aiohttp import web
from deployment import (
    ACTIONBOT,
    REPO,
    SECRETS,
    WAIT,
    Deployment,
    answer_with_inventory,
    base_env,
    get,
)

from fakes.https_server import json_handler


async def test_serves_health_readiness_and_metrics_matching_stats(deployment: Deployment) -> None:
    """/healthz and /readyz answer, and /metrics counts the call exactly as `stats` does."""
    deployment.server.route("/inventory/check", json_handler({"in_stock": True}))
    answer_with_inventory(deployment, "Yes, in stock.")

    async with deployment.running() as bot:
        port = await bot.port()
        health = await get(port, "/healthz")
        ready = await get(port, "/readyz")
        await deployment.send_event(port, "Any iPhone 15 Pro screens?", event_id="Ev1")
        updates = await deployment.slack.wait_for_call("chat.update", count=2)
        status, metrics = await get(port, "/metrics")
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0

    code, stats = await deployment.cli("actions", "stats", "check_inventory")
    assert health[0] == 200
    assert ready[0] == 200
    assert json.loads(ready[1])["checks"] == {"database": True, "slack": True}
    assert updates[-1]["text"] == "Yes, in stock."
    assert status == 200
    found = re.search(
        r'actionbot_action_calls_recorded\{action="check_inventory",outcome="success"\} (\S+)',
        metrics,
    )
    assert found is not None, metrics
    row = next(line for line in stats.splitlines() if line.startswith("check_inventory"))
    assert code == 0
    assert float(found.group(1)) == int(row.split()[1]) == 1
    assert "# TYPE actionbot_action_calls_recorded gauge" in metrics  # not summed over replicas
    mine = 'actionbot_action_calls_total{action="check_inventory",outcome="success"} 1.0'
    assert mine in metrics  # this process's own calls
    assert 'actionbot_messages_handled_total{platform="slack"} 1.0' in metrics
    assert "actionbot_action_latency_seconds_bucket" in metrics
    assert 'actionbot_llm_tokens_total{kind="prompt"}' in metrics
    assert "actionbot_slack_ack_seconds_count 1.0" in metrics
    assert 'actionbot_webhook_queue_seconds_count{action="check_inventory"} 1.0' in metrics
    assert 'actionbot_webhook_inflight{action="check_inventory"} 0.0' in metrics


async def test_sigterm_lets_the_turn_in_progress_finish(deployment: Deployment) -> None:
    """SIGTERM during a slow webhook: the turn completes and posts its reply, and the process
    exits 0. An event received during the shutdown grace is acknowledged and written down,
    not started; the next start answers it."""
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"in_stock": True, "quantity": 2})

    deployment.server.route("/inventory/check", slow)
    answer_with_inventory(deployment, "Two left in stock.")

    async with deployment.running() as bot:
        port = await bot.port()
        await deployment.send_event(port, "Screens?", event_id="Ev1")
        await deployment.server.wait_for_requests(1)
        bot.process.send_signal(signal.SIGTERM)
        await bot.wait_for_log("shutting down")
        await deployment.send_event(port, "Another question", event_id="Ev2")
        release.set()
        code = await bot.finish()

    assert code == 0
    assert deployment.slack.calls("chat.update")[-1]["text"] == "Two left in stock."
    assert len(deployment.llm.requests) == 2
    deployment.llm.reply("Answered after the restart.")
    async with deployment.running() as bot:
        await bot.port()
        await deployment.slack.wait_for_call("chat.update", count=2)
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0
    assert deployment.slack.calls("chat.update")[-1]["text"] == "Answered after the restart."
    assert deployment.llm.requests[-1]["messages"][-1]["content"] == "Another question"


async def test_no_secret_in_the_logs_of_a_full_conversation(deployment: Deployment) -> None:
    """At DEBUG, a whole conversation with an action call logs none of the secrets."""
    deployment.server.route("/inventory/check", json_handler({"in_stock": True}))
    answer_with_inventory(deployment, "In stock.")

    async with deployment.running(LOG_LEVEL="DEBUG") as bot:
        port = await bot.port()
        await deployment.send_event(port, "Screens?", event_id="Ev1")
        await deployment.slack.wait_for_call("chat.update", count=2)
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0
        assert bot.process.stdout is not None
        stdout = (await bot.process.stdout.read()).decode()

    output = "\n".join(bot.logs) + stdout
    assert deployment.server.requests[0].headers["Authorization"] == (
        "Bearer " + SECRETS["INVENTORY_TOKEN"]
    )
    assert "check_inventory" in output
    records = [json.loads(line) for line in bot.logs]
    turn = [r for r in records if r.get("conversation") == "D1"]
    assert turn
    assert all(r["platform"] == "slack" for r in turn)
    for name, secret in SECRETS.items():
        assert secret not in output, f"{name} leaked into the logs"


async def test_bad_configuration_lists_every_problem(tmp_path: Path) -> None:
    """A broken actions file and no LLM: one exit, every problem listed, nothing started."""
    (tmp_path / "actions.toml").write_text(
        '[[actions]]\nname = "a"\ndisplay_name = "A"\ndescription = "d"\n'
        'url = "http://example.com/x"\ncolour = "red"\n'
        '[[actions]]\nname = "b"\ndisplay_name = "B"\ndescription = "d"\n'
        'url = "https://example.com/{id}"\n'
    )
    env = base_env(tmp_path, SLACK_BOT_TOKEN="xoxb-x", ACTIONBOT_HTTP_PORT="0")
    process = await asyncio.create_subprocess_exec(
        ACTIONBOT,
        "run",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), WAIT)
    stderr = err.decode()

    assert process.returncode == 2
    for expected in (
        "OPENAI_API_KEY",
        "'colour'",
        "must use https://",
        "{id}",
        "SLACK_SIGNING_SECRET",
    ):
        assert expected in stderr, expected
    assert "HTTP server listening" not in stderr


def dockerfile() -> tuple[dict[str, str], list[str], list[str]]:
    """The image's environment, entry command and health check, read from the Dockerfile."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    final_stage = text.split("\nFROM ")[-1]
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(re.findall(r"^ENV (.*)$", final_stage, re.M))))

    def exec_form(instruction: str) -> list[str]:
        found = re.search(rf"^{instruction} .*?(\[.*\])\s*$", final_stage, re.M)
        assert found is not None, instruction
        parsed: list[str] = json.loads(found.group(1))
        return parsed

    return env, exec_form("ENTRYPOINT") + exec_form("CMD"), exec_form("HEALTHCHECK")


async def test_image_entry_command_and_healthcheck(deployment: Deployment) -> None:
    """The image's command runs the bot with its /data defaults; its health check passes."""
    image_env, command, healthcheck = dockerfile()
    data = deployment.cwd / "data"
    data.mkdir()
    (data / "actions.toml").write_text((deployment.cwd / "actions.toml").read_text())
    remapped = {
        k: v.replace("/data", str(data)) for k, v in image_env.items() if k.startswith("ACTIONBOT_")
    }
    deployment.env = {
        k: v for k, v in deployment.env.items() if k not in ("ACTIONBOT_DB", "ACTIONBOT_ACTIONS")
    } | remapped
    deployment.env["ACTIONBOT_HTTP_PORT"] = "0"
    assert command == ["actionbot", "run"]
    assert image_env["ACTIONBOT_DB"] == "/data/actionbot.db"
    assert healthcheck[-2:] == ["actionbot", "healthcheck"]

    async with deployment.running() as bot:
        port = await bot.port()
        checker = await asyncio.create_subprocess_exec(
            ACTIONBOT,
            "healthcheck",
            cwd=data,
            env=deployment.env | {"ACTIONBOT_HTTP_PORT": str(port)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(checker.communicate(), WAIT)
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0

    assert checker.returncode == 0
    assert out.decode().strip() == "healthy"
    assert (data / "actionbot.db").exists()
