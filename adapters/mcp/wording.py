"""What the MCP adapter tells the calling agent (the chat's wording is in `bot.wording`)."""

from __future__ import annotations

from bot.actions.models import ContextSource

NOT_FOR_ADMINS = (
    "is offered to admins only (audience = 'admins'), and an MCP client is not a verified admin"
)
CHANNELS_ONLY = "is offered in some chat channels only (channels = [...]), never over MCP"
NOT_CONFIRMED = "The action was NOT called: the user did not confirm it."
CONFIRM_IN_CHAT = (
    "The action was NOT called: it needs the user's confirmation (confirm = true), and this "
    "MCP client cannot ask for it (no elicitation support). Ask for it in chat instead, where "
    "the user confirms it on a card."
)
CONFIRM_HINT = "Accept to call the action now; decline to leave it undone."


def needs_identity(sources: list[ContextSource]) -> str:
    """Why an action that takes the asking user's verified identity is not served."""
    named = ", ".join(sorted({source.value for source in sources}))
    return f"takes {named} from the verified chat user (from = ...), which MCP cannot verify"


def not_served(name: str, why: str) -> str:
    return f"The action {name!r} {why}. It is not available over MCP."


def unknown_tool(name: str, offered: list[str]) -> str:
    available = ", ".join(offered) if offered else "none"
    return f"There is no available action named {name!r} (available: {available})."


def turned_off(name: str) -> str:
    return f"The action {name!r} is turned off by an admin, so it was not called."


def bad_arguments(problems: list[str]) -> str:
    return "The action was NOT called: " + "; ".join(problems) + "."
