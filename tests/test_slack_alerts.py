"""Guardrails on Slack in a real `actionbot run` process (fake Slack in HTTP mode, the
scripted LLM, the HTTPS webhook fake): one alert per breaker opening in
`ACTIONBOT_ALERT_CHANNEL`, an alert channel the bot may not post in, and `/actions dryrun`
and `/actions audit` as signed slash commands answered in Block Kit."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import aiohttp
from deployment import ACTIONS, ARGS, SECRETS, Bot, Deployment

from bot import wording
from fakes.https_server import json_handler
from fakes.slack_server import signed_headers, slash_command

ALERTS = "C_ALERTS"
FAILING = {"error": "database is down"}
GUARDED = {"ACTIONBOT_BREAKER_FAILURES": "2", "ACTIONBOT_ALERT_CHANNEL": f"slack:{ALERTS}"}


def texts(deployment: Deployment) -> list[str]:
    """Every text the bot posted or edited into Slack, in order."""
    calls = deployment.slack.calls("chat.postMessage") + deployment.slack.calls("chat.update")
    return [str(call.get("text", "")) for call in calls]


def alerts(deployment: Deployment) -> list[dict[str, Any]]:
    """Every `chat.postMessage` to the alert channel, refused or not."""
    return [c for c in deployment.slack.calls("chat.postMessage") if c.get("channel") == ALERTS]


async def ask(
    deployment: Deployment,
    port: int,
    question: str,
    answer: str,
    *,
    n: int,
    action: str = "check_inventory",
) -> None:
    """A customer's question whose turn calls `action`; waits for `answer`."""
    deployment.llm.tool_calls((action, ARGS))
    deployment.llm.reply(answer)
    await deployment.send_event(port, question, event_id=f"Ev{n}")
    await deployment.slack.wait_until(lambda: answer in texts(deployment), what=answer)


async def slash(deployment: Deployment, port: int, text: str, *, user: str) -> dict[str, Any]:
    """`/actions TEXT` by `user`, signed as Slack signs it; what came to the response URL."""
    key = f"{user}:{text}"
    payload = slash_command(
        text=text, user_id=user, response_url=deployment.slack.response_url(key)
    )
    body = urllib.parse.urlencode(payload)
    headers = signed_headers(SECRETS["SLACK_SIGNING_SECRET"], body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as sent,
    ):
        assert sent.status == 200
    [response] = await deployment.slack.wait_for_response(key)
    return dict(response)


def tool_result(deployment: Deployment, request: int) -> str:
    """What the model was told of its call, in its `request`-th request."""
    return str(deployment.llm.requests[request]["messages"][-1]["content"])


async def test_a_breaker_opening_posts_one_alert_and_later_calls_send_nothing(
    deployment: Deployment,
) -> None:
    """Two 500s in a row open `check_inventory`'s breaker: exactly one alert goes to the
    alert channel, naming the action; the third call is short-circuited (the endpoint sees
    no request) and posts no further alert."""
    deployment.server.route("/inventory/check", json_handler(FAILING, status=500))

    async with deployment.running(**GUARDED) as bot:
        port = await bot.port()
        await ask(deployment, port, "Screens?", "The stock service is down.", n=1)
        await ask(deployment, port, "Screens now?", "Still down, sorry.", n=2)
        await deployment.slack.wait_until(lambda: len(alerts(deployment)) == 1, what="an alert")
        await ask(deployment, port, "And now?", "Try again later, please.", n=3)

    [alert] = alerts(deployment)
    assert "check_inventory" in alert["text"]
    assert "Check Inventory" in alert["text"]
    assert "2 calls in a row failed" in alert["text"]
    assert len(deployment.server.requests) == 2
    assert "temporarily unavailable" in tool_result(deployment, 5)


def two_actions(deployment: Deployment) -> None:
    """The actions file with a second action on the same failing endpoint."""
    url = deployment.server.url("/inventory/check")
    second = ACTIONS.format(url=url).replace("check_inventory", "check_repairs", 1)
    second = second.replace('"Check Inventory"', '"Check Repairs"', 1)
    (deployment.cwd / "actions.toml").write_text(ACTIONS.format(url=url) + "\n" + second)


def warnings_about_alerts(bot: Bot) -> list[str]:
    return [line for line in bot.logs if "cannot post alerts to slack:C_ALERTS" in line]


async def test_an_alert_channel_the_bot_is_not_in_is_one_warning_and_breakers_still_work(
    deployment: Deployment,
) -> None:
    """The alert channel answers `not_in_channel`: two breakers open, each alert is tried
    and logged, but the refusal is one warning (saying what to do); the open breakers
    still short-circuit calls without a request."""
    two_actions(deployment)
    deployment.server.route("/inventory/check", json_handler(FAILING, status=500))
    deployment.slack.fail_next(
        "chat.postMessage", "not_in_channel", times=2, when=lambda p: p.get("channel") == ALERTS
    )

    async with deployment.running(**GUARDED) as bot:
        port = await bot.port()
        for n, name in enumerate(["check_inventory"] * 2 + ["check_repairs"] * 2):
            await ask(deployment, port, f"Question {n}?", f"Answer {n}.", n=n, action=name)
        await deployment.slack.wait_until(lambda: len(alerts(deployment)) == 2, what="2 alerts")
        await bot.wait_for_log("cannot post alerts to slack:C_ALERTS")
        # A turn after both refusals: the second refusal has been handled by its end.
        await ask(deployment, port, "Screens?", "Unavailable for now.", n=5)

    assert len([line for line in bot.logs if "alert: " in line]) == 2
    [warning] = warnings_about_alerts(bot)
    assert "not_in_channel" in warning
    assert "/invite @ActionBot" in warning
    assert len(deployment.server.requests) == 4
    assert "temporarily unavailable" in tool_result(deployment, 9)


async def test_dryrun_and_audit_as_signed_slash_commands(deployment: Deployment) -> None:
    """An admin's `/actions dryrun check_inventory on` answers in Block Kit and the next
    call sends nothing; `/actions audit check_inventory` shows both calls (who asked, where,
    outcome) as a preformatted table under a header; a member is refused."""
    deployment.server.route("/inventory/check", json_handler({"in_stock": True}))

    async with deployment.running(ACTIONBOT_ADMINS="slack:UADMIN") as bot:
        port = await bot.port()
        await ask(deployment, port, "Screens?", "Yes, in stock.", n=1)
        refused = await slash(deployment, port, "dryrun check_inventory on", user="U1")
        answer = await slash(deployment, port, "dryrun check_inventory on", user="UADMIN")
        await ask(deployment, port, "Screens again?", "That was only a test.", n=2)
        audit = await slash(deployment, port, "audit check_inventory", user="UADMIN")
        code, listed = await deployment.cli("actions", "list")

    assert refused["text"] == wording.NOT_ADMIN
    assert answer["response_type"] == "ephemeral"
    [section] = answer["blocks"]
    assert section["type"] == "section"
    assert "`check_inventory` is now in dry-run mode" in section["text"]["text"]
    assert len(deployment.server.requests) == 1
    assert '"dry_run": true' in tool_result(deployment, 3)

    header, title, *tables, note = audit["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Audit: check_inventory", "emoji": True},
    }
    assert "Last 2 calls of check_inventory" in json.dumps(title)
    table = "".join(block["text"]["text"] for block in tables)
    assert table.startswith("```\nWHEN")
    rows = table.splitlines()[2:4]
    assert "dry_run" in rows[0]
    assert "success" in rows[1]
    assert all("slack:U1" in row and "D1" in row for row in rows)
    assert "iPhone 15 Pro" in table
    assert note["type"] == "context"
    assert code == 0
    row = next(line for line in listed.splitlines() if line.startswith("check_inventory"))
    assert "dry run" in row
