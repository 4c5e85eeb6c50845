"""Discord embeds within Discord's limits: cards measured, packed and cut before they are built.

Discord rejects a whole message that breaks any of its embed limits, so all are enforced
here: at most 10 embeds of at most 25 fields; title 256, description 4096, field name 256,
field value 1024 and footer 2048 characters; and 6000 characters across all the embeds of a
message (title, description, field names and values, footer, author name: what
`len(discord.Embed)` counts). When the total is over, the longest texts are cut evenly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import discord

from adapters.discord.markdown import clip

MAX_EMBEDS = 10
MAX_FIELDS = 25
MAX_TOTAL = 6000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MIN_KEEP = 40
"""When the 6000-character total forces a cut, no text is cut shorter than this."""
MIN_FIELD_KEEP = 200
"""Field values are cut down to this before a description is cut at all."""

EmbedField = tuple[str, str, bool]
"""An embed field: name, value, inline."""


@dataclass
class Card:
    """One embed as plain text, measured and cut before it is built."""

    colour: discord.Colour
    title: str | None = None
    description: str | None = None
    fields: list[EmbedField] = field(default_factory=list)
    footer: str | None = None

    def __post_init__(self) -> None:
        self.title = clip(self.title, MAX_TITLE) if self.title else None
        self.description = clip(self.description, MAX_DESCRIPTION) if self.description else None
        self.footer = clip(self.footer, MAX_FOOTER) if self.footer else None
        self.fields = self.fields[:MAX_FIELDS]

    def size(self) -> int:
        """Characters as Discord counts them toward the 6000 of a message."""
        texts = [self.title, self.description, self.footer]
        return sum(len(t or "") for t in texts) + sum(len(n) + len(v) for n, v, _ in self.fields)

    def build(self) -> discord.Embed:
        embed = discord.Embed(colour=self.colour, title=self.title, description=self.description)
        for name, value, inline in self.fields:
            embed.add_field(name=name, value=value, inline=inline)
        if self.footer:
            embed.set_footer(text=self.footer)
        return embed


def to_embeds(cards: list[Card]) -> list[discord.Embed]:
    """The first `MAX_EMBEDS` cards as embeds, cut to fit one message together."""
    return [card.build() for card in _fit(cards[:MAX_EMBEDS])]


def embed_field(name: str, value: str, *, inline: bool = False) -> EmbedField:
    """A field cut to Discord's limits; never empty, which Discord would refuse."""
    return (clip(name, MAX_FIELD_NAME) or "-", clip(value, MAX_FIELD_VALUE) or "-", inline)


def line_fields(name: str, lines: list[str]) -> list[EmbedField]:
    """`lines` under `name`, over as many fields as the value limit needs."""
    groups: list[list[str]] = [[]]
    size = 0
    for line in (clip(line, MAX_FIELD_VALUE) for line in lines):
        if groups[-1] and size + 1 + len(line) > MAX_FIELD_VALUE:
            groups.append([])
            size = 0
        groups[-1].append(line)
        size += len(line) + (1 if size else 0)
    return [
        embed_field(name if i == 0 else f"{name} (continued)", "\n".join(group))
        for i, group in enumerate(groups)
    ]


def pack(
    fields: list[EmbedField], *, title: str, colour: discord.Colour, footer: str | None = None
) -> list[Card] | None:
    """`fields` over as few embeds as needed, or None when they cannot all fit one message."""
    groups = [fields[i : i + MAX_FIELDS] for i in range(0, len(fields), MAX_FIELDS)]
    if not groups or len(groups) > MAX_EMBEDS:
        return None
    cards = [Card(colour, title if i == 0 else None, fields=g) for i, g in enumerate(groups)]
    cards[-1].footer = clip(footer, MAX_FOOTER) if footer else None
    return cards if sum(c.size() for c in cards) <= MAX_TOTAL else None


def _fit(cards: list[Card]) -> list[Card]:
    """Bring all embeds together within Discord's total by cutting the longest texts evenly:
    field values first, as descriptions carry the main text (the AI description, the body),
    and descriptions too only when cutting values to `MIN_FIELD_KEEP` would not be enough."""
    while sum(c.size() for c in cards) > MAX_TOTAL:
        descriptions = _cap(cards, descriptions=False) < MIN_FIELD_KEEP
        cap = _cap(cards, descriptions=descriptions)
        if cap < MIN_KEEP:
            _drop_last(cards)
            continue
        for card in cards:
            if descriptions and card.description and len(card.description) > cap:
                card.description = clip(card.description, cap)
            card.fields = [(name, clip(value, cap), inline) for name, value, inline in card.fields]
    return cards


def _cap(cards: list[Card], *, descriptions: bool) -> int:
    """The largest length for field values (and descriptions) that brings the total in."""
    lengths = [len(value) for c in cards for _, value, _ in c.fields]
    if descriptions:
        lengths += [len(c.description or "") for c in cards]
    room = MAX_TOTAL - (sum(c.size() for c in cards) - sum(lengths))
    low, high = 0, max(lengths, default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if sum(min(length, middle) for length in lengths) <= room:
            low = middle
        else:
            high = middle - 1
    return low if room >= 0 else 0


def _drop_last(cards: list[Card]) -> None:
    """The last resort, which the layouts in `format` leave unreached: drop fields, then
    embeds."""
    card = next((c for c in reversed(cards) if c.fields), None)
    if card is not None:
        card.fields.pop()
    elif len(cards) > 1:
        cards.pop()
    else:
        cards[0].footer = None
