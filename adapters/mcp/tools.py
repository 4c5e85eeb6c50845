"""Which actions are MCP tools, and how each one looks in `tools/list`.

An action is served when it is active (an admin's toggle over the file's `active`) and
nothing about it needs what MCP cannot verify: `audience = "admins"` (an MCP client is no
verified admin), `channels` (an MCP client is in no chat channel) and context parameters
taken from the chat user (`from = "user.id"` and the like) keep an action in chat only.
`from = "platform"`, `"conversation.id"` and `"message.id"` are filled by ActionBot itself
(`mcp`, the MCP connection, the MCP request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types

from adapters.mcp import wording
from bot.actions.models import Action, ActionSet, Audience, ContextSource, Method, tool_schema

Flags = Callable[[], Awaitable[dict[str, bool]]]
"""Every action's current state (`Admin.active_flags`): read on every listing and call."""

CHAT_ONLY_SOURCES = frozenset(
    {
        ContextSource.USER_ID,
        ContextSource.USER_NAME,
        ContextSource.USER_EMAIL,
        ContextSource.TEAM_ID,
        ContextSource.CHANNEL_ID,
    }
)
"""Context parameters only a chat platform can vouch for."""


def chat_only(action: Action) -> str | None:
    """Why `action` is never served over MCP, or None when it is (while active)."""
    if action.audience is Audience.ADMINS:
        return wording.NOT_FOR_ADMINS
    if action.channels:
        return wording.CHANNELS_ONLY
    sources = [p.source for p in action.parameters if p.source in CHAT_ONLY_SOURCES]
    if sources:
        return wording.needs_identity([s for s in sources if s is not None])
    return None


def input_schema(action: Action) -> dict[str, Any]:
    """The JSON schema of the arguments: the chat tool's parameters (context ones left out)."""
    parameters: dict[str, Any] = tool_schema(action)["function"]["parameters"]
    return parameters


def as_tool(action: Action) -> types.Tool:
    """The action as an MCP tool. A GET without `confirm` is read-only; a `confirm = true`
    action is destructive (its calls are confirmed by the user first)."""
    hints = types.ToolAnnotations(
        title=action.display_name,
        read_only_hint=action.method is Method.GET and not action.confirm,
        destructive_hint=True if action.confirm else None,
        open_world_hint=True,
    )
    return types.Tool(
        name=action.name,
        title=action.display_name,
        description=action.description,
        input_schema=input_schema(action),
        annotations=hints,
    )


class Offered:
    """The actions served now, looked at afresh on every request (toggles live in the
    database, reloads replace the set in place)."""

    def __init__(self, actions: ActionSet, flags: Flags) -> None:
        self.actions = actions
        self.flags = flags

    async def now(self) -> dict[str, Action]:
        """The served actions by name, in the actions file's order."""
        flags = await self.flags()
        return {
            a.name: a for a in self.actions if flags.get(a.name, a.active) and chat_only(a) is None
        }

    async def tools(self) -> list[types.Tool]:
        return [as_tool(action) for action in (await self.now()).values()]

    async def find(self, name: str) -> Action | str:
        """The served action `name`, or why there is none (for the calling agent)."""
        served = await self.now()
        if name in served:
            return served[name]
        if name not in self.actions:
            return wording.unknown_tool(name, list(served))
        why = chat_only(self.actions.get(name))
        return wording.turned_off(name) if why is None else wording.not_served(name, why)
