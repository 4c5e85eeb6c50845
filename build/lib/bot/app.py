"""Wiring: the one place where settings become connected services."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.actions import ActionSet
from bot.actions_file import load_actions
from bot.admin import Admin
from bot.config import Settings
from bot.egress import EgressPolicy
from bot.engine import Engine, EngineLimits
from bot.llm import OpenAIChatModel
from bot.store import Store
from bot.webhooks import WebhookClient

logger = logging.getLogger(__name__)
DAY = 86400.0


@dataclass(frozen=True)
class Services:
    """The connected parts a front end needs; owns nothing, `open_services` closes them."""

    settings: Settings
    actions: ActionSet
    store: Store
    webhooks: WebhookClient
    admin: Admin


def load_configured_actions(
    settings: Settings, *, environ: Mapping[str, str] | None = None
) -> ActionSet:
    """The actions file named by the settings, checked against the operator's egress policy."""
    policy = EgressPolicy(settings.egress_allow_entries)
    env = os.environ if environ is None else environ
    return load_actions(settings.actions_path, environ=env, policy=policy)


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Load the actions, open the store and the webhook client; close them on exit."""
    actions = load_configured_actions(settings)
    store = await Store.open(settings.db_path)
    try:
        async with WebhookClient.from_settings(settings, recorder=store) as webhooks:
            admin = Admin(
                actions=actions, store=store, webhooks=webhooks, result_chars=settings.result_chars
            )
            yield Services(settings, actions, store, webhooks, admin)
    finally:
        await store.close()


@asynccontextmanager
async def open_engine(services: Services, model: OpenAIChatModel) -> AsyncIterator[Engine]:
    """The engine over the services, with old conversations pruned first."""
    settings = services.settings
    if settings.history_days > 0:
        pruned = await services.store.prune_conversations(settings.history_days * DAY)
        if pruned:
            logger.info("pruned %d conversations older than %d days", pruned, settings.history_days)
    limits = EngineLimits(
        max_tool_rounds=settings.max_tool_rounds,
        history_messages=settings.history_messages,
        history_chars=settings.history_chars,
        result_chars=settings.result_chars,
    )
    try:
        yield Engine(
            actions=services.actions,
            store=services.store,
            webhooks=services.webhooks,
            model=model,
            limits=limits,
            system_prompt=settings.system_prompt,
        )
    finally:
        await model.aclose()
