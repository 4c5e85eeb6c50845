"""Block Kit building blocks, within Slack's limits: at most 50 blocks a message, section
text at most 3000 characters, at most 10 fields of at most 2000 characters, header text
plain_text of at most 150 characters. Plain dicts only (no slack_bolt import).

Text passed in is mrkdwn the caller has escaped (`format.escape`); these helpers only cut it
to fit, never through an `&amp;`-style entity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.slack.format import escape
from bot.chunks import split_message

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75

FENCE = "```"
CODE_ROOM = MAX_SECTION_TEXT - 2 * len(FENCE) - 2
"""Characters of code that fit in one section between its fences."""


def header(text: str) -> Block:
    plain = clip(" ".join(text.split()), MAX_HEADER_TEXT) or " "
    return {"type": "header", "text": {"type": "plain_text", "text": plain, "emoji": True}}


def section(mrkdwn: str, *, accessory: Block | None = None, block_id: str = "") -> Block:
    text = clip(mrkdwn, MAX_SECTION_TEXT) or " "
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id[:255]
    return block


def fields(texts: list[str], *, text: str | None = None) -> Block:
    block: Block = {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip(f, MAX_FIELD_TEXT)} for f in texts[:MAX_FIELDS]],
    }
    if text:
        block["text"] = {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}
    return block


def context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def button(text: str, action_id: str, value: str, style: str = "") -> Block:
    """A button; `style` is "primary", "danger" or "" (Slack's default look)."""
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, MAX_BUTTON_TEXT)},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def line_sections(title: str, lines: list[str]) -> list[Block]:
    """`title` and then `lines`, over as many sections as the text limit needs."""
    groups: list[list[str]] = [[title]]
    size = len(title)
    for line in (clip(line, MAX_SECTION_TEXT - len(title) - 1) for line in lines):
        if size + 1 + len(line) > MAX_SECTION_TEXT:
            groups.append([])
            size = -1
        groups[-1].append(line)
        size += 1 + len(line)
    return [section("\n".join(group)) for group in groups]


def code_sections(text: str) -> list[Block]:
    """Preformatted `text` over as many code-block sections as the text limit needs."""
    pieces = split_message(text, CODE_ROOM)
    # Escaping can lengthen a piece past the limit (`&` → `&amp;`): split those finer.
    fitted = [
        finer
        for piece in pieces
        for finer in (
            [piece] if len(escape(piece)) <= CODE_ROOM else split_message(piece, CODE_ROOM // 5)
        )
    ]
    return [section(code(piece)) for piece in fitted]


def code(text: str) -> str:
    """`text` as a code block of at most one section, escaped, cut with a marker if longer."""
    # A "```" inside would end the block early; a zero-width space keeps it literal.
    body = escape(text.replace(FENCE, "`\u200b``"))
    return f"{FENCE}\n{clip(body, CODE_ROOM)}\n{FENCE}"


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with "…", never through an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def cap(blocks: list[Block]) -> list[Block]:
    """At most `MAX_BLOCKS`, the last saying where the rest can be seen."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    note = "…cut here: too long for one Slack message. `actionbot actions` in a shell shows all."
    return [*blocks[: MAX_BLOCKS - 1], context(note)]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def when(moment: datetime | None) -> str:
    """A Slack date token: shown in each reader's time zone, with a UTC fallback."""
    if moment is None:
        return "-"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"
