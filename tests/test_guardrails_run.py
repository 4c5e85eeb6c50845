"""Guardrails in a real `actionbot run` process (fake Slack in HTTP mode, the scripted LLM,
the HTTPS webhook fake): the customer rate, an action's breaker and dry-run mode as the
operator sees them in `actions list` and `/metrics`."""

from __future__ import annotations

import re

from deployment import SECRETS, Deployment, answer_with_inventory, get

from bot import wording
from fakes.https_server import json_handler


def texts(deployment: Deployment) -> list[str]:
    """Every text the bot posted or edited into Slack, in order."""
    calls = deployment.slack.calls("chat.postMessage") + deployment.slack.calls("chat.update")
    return [str(call.get("text", "")) for call in calls]


async def test_a_customer_over_the_rate_is_told_once_and_the_model_is_not_asked(
    deployment: Deployment,
) -> None:
    """`ACTIONBOT_USER_RATE=2/minute`: two questions are answered; the third gets one
    polite message; the fourth nothing; the model hears only the first two."""
    deployment.llm.reply("First answer.")
    deployment.llm.reply("Second answer.")

    async with deployment.running(ACTIONBOT_USER_RATE="2/minute") as bot:
        port = await bot.port()
        for n in range(4):
            await deployment.send_event(port, f"Question {n}", event_id=f"Ev{n}")
        await bot.wait_for_log(r"over ACTIONBOT_USER_RATE \(2/minute\).*slack:Ev3")
        await deployment.slack.wait_until(lambda: wording.SLOW_DOWN in texts(deployment))
        status, metrics = await get(port, "/metrics")

    assert len(deployment.llm.requests) == 2
    posted = texts(deployment)
    assert "First answer." in posted
    assert "Second answer." in posted
    assert sum(text == wording.SLOW_DOWN for text in posted) == 1
    assert status == 200
    assert 'actionbot_customer_rate_limited_total{platform="slack"} 2.0' in metrics
    assert 'actionbot_turns_total{outcome="rate_limited"} 1.0' in metrics


async def test_list_and_metrics_show_an_open_breaker_and_a_dry_run(
    deployment: Deployment,
) -> None:
    """Two failures open the breaker (`ACTIONBOT_BREAKER_FAILURES=2`): the gauge says so,
    and `actions list` run as another process shows it, as it shows a dry run set with
    `actions dryrun`."""
    deployment.server.route("/inventory/check", json_handler({"error": "down"}, status=502))
    for _ in range(2):
        answer_with_inventory(deployment, "Sorry, the stock service is down.")

    async with deployment.running(ACTIONBOT_BREAKER_FAILURES="2") as bot:
        port = await bot.port()
        await deployment.send_event(port, "Screens?", event_id="Ev1")
        await deployment.send_event(port, "Screens now?", event_id="Ev2")
        await bot.wait_for_log(r"breaker of check_inventory open")
        _, metrics = await get(port, "/metrics")
        code, listed = await deployment.cli("actions", "list")

    assert 'actionbot_breaker_open{action="check_inventory"} 1.0' in metrics
    assert code == 0
    row = next(line for line in listed.splitlines() if line.startswith("check_inventory"))
    assert re.search(r"\blive\s+open\s+active\b", row), listed
    assert len(deployment.server.requests) == 2

    code, answer = await deployment.cli("actions", "dryrun", "check_inventory", "on")
    assert code == 0, answer
    assert "dry-run mode" in answer
    code, listed = await deployment.cli("actions", "list")
    row = next(line for line in listed.splitlines() if line.startswith("check_inventory"))
    assert "dry run" in row
    for secret in SECRETS.values():
        assert secret not in listed
