"""Calls of `confirm = true` actions: the user confirms each one through MCP elicitation.

Handshake-era connections (protocol 2025-x) ask at once: an `elicitation/create` request to
the client while the call waits. On 2026-07-28 connections a server may not send requests,
so the call answers `input_required` with the same question; the client asks its user and
calls again with the answer and the sealed `requestState` (bound to the tool and its
arguments by the SDK's `RequestStateBoundary`), which carries the first round's
`Idempotency-Key`. Only *accept* sends the call; decline or cancel send nothing. A client
that cannot elicit gets a refusal that sends the user to the chat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from adapters.mcp import wording
from adapters.mcp.calls import PlannedCall, refusal
from bot import wording as chat_wording

logger = logging.getLogger(__name__)

ANSWER = "confirm"
"""The key of the confirmation in `inputRequests` / `inputResponses`."""
NO_FIELDS: dict[str, Any] = {"type": "object", "properties": {}}
"""Nothing to fill in: accepting is the answer."""

Decision = PlannedCall | types.CallToolResult | types.InputRequiredResult
"""Send this call, answer with this tool result, or ask the client for input first."""


def question(planned: PlannedCall) -> str:
    """The chat card's question (every argument shown), and what the answers do."""
    asked = chat_wording.confirm_text(planned.action.display_name, dict(planned.arguments))
    return f"{asked} {wording.CONFIRM_HINT}"


async def confirmed(
    ctx: ServerRequestContext[Any, Any],
    params: types.CallToolRequestParams,
    *,
    planned: PlannedCall,
    ttl: float,
) -> Decision:
    """What to do with a planned call of a `confirm = true` action; the user has `ttl`
    seconds to answer (`ACTIONBOT_CONFIRM_TTL`), as on a chat card."""
    answered = params.input_responses or {}
    if params.request_state is not None and ANSWER in answered:
        return _answered(answered[ANSWER], planned.rekeyed(params.request_state))
    if not _asks_forms(ctx.session.client_capabilities):
        return refusal(wording.CONFIRM_IN_CHAT)
    form = types.ElicitRequestFormParams(message=question(planned), requested_schema=NO_FIELDS)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:  # ask through the client's next call
        return types.InputRequiredResult(
            input_requests={ANSWER: types.ElicitRequest(params=form)},
            request_state=planned.key,
        )
    try:
        async with asyncio.timeout(ttl):
            answer = await ctx.session.elicit_form(
                form.message, form.requested_schema, related_request_id=ctx.request_id
            )
    except (MCPError, TimeoutError) as exc:  # no channel to ask on, a failed or late answer
        logger.info("confirmation of %s not given: %r", planned.action.name, exc)
        return refusal(wording.NOT_CONFIRMED)
    return _answered(answer, planned)


def _asks_forms(capabilities: types.ClientCapabilities | None) -> bool:
    """Whether the client can put a question to its user (form elicitation; an empty
    `elicitation` capability means forms, as before URL mode existed)."""
    asks = capabilities.elicitation if capabilities is not None else None
    return asks is not None and (asks.form is not None or asks.url is None)


def _answered(answer: types.InputResponse, planned: PlannedCall) -> Decision:
    if isinstance(answer, types.ElicitResult) and answer.action == "accept":
        return planned
    return refusal(wording.NOT_CONFIRMED)
