"""`actionbot doctor` against a healthy model server, one that ignores tools, and none; and
auto mode starting with what doctor found."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import openai
import pytest
import trustme
from conftest import make_settings
from test_cli import INVENTORY_TOML, base_env, closed_port, run_cli, write_ca

from actionbot.app import open_engine, open_services
from actionbot.doctor import check_model
from bot.llm.client import OpenAIChatModel
from fakes.https_server import WebhookServer
from fakes.model_servers import LLAMA_CPP_CHATML, OLLAMA, Quirks
from fakes.openai_server import ScriptedLLM
from fakes.slack_server import FakeSlack

MODEL = "test-model"


def doctor_env(
    tmp_path: Path, ca: trustme.CA, server: WebhookServer, llm_url: str
) -> dict[str, str]:
    actions = tmp_path / "actions.toml"
    actions.write_text(INVENTORY_TOML.format(url=server.url("/inventory/check")))
    return base_env(
        ACTIONBOT_ACTIONS=str(actions),
        ACTIONBOT_DB=str(tmp_path / "actionbot.db"),
        ACTIONBOT_EGRESS_ALLOW="127.0.0.1",
        ACTIONBOT_MODEL=MODEL,
        ACTIONBOT_LLM_MAX_RETRIES="0",
        SSL_CERT_FILE=str(write_ca(ca, tmp_path)),
        OPENAI_BASE_URL=llm_url,
    )


def script_probe(llm: ScriptedLLM) -> None:
    """The model's side of doctor's questions: a plain answer, the forced tool call, and an
    answer to the tool result (a server that ignores tools never gets that far)."""
    llm.reply("OK")
    llm.tool_calls(("get_magic_number", {}))
    if llm.quirks.ignores_tools is False:
        llm.reply("The magic number is 42.")


@pytest.mark.parametrize(("quirks", "native"), [(OLLAMA, True), (LLAMA_CPP_CHATML, False)])
async def test_model_checks_find_whether_tools_work(quirks: Quirks, native: bool) -> None:
    """A server with tool calling is recommended native mode; one that ignores tools (the
    forced call comes back as text) is recommended prompt mode."""
    async with ScriptedLLM(quirks=quirks) as llm:
        script_probe(llm)
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="k", max_retries=0)
        report = await check_model(OpenAIChatModel(client, model=MODEL))
        await client.close()
    assert report.native_tools is native
    assert report.recommended == ("native" if native else "prompt")
    checks = {f.check: f for f in report.findings}
    assert checks["model"].ok
    assert checks["completion"].ok
    assert checks["tool calling"].ok is native
    assert native or not checks["tool calling"].blocking  # prompt mode still runs the bot


async def test_doctor_passes_a_healthy_setup(
    tmp_path: Path, ca: trustme.CA, webhook_server: WebhookServer
) -> None:
    """Everything answers: exit 0, each check listed, native mode recommended, and the
    action's endpoint is never called."""
    async with ScriptedLLM(quirks=OLLAMA) as llm:
        script_probe(llm)
        env = doctor_env(tmp_path, ca, webhook_server, llm.base_url)
        finished = await run_cli("doctor", cwd=tmp_path, env=env)
    assert finished.code == 0, finished.stdout + finished.stderr
    out = finished.stdout
    for line in ("ok    database", "ok    completion", "ok    tool calling", "ok    tool result"):
        assert line in out, out
    assert "ok    action check_inventory  127.0.0.1 → 127.0.0.1" in out
    assert "Recommended: ACTIONBOT_TOOL_MODE=native" in out
    assert out.rstrip().endswith("The bot can run.")
    assert webhook_server.requests == []


async def test_doctor_finds_a_server_that_ignores_tools_and_auto_mode_uses_it(
    tmp_path: Path, ca: trustme.CA, webhook_server: WebhookServer
) -> None:
    """A server without tool calling: the bot can still run (exit 0) with prompt mode
    recommended; the finding is kept, so `run` in auto mode starts in prompt mode."""
    async with ScriptedLLM(quirks=LLAMA_CPP_CHATML) as llm:
        script_probe(llm)
        env = doctor_env(tmp_path, ca, webhook_server, llm.base_url)
        finished = await run_cli("doctor", cwd=tmp_path, env=env)
        endpoint = llm.base_url
    assert finished.code == 0, finished.stdout + finished.stderr
    assert "warn  tool calling" in finished.stdout
    assert "Recommended: ACTIONBOT_TOOL_MODE=prompt" in finished.stdout
    with closing(sqlite3.connect(tmp_path / "actionbot.db")) as db:
        rows = db.execute("SELECT endpoint, model, native_tools FROM model_checks").fetchall()
    assert rows == [(endpoint, MODEL, 0)]

    settings = make_settings(
        openai_base_url=endpoint,
        model=MODEL,
        db_path=tmp_path / "actionbot.db",
        actions_path=tmp_path / "actions.toml",
        egress_allow="127.0.0.1",
    )
    model = OpenAIChatModel.from_settings(settings)
    async with open_services(settings) as services, open_engine(services, model):
        assert model.prompt_tools


async def test_doctor_reports_an_unreachable_model_server(
    tmp_path: Path, ca: trustme.CA, webhook_server: WebhookServer
) -> None:
    """Nothing listens at OPENAI_BASE_URL: exit 1 and one failing line that says so."""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    finished = await run_cli(
        "doctor", cwd=tmp_path, env=doctor_env(tmp_path, ca, webhook_server, url)
    )
    assert finished.code == 1
    fails = [line for line in finished.stdout.splitlines() if "FAIL" in line]
    assert len(fails) == 1, finished.stdout
    assert "completion" in fails[0]
    assert "cannot reach the model server" in fails[0]
    assert finished.stdout.rstrip().endswith("1 problem(s) to fix.")


@pytest.mark.parametrize("accepted", [True, False])
async def test_doctor_checks_the_platform_tokens(
    accepted: bool, tmp_path: Path, ca: trustme.CA, webhook_server: WebhookServer
) -> None:
    """Slack's tokens are checked as `run` would check them (auth.test; in Socket Mode
    apps.connections.open too), without connecting: a rejection is a failing line."""
    async with ScriptedLLM(quirks=OLLAMA) as llm, FakeSlack() as slack:
        script_probe(llm)
        if not accepted:
            slack.fail_next("apps.connections.open", "invalid_auth")
        env = doctor_env(tmp_path, ca, webhook_server, llm.base_url) | {
            "SLACK_BOT_TOKEN": "xoxb-doctor",
            "SLACK_APP_TOKEN": "xapp-doctor",
            "SLACK_API_URL": slack.api_url,
        }
        finished = await run_cli("doctor", cwd=tmp_path, env=env)
        methods = [call.method for call in slack.api_calls]
    assert methods == ["auth.test", "apps.connections.open"]
    assert slack.connection_count == 0
    if accepted:
        assert finished.code == 0, finished.stdout
        assert "ok    slack" in finished.stdout
    else:
        assert finished.code == 1
        assert "FAIL  slack" in finished.stdout
        assert "Slack rejected SLACK_APP_TOKEN (invalid_auth)" in finished.stdout
