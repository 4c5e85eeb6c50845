"""Who is asking: context parameters (`from = "user.id"` …) filled by ActionBot from the
verified platform event, hidden from the model, refused when the model forges them."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from deployment import Deployment
from pydantic import SecretStr

from actionbot.app import configuration_problems
from bot.actions.loader import parse_actions
from bot.actions.models import Action, tool_schema
from bot.errors import ActionsFileError
from bot.outbound.egress import EgressPolicy
from fakes.https_server import json_handler
from fakes.slack_server import TEAM_ID

LOYALTY = """\
[[actions]]
name = "loyalty_status"
display_name = "Loyalty Status"
description = "The asking customer's loyalty tier."
url = "{url}/{{requester}}"

[[actions.parameters]]
name = "requester"
from = "user.id"
description = "The customer asking"

[[actions.parameters]]
name = "email"
from = "user.email"
description = "Their email"

[[actions.parameters]]
name = "workspace"
from = "team.id"
description = "Their workspace"

[[actions.parameters]]
name = "program"
type = "string"
description = "Which loyalty program"
required = true
"""


def loyalty(url: str = "https://api.example.com/loyalty") -> Action:
    [action] = parse_actions(
        LOYALTY.format(url=url), source="actions.toml", environ={}, policy=EgressPolicy()
    )
    return action


def test_context_parameters_are_not_offered_to_the_model() -> None:
    """The tool schema holds only what the model should extract from the chat."""
    schema = tool_schema(loyalty())["function"]["parameters"]
    assert list(schema["properties"]) == ["program"]
    assert schema["required"] == ["program"]


def test_user_email_on_discord_is_a_startup_problem(tmp_path: Path) -> None:
    """Discord never shares a user's email: an action that needs it cannot start there."""
    path = tmp_path / "actions.toml"
    path.write_text(LOYALTY.format(url="https://api.example.com/loyalty"))
    settings = make_settings(
        actions_path=str(path), discord_token=SecretStr("d"), openai_api_key="sk-x"
    )
    [problem] = [p for p in configuration_problems(settings) if "user.email" in p]
    assert "'loyalty_status'" in problem
    assert "'email'" in problem
    assert "Discord" in problem


async def test_the_endpoint_gets_the_verified_user_and_a_forged_one_is_refused(
    deployment: Deployment,
) -> None:
    """On Slack: the model first tries to send `requester` itself (refused, not sent), then
    calls properly; the endpoint gets the id from the signed event, the email from the
    user's profile and the workspace, and the path uses the verified id."""
    deployment.server.route("/loyalty/U1", json_handler({"tier": "gold"}))
    deployment.slack.add_user("U1", email="ana@example.com")
    (deployment.cwd / "actions.toml").write_text(
        LOYALTY.format(url=deployment.server.url("/loyalty"))
    )
    deployment.llm.tool_calls(("loyalty_status", {"program": "gold", "requester": "U999"}))
    deployment.llm.tool_calls(("loyalty_status", {"program": "gold"}))
    deployment.llm.reply("You are gold.")

    async with deployment.running() as bot:
        port = await bot.port()
        await deployment.send_event(port, "What is my tier?", event_id="Ev1")
        await deployment.slack.wait_for_call("chat.update", count=2)
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.finish() == 0

    [request] = deployment.server.requests
    assert request.path == "/loyalty/U1"
    assert request.query == {"email": "ana@example.com", "workspace": TEAM_ID, "program": "gold"}
    refusal = json.loads(tool_results(deployment.llm.requests[1])[0])
    assert refusal["ok"] is False
    assert "filled by ActionBot" in refusal["error"]


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


@pytest.mark.parametrize("source", ["user.phone", "User.Id"])
def test_unknown_sources_are_load_errors(source: str) -> None:
    text = LOYALTY.format(url="https://api.example.com/l").replace('"team.id"', f'"{source}"')
    with pytest.raises(ActionsFileError, match=r"parameters\.workspace\.from"):
        parse_actions(text, source="actions.toml", environ={}, policy=EgressPolicy())
