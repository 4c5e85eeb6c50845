"""Splitting a long reply into messages a chat platform accepts (Slack ~3900, Discord 2000).

Platform-neutral: `split_message` cuts at the most natural place that fits — a paragraph
break, else a line break, else a space, else mid-word — and keeps fenced code blocks intact
for the reader: a block cut across two messages is closed at the end of the first and
reopened, with the same info string (```json), at the start of the next. The added fences
count toward the limit.
"""

from __future__ import annotations

import re

FENCE = "```"
CLOSE = "\n" + FENCE
MIN_LIMIT = 32
"""Below this there is no room for a reopened fence, a closing fence and some text."""
_SEPARATORS = ("\n\n", "\n", " ")
"""Where a cut may fall, most preferred first; the separator itself is dropped."""
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")


def split_message(text: str, limit: int) -> list[str]:
    """`text` as pieces of at most `limit` characters each, none empty, in order."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} characters, got {limit}")
    rest = _trim(text.replace("\r\n", "\n"))
    if _open_fence(rest) is not None:
        rest += CLOSE  # an unclosed block would swallow everything after it on the platform
    pieces: list[str] = []
    fence: str | None = None
    while rest:
        piece, rest, fence = _next_piece(rest, limit, fence)
        pieces.append(piece)
    return pieces


def _next_piece(rest: str, limit: int, fence: str | None) -> tuple[str, str, str | None]:
    """The next piece, the text left after it, and the fence line to reopen (if any)."""
    prefix = f"{_reopened(fence, limit)}\n" if fence else ""
    if len(prefix) + len(rest) <= limit:
        return prefix + rest, "", None
    if not rest[: limit - len(prefix)].strip():
        rest = rest.lstrip()  # an indentation wider than the whole budget: drop it
    piece, after = _cut(rest, prefix, limit - len(prefix))
    opened = _open_fence(piece)
    if opened is None:
        return piece, after, None
    # The cut falls inside a code block: leave room to close it in this piece.
    piece, after = _cut(rest, prefix, limit - len(prefix) - len(CLOSE))
    opened = _open_fence(piece)
    if opened is None:
        return piece, after, None
    line, start = opened
    if start > len(prefix) and not piece[start:].partition("\n")[2].strip():
        head = piece[:start].rstrip()  # the block would be empty here: start it next time
        if head:
            return head, _trim(rest[start - len(prefix) :]), None
    first, _, remainder = after.partition("\n")
    if _is_closing(first):
        return piece + CLOSE, _trim(remainder), None
    return piece + CLOSE, after, line


def _cut(rest: str, prefix: str, budget: int) -> tuple[str, str]:
    """Cut `rest` to at most `budget` characters at the best place: (piece, what follows)."""
    for separator in _SEPARATORS:
        # A separator just past the budget is still a clean cut: it is dropped.
        at = rest.rfind(separator, 0, budget + len(separator))
        if at > 0 and rest[:at].strip():
            return prefix + rest[:at].rstrip(), _trim(rest[at + len(separator) :])
    return prefix + rest[:budget].rstrip(), _trim(rest[budget:])


def _open_fence(text: str) -> tuple[str, int] | None:
    """The fence line of a code block still open at the end of `text`, and where it starts."""
    opened: tuple[str, int] | None = None
    position = 0
    for line in text.split("\n"):
        stripped = line.strip()
        if opened is None and _is_opening(stripped):
            opened = (stripped, position)
        elif opened is not None and _is_closing(stripped):
            opened = None
        position += len(line) + 1
    return opened


def _is_opening(stripped: str) -> bool:
    # "```code```" on one line is a complete block, not an opening fence.
    return stripped.startswith(FENCE) and "`" not in stripped.lstrip("`")


def _is_closing(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(FENCE) and not stripped.strip("`")


def _reopened(fence: str, limit: int) -> str:
    """The fence line to reopen with; a plain fence when the info string is unreasonably long."""
    return fence if len(fence) <= limit // 4 else FENCE


def _trim(text: str) -> str:
    """Without leading blank lines (indentation of the first line kept) or trailing blanks."""
    return _LEADING_BLANK_LINES.sub("", text).rstrip()
