"""Slack Web API calls as the adapter makes them: a failure is logged with what to do and
answered None, never raised, so one refused call cannot break a turn.

Two kinds of caller. `Api.call` logs every failure (a message that could not be posted is
worth a line each time). `Api.attempt` is for the optional parts of the surface (assistant
threads, streams, permalinks): it logs each cause once per process (method and error), since
a workspace without a feature refuses it on every message, and it says whether the error
means the feature is not there at all (`FEATURE_MISSING`: older workspaces, Enterprise
restrictions, an app without *Agents & AI Apps* or without the scope).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger(__name__)

Method = Callable[..., Awaitable[Any]]
HINTS = {
    "not_in_channel": "invite the bot to the channel (/invite @ActionBot)",
    "channel_not_found": "invite the bot to the channel, or check it still exists",
    "missing_scope": "add the missing scope in the app settings and reinstall the app",
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "unknown_method": "this workspace's Slack does not offer the method yet",
    "not_allowed": "the workspace (or Enterprise Grid policy) does not allow it for this app",
    "ratelimited": "Slack rate-limited the app; it retried twice already",
}
FEATURE_MISSING = frozenset({"unknown_method", "not_allowed", "missing_scope"})
"""Errors that say the workspace or the app does not have a feature, rather than that one
call went wrong: the adapter stops using the feature for the rest of the process."""


@dataclass(frozen=True)
class Attempt:
    """What an optional call got: the response, or the error Slack gave."""

    response: dict[str, Any] | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.response is not None

    @property
    def feature_missing(self) -> bool:
        return self.error in FEATURE_MISSING


class Api:
    """The adapter's Web API client, with the two ways of calling it."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._logged: set[tuple[str, str]] = set()

    async def call(self, method: Method, **kwargs: Any) -> dict[str, Any] | None:
        """A Web API call whose failure is logged with what to do, not raised."""
        try:
            response = await method(**_present(kwargs))
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            logger.warning(
                "Slack %s failed in %s: %s; %s",
                api_name(method),
                kwargs.get("channel") or kwargs.get("channel_id"),
                error,
                hint(error),
            )
            return None
        return _data(response)

    async def attempt(
        self, method: Method, *, then: str, if_missing: str = "", **kwargs: Any
    ) -> Attempt:
        """An optional call; a failure is logged once per method and error, saying what the
        bot does instead: `then`, or `if_missing` when the error says the feature is not
        there (`FEATURE_MISSING`)."""
        try:
            response = await method(**_present(kwargs))
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            missing = error in FEATURE_MISSING and if_missing
            self.warn_once(api_name(method), error, if_missing if missing else then)
            return Attempt(None, error)
        return Attempt(_data(response))

    def warn_once(self, method: str, error: str, then: str) -> None:
        """Log that `method` answered `error` and what happens instead, once per process."""
        if (method, error) in self._logged:
            return
        self._logged.add((method, error))
        logger.warning(
            "Slack %s answered %s (%s); %s. Logged once per cause.",
            method,
            error,
            hint(error),
            then,
        )


def api_name(method: Method) -> str:
    """`chat_startStream` as Slack spells it: `chat.startStream`."""
    return getattr(method, "__name__", "method").replace("_", ".")


def hint(error: str) -> str:
    return HINTS.get(error, "see Slack's documentation for this error")


def _present(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def _data(response: Any) -> dict[str, Any]:
    data = getattr(response, "data", None)
    return dict(data) if isinstance(data, dict) else {}
