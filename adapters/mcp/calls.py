"""One `tools/call`, down the same path as a chat call of the action.

The arguments are checked by the core (`parse_arguments`: a problem is a tool error, no
request), context parameters are filled by ActionBot, and the call goes through the webhook
client (egress policy, signing, limits, recording in the stats). Its `Idempotency-Key` is
the engine's (`idempotency_key`) with `mcp:<connection>:<request id>` as the event key, so
the same MCP request keeps its key, and a request of another connection never shares it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from typing import Any

import mcp_types as types

from adapters.mcp import wording
from adapters.mcp.tools import Flags, Offered
from bot.actions.models import Action, Arguments, ContextSource, parse_arguments, project
from bot.errors import ArgumentError
from bot.outbound.webhooks import WebhookClient, canonical_json, idempotency_key
from bot.types import ActionResult, Outcome, caller_header

PLATFORM = "mcp"


@dataclass(frozen=True)
class Caller:
    """Who calls, as far as ActionBot knows: one MCP connection (`stdio:<id>` for this
    process's stdin, `http:<id>` for an HTTP session). A client's name for itself is not
    verified by anything, so it is not used."""

    connection: str

    @property
    def conversation(self) -> str:
        """Where the calls are recorded in the stats: `mcp:<connection>`."""
        return f"{PLATFORM}:{self.connection}"

    @property
    def header(self) -> str:
        """`X-ActionBot-Caller`: `platform=mcp; team=; user=; channel=<connection>`."""
        return caller_header(PLATFORM, "", "", self.connection)

    def context(self, request: str) -> dict[ContextSource, str]:
        """What context parameters may be filled with over MCP: ActionBot's own facts."""
        return {
            ContextSource.PLATFORM: PLATFORM,
            ContextSource.CONVERSATION_ID: self.connection,
            ContextSource.MESSAGE_ID: f"{self.connection}:{request}",
        }


@dataclass(frozen=True)
class PlannedCall:
    """A call checked and keyed, before anything is sent."""

    action: Action
    arguments: Arguments
    key: str
    """The `Idempotency-Key`."""

    def rekeyed(self, key: str) -> PlannedCall:
        return replace(self, key=key)


def refusal(text: str) -> types.CallToolResult:
    """A tool error: the agent reads why, no endpoint was called."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


class ToolCalls:
    """Plans and sends the calls of MCP clients."""

    def __init__(
        self,
        *,
        offered: Offered,
        webhooks: WebhookClient,
        instance_key: bytes,
        result_chars: int,
        dry_run: Flags | None = None,
    ) -> None:
        self.offered = offered
        self.dry_run = dry_run
        """Every action's dry-run mode (`Admin.dry_run_flags`), read on each call."""
        self.webhooks = webhooks
        self.instance_key = instance_key
        self.result_chars = result_chars

    async def plan(
        self, name: str, raw: dict[str, Any] | None, *, caller: Caller, request: str
    ) -> PlannedCall | types.CallToolResult:
        """The checked, keyed call, or the tool error that says why there is none."""
        found = await self.offered.find(name)
        if isinstance(found, str):
            return refusal(found)
        try:
            arguments = parse_arguments(found, raw or {}, context=caller.context(request))
        except ArgumentError as exc:
            return refusal(wording.bad_arguments(exc.problems))
        event = f"{caller.conversation}:{request}"
        key = idempotency_key(self.instance_key, event, found.name, canonical_json(arguments), 0)
        return PlannedCall(found, arguments, key)

    async def send(self, planned: PlannedCall, caller: Caller) -> types.CallToolResult:
        """Call the endpoint; the agent gets what the chat's AI would: outcome, status and
        the JSON (`response_fields` only, cut to `ACTIONBOT_RESULT_CHARS`)."""
        modes = await self.dry_run() if self.dry_run is not None else {}
        result = await self.webhooks.call(
            planned.action,
            planned.arguments,
            conversation=caller.conversation,
            call_id=planned.key,
            caller=caller.header,
            dry_run=modes.get(planned.action.name),
        )
        return tool_result(result, planned.action, self.result_chars)


def tool_result(result: ActionResult, action: Action, budget: int) -> types.CallToolResult:
    shown = functools.partial(project, paths=action.response_fields)
    text = result.for_model(budget, shown if action.response_fields else None)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=json.loads(text),
        is_error=not result.ok and result.outcome is not Outcome.DRY_RUN,
    )
