"""What the Slack adapter asks Slack about a user: whether they are an admin (for `/actions`,
console buttons and `audience = "admins"`), and their email and name (for parameters with
`from = "user.email"` / `"user.name"`), each cached for a while."""

from __future__ import annotations

import time
from collections.abc import Callable

from adapters.slack.api import Api
from bot.actions.models import ActionSet, Audience, ContextSource
from bot.admin.access import AdminCheck
from bot.types import IncomingMessage

PLATFORM = "slack"
EMAIL_TTL_SECONDS = 3600.0
"""How long a user's Slack profile is reused for `from = "user.email"` / `"user.name"`."""


class People:
    """One adapter's questions about users, and their answers while fresh."""

    def __init__(
        self,
        *,
        api: Api,
        admin_ids: frozenset[str],
        actions: ActionSet,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._clock = clock
        self.admins = AdminCheck(admin_ids, clock=clock)
        parameters = [p for a in actions for p in a.parameters]
        self._needs_email = any(p.source is ContextSource.USER_EMAIL for p in parameters)
        self._needs_name = any(p.source is ContextSource.USER_NAME for p in parameters)
        self._needs_admin = any(a.audience is Audience.ADMINS for a in actions)
        self._profiles: dict[str, tuple[str, str, float]] = {}

    async def is_admin(self, user: str) -> bool:
        """An id in ACTIONBOT_ADMINS, or a workspace admin or owner (cached for 5 minutes).
        The caller has checked that the request comes from the bot's own workspace."""
        return await self.admins.allowed(PLATFORM, user, lambda: self._workspace_admin(user))

    async def with_facts(self, message: IncomingMessage) -> IncomingMessage:
        """The message with what some actions need to know about its user and Slack must
        be asked for: the email (`from = "user.email"`), admin or not (`audience`)."""
        facts: dict[str, object] = {}
        if self._needs_email or self._needs_name:
            email, name = await self._profile(message.user_id)
            facts.update(user_email=email, user_name=message.user_name or name)
        if self._needs_admin:
            facts["is_admin"] = await self.is_admin(message.user_id)
        return message.model_copy(update=facts) if facts else message

    async def _profile(self, user: str) -> tuple[str, str]:
        """The user's email (`users:read.email`) and display name from their Slack profile,
        cached for an hour; "" for what Slack does not say (an action needing it then gets
        a tool error, not a guess)."""
        known = self._profiles.get(user)
        if known is not None and known[2] > self._clock():
            return known[0], known[1]
        info = await self._api.call(self._api.client.users_info, user=user)
        profile = (info or {}).get("user", {}).get("profile", {})
        email = str(profile.get("email") or "")
        name = str(profile.get("display_name") or profile.get("real_name") or "")
        if info is not None:
            self._profiles[user] = (email, name, self._clock() + EMAIL_TTL_SECONDS)
        return email, name

    async def _workspace_admin(self, user: str) -> bool | None:
        info = await self._api.call(self._api.client.users_info, user=user)
        if info is None:
            return None  # Slack could not say: no, and asked again next time
        profile = info.get("user", {})
        return bool(
            profile.get("is_admin") or profile.get("is_owner") or profile.get("is_primary_owner")
        )
