"""Slack text: Markdown → mrkdwn for posted messages, and Markdown made safe for streamed
ones (`chat.startStream` / `appendStream` take standard Markdown).

Pure functions (no slack_bolt import), so the rendering is testable on its own. Slack treats
`&`, `<` and `>` as control characters everywhere in mrkdwn, code included, so every piece of
text from the model, an admin or an endpoint is escaped: model text can then never form a
`<!channel>` ping, a `<@U…>` mention or a disguised link. The only `<…>` this module writes
are links it built itself. Block Kit lives in `blocks` (building blocks), `results`
(`/actions`), `console` and `cards`.
"""

from __future__ import annotations

import re

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_FENCE = "```"
_CONTROL = re.compile(r"<(?!(?:https?://|mailto:)[^\s<>|]*>)")
"""A `<` that is not the start of a plain autolink: in Slack it may open a control sequence."""
ZERO_WIDTH_SPACE = "\u200b"


def escape(text: str) -> str:
    """`text` with Slack's three control characters as the entities Slack expects."""
    return text.translate(_ESCAPES)


def stream_markdown(markdown: str) -> str:
    """Standard Markdown for a streamed message, unchanged but for every `<` that could open a
    Slack control sequence (`<!here>`, `<@U…>`, `<#C…>`, a `<url|label>` disguise): a
    zero-width space after it keeps it a plain `<`. Autolinks (`<https://…>`) stay links."""
    return _CONTROL.sub("<" + ZERO_WIDTH_SPACE, markdown)


# --- Markdown → mrkdwn --------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^ {0,3}>\s?(.*)$")
_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?P<code_text>.+?)(?P=ticks))"
    r"|!?\[(?P<label>[^\]\n]+)\]\(\s*<?(?P<url>[^)\s<>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)"
    r"|<(?P<autolink>(?:https?://|mailto:)[^\s<>]+)>"
    r"|\*\*(?P<bold>\S(?:.*?\S)?)\*\*"
    r"|(?<!\w)__(?P<bold2>\S(?:.*?\S)?)__(?!\w)"
    r"|~~(?P<strike>\S(?:.*?\S)?)~~"
    r"|\*(?P<italic>[^\s*](?:[^*]*?[^\s*])?)\*"
    r"|(?<!\w)_(?P<italic2>[^\s_](?:[^_]*?[^\s_])?)_(?!\w)"
)
_LINK_SCHEMES = ("https://", "http://", "mailto:")


def to_mrkdwn(markdown: str) -> str:
    """Standard Markdown (what LLMs write) as Slack mrkdwn, with all text escaped."""
    out: list[str] = []
    in_code = False
    for line in markdown.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if not in_code and stripped.startswith(_FENCE) and "`" not in stripped.lstrip("`"):
            in_code = True
            out.append(_FENCE)  # mrkdwn has no info string: "json" would show as code
        elif in_code and stripped.startswith(_FENCE) and not stripped.strip("`"):
            in_code = False
            out.append(_FENCE)
        else:
            out.append(escape(line) if in_code else _block_line(line))
    if in_code:
        out.append(_FENCE)
    return "\n".join(out)


def _block_line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    if quote := _QUOTE.match(line):
        # A bare ">" cannot open a control sequence (only "<" can): Slack's quote marker.
        return f"> {_block_line(quote.group(1))}"
    if heading := _HEADING.match(line):
        title = heading.group(1).replace("**", "").replace("__", "").strip()
        return f"*{_inline(title)}*" if title else ""
    if bullet := _BULLET.match(line):
        return f"{bullet.group(1)}• {_inline(bullet.group(2))}"
    return _inline(line)


def _inline(text: str) -> str:
    """Inline Markdown → mrkdwn; everything between the constructs is escaped as is."""
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[position : match.start()]))
        out.append(_convert(match))
        position = match.end()
    out.append(escape(text[position:]))
    return "".join(out)


def _convert(match: re.Match[str]) -> str:
    groups = match.groupdict()
    if groups["code"] is not None:
        return f"`{escape(groups['code_text'])}`"
    if groups["url"] is not None:
        return _link(groups["url"], groups["label"])
    if groups["autolink"] is not None:
        return _link(groups["autolink"], None)
    for name, mark in (("bold", "*"), ("bold2", "*"), ("strike", "~")):
        if groups[name] is not None:
            return f"{mark}{_inline(groups[name])}{mark}"
    inner = groups["italic"] if groups["italic"] is not None else groups["italic2"]
    return f"_{_inline(inner)}_"


def _link(url: str, label: str | None) -> str:
    if not url.lower().startswith(_LINK_SCHEMES):
        return escape(f"{label} ({url})" if label else url)
    # A "|" would end the URL early and let the rest pose as the link's label.
    target = escape(url.replace("|", "%7C"))
    return f"<{target}|{escape(label)}>" if label else f"<{target}>"
