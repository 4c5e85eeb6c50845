"""Wiring: the one place where settings become connected services."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.actions.loader import load_actions, with_chat_actions
from bot.actions.models import ENV_REFERENCE, ActionSet, ContextSource
from bot.admin.breakers import BreakerReport
from bot.admin.operations import Admin
from bot.delivery import host_owner, owner_gone
from bot.engine import Engine, EngineLimits
from bot.errors import ActionsFileError, ConfigError
from bot.llm.client import NO_LLM_CONFIGURED, OpenAIChatModel
from bot.outbound.breaker import Breakers
from bot.outbound.egress import EgressPolicy
from bot.outbound.guard import Guard
from bot.outbound.webhooks import WebhookClient, configured_keys
from bot.runtime.alerts import Alerts
from bot.runtime.config import Settings
from bot.runtime.logs import protect_secrets
from bot.runtime.metrics import MeteredRecorder, Metrics
from bot.store import ChatAction, Store
from bot.store.open import configured_database, open_store

logger = logging.getLogger(__name__)
DAY = 86400.0
RETENTION_SECONDS = 3600.0
"""How often old conversations, inbox messages, journal rows and call rows are deleted."""
RETENTION_LEASE = "retention"


@functools.cache
def process_owner() -> str:
    """This process's name in leases (`host:pid:place-random`), the same for all its work."""
    return host_owner()


@dataclass(frozen=True)
class Services:
    """The connected parts a front end needs; owns nothing, `open_services` closes them."""

    settings: Settings
    actions: ActionSet
    store: Store
    webhooks: WebhookClient
    admin: Admin
    metrics: Metrics
    alerts: Alerts
    """Where admin alerts go; each platform adapter registers how it posts."""


def load_configured_actions(
    settings: Settings, *, environ: Mapping[str, str] | None = None
) -> ActionSet:
    """The actions file named by the settings, checked against the operator's egress policy."""
    policy = EgressPolicy(settings.egress_allow_entries)
    env = os.environ if environ is None else environ
    return load_actions(settings.actions_path, environ=env, policy=policy)


def catalogue_actions(
    settings: Settings,
    file: ActionSet,
    made: list[ChatAction],
    *,
    environ: Mapping[str, str] | None = None,
) -> ActionSet:
    """The file's actions and those made in chat; a chat-made action that no longer checks
    out is logged and left out."""
    definitions = [kept.definition for kept in made]
    actions, problems = with_chat_actions(
        file,
        definitions,
        environ=os.environ if environ is None else environ,
        policy=EgressPolicy(settings.egress_allow_entries),
    )
    for problem in problems:
        logger.warning("an action made in chat is not offered: %s", problem)
    return actions


def configuration_problems(settings: Settings, *, need_llm: bool = True) -> list[str]:
    """Every problem that stops the bot from starting, found without network access, so
    they can all be reported at once (token checks with the platforms come after)."""
    problems: list[str] = []
    if need_llm and settings.openai_api_key is None and not settings.openai_base_url:
        problems.append(NO_LLM_CONFIGURED)
    try:
        actions = load_configured_actions(settings)
        problems += _context_problems(settings, actions)
    except ActionsFileError as exc:
        problems += [str(problem) for problem in exc.problems]
    except ConfigError as exc:
        problems.append(str(exc))
    problems += _platform_problems(settings)
    for check in (configured_keys, configured_database):
        try:
            check(settings)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _context_problems(settings: Settings, actions: ActionSet) -> list[str]:
    """Context parameters a configured platform cannot fill: Discord never shares a user's
    email with bots."""
    if settings.discord_token is None:
        return []
    problems = [
        f"Action {a.name!r}: parameter {p.name!r} takes from = 'user.email', which Discord "
        "cannot supply; DISCORD_TOKEN is set. Use 'user.id', or run this action on Slack only."
        for a in actions
        for p in a.parameters
        if p.source is ContextSource.USER_EMAIL
    ]
    return problems


def _platform_problems(settings: Settings) -> list[str]:
    problems = []
    bot, app = settings.slack_bot_token, settings.slack_app_token
    if bot is not None and not bot.get_secret_value().startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be the Bot User OAuth Token (it starts with xoxb-).")
    if app is not None and not app.get_secret_value().startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN must be an app-level token (it starts with xapp-).")
    if bot is not None and app is None and settings.slack_signing_secret is None:
        problems.append(
            "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
            "SLACK_SIGNING_SECRET (HTTP mode) is: set one of them."
        )
    if bot is None and (app is not None or settings.slack_signing_secret is not None):
        problems.append("SLACK_APP_TOKEN or SLACK_SIGNING_SECRET is set without SLACK_BOT_TOKEN.")
    tokens = {"slack": bot, "discord": settings.discord_token}
    problems += [
        f"ACTIONBOT_HANDOFF_CHANNEL names a {platform} channel, but {platform} is not "
        "configured: set its token, or remove the entry."
        for platform in settings.handoff_channels
        if tokens.get(platform) is None
    ]
    problems += [
        f"ACTIONBOT_ALERT_CHANNEL names a {platform} channel, but {platform} is not "
        "configured: set its token, or remove the entry."
        for platform in settings.alert_channels
        if tokens.get(platform) is None
    ]
    return problems


def secret_values(
    settings: Settings, actions: ActionSet, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Every secret the bot holds: tokens from the settings and the actions' header values,
    including the `${VAR}` values they were built from (for log redaction)."""
    env = os.environ if environ is None else environ
    values = settings.secret_values()
    for action in actions:
        values += [v.get_secret_value() for v in action.header_values.values()]
        for template in action.headers.values():
            values += [env[ref] for ref in ENV_REFERENCE.findall(template) if ref in env]
    return values


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Load the actions (the file's and those made in chat), open the store and the webhook
    client; close them on exit."""
    actions = load_configured_actions(settings)
    protect_secrets(secret_values(settings, actions))
    store = await open_store(settings)
    metrics = Metrics()
    recorder = MeteredRecorder(store, metrics)
    try:
        actions = catalogue_actions(settings, actions, await store.chat_actions())
        secrets = secret_values(settings, actions)
        protect_secrets(secrets)
        alerts = Alerts(settings.alert_channels)
        report = BreakerReport(actions=actions, store=store, metrics=metrics, alerts=alerts)
        breakers = Breakers(failures=settings.breaker_failures, listener=report)
        webhooks = WebhookClient.from_settings(
            settings, recorder=recorder, observer=metrics, secrets=secrets, guard=Guard(breakers)
        )
        async with webhooks:
            admin = Admin(
                actions=actions,
                store=store,
                webhooks=webhooks,
                result_chars=settings.result_chars,
                call_log_days=settings.call_log_days,
            )
            yield Services(settings, actions, store, webhooks, admin, metrics, alerts)
            await alerts.drain()
    finally:
        await store.close()


@asynccontextmanager
async def open_engine(services: Services, model: OpenAIChatModel) -> AsyncIterator[Engine]:
    """The engine over the services, with old conversations pruned first, and the tools in
    the prompt when `actionbot doctor` found that this model server ignores native ones."""
    settings = services.settings
    found = await services.store.native_tools(model.endpoint, model.model)
    if model.tool_mode == "auto" and found is False:
        model.use_prompt_tools("actionbot doctor found that the server ignores tools")
    await prune(services.store, settings)
    limits = EngineLimits(
        max_tool_rounds=settings.max_tool_rounds,
        history_messages=settings.history_messages,
        history_chars=settings.history_chars,
        result_chars=settings.result_chars,
        max_tool_calls=settings.max_tool_calls,
        confirm_ttl=settings.confirm_ttl,
    )
    secret = settings.webhook_secret
    instance_key = (
        secret.get_secret_value().encode("utf-8")
        if secret is not None
        else await services.store.instance_key()
    )
    try:
        yield Engine(
            actions=services.actions,
            store=services.store,
            webhooks=services.webhooks,
            model=model,
            limits=limits,
            system_prompt=settings.system_prompt,
            metrics=services.metrics,
            instance_key=instance_key,
            handoff_platforms=frozenset(settings.handoff_channels),
        )
    finally:
        await model.aclose()


async def prune(store: Store, settings: Settings) -> None:
    """Delete what the retention settings say is old: conversations, inbox messages and
    journal rows after `ACTIONBOT_HISTORY_DAYS`, call rows after `ACTIONBOT_CALL_LOG_DAYS`
    (0 keeps them forever). Of several replicas on one database only the one that takes the
    `retention` lease sweeps, once per `RETENTION_SECONDS`. A failure is logged; the next
    run tries again."""
    me = process_owner()
    try:
        holder = await store.lease_holder(RETENTION_LEASE)
        if holder is not None and owner_gone(holder, me=me):  # this bot before a restart
            await store.drop_lease(RETENTION_LEASE, owner=holder)
        mine = await store.hold_lease(RETENTION_LEASE, owner=me, seconds=RETENTION_SECONDS * 0.9)
    except Exception:
        logger.exception("could not take the retention lease")
        return
    if not mine:
        logger.debug("another replica deletes old rows this hour")
        return
    work = []
    if settings.history_days > 0:
        age = settings.history_days * DAY
        work += [
            ("conversations", store.prune_conversations(age)),
            ("inbox messages", store.prune_inbox(age)),
            ("journal rows", store.prune_journal(age)),
        ]
    if settings.call_log_days > 0:
        work.append(("call rows", store.prune_calls(settings.call_log_days * DAY)))
    work.append(("expired leases", store.prune_leases(DAY)))
    for what, pruning in work:
        try:
            pruned = await pruning
        except Exception:
            logger.exception("could not delete old %s", what)
            continue
        if pruned:
            logger.info("deleted %d %s past their retention", pruned, what)


async def prune_hourly(store: Store, settings: Settings) -> None:
    """`prune` every `RETENTION_SECONDS` while the bot runs, until cancelled."""
    while True:
        await asyncio.sleep(RETENTION_SECONDS)
        await prune(store, settings)
