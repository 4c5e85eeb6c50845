"""`split_message`: every piece within the limit, cut at the most natural place, code blocks
closed and reopened across pieces, and no content lost or reordered."""

from __future__ import annotations

import random

import pytest

from bot.chunks import MIN_LIMIT, split_message

LIMITS = [MIN_LIMIT, 50, 200, 2000, 3900]


def words(rng: random.Random, count: int) -> str:
    return " ".join(
        "".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 12))) for _ in range(count)
    )


def sample_texts() -> list[str]:
    """Deterministic varied inputs: prose, lists, code blocks, a long word, odd whitespace."""
    rng = random.Random(20240601)
    texts = []
    for _ in range(25):
        parts = []
        for _ in range(rng.randint(1, 12)):
            kind = rng.random()
            if kind < 0.5:
                parts.append(words(rng, rng.randint(1, 300)))
            elif kind < 0.7:
                parts.append("\n".join(f"- {words(rng, rng.randint(1, 20))}" for _ in range(8)))
            elif kind < 0.9:
                body = "\n".join(f"  {words(rng, rng.randint(0, 15))}" for _ in range(30))
                parts.append(f"```{rng.choice(['', 'json', 'python'])}\n{body}\n```")
            else:
                parts.append("x" * rng.randint(100, 5000))
        texts.append(rng.choice(["\n\n", "\n", "\n\n\n  \n"]).join(parts))
    return texts


TEXTS = sample_texts()


def without_fences(text: str) -> str:
    """The non-whitespace content, with fence lines (which splitting may add) left out."""
    lines = [line for line in text.split("\n") if not line.strip().startswith("```")]
    return "".join("".join(lines).split())


@pytest.mark.parametrize("limit", LIMITS)
def test_every_piece_fits_and_is_not_empty(limit: int) -> None:
    """No piece exceeds the limit (added fences included), none is blank or edged by blanks."""
    for text in TEXTS:
        for piece in split_message(text, limit):
            assert 0 < len(piece) <= limit
            assert piece.strip()
            assert piece == piece.rstrip()
            assert piece.split("\n", 1)[0].strip()


@pytest.mark.parametrize("limit", LIMITS)
def test_content_is_kept_in_order(limit: int) -> None:
    """Rejoining the pieces gives back every non-whitespace character, in order."""
    for text in TEXTS:
        pieces = split_message(text, limit)
        assert without_fences("\n".join(pieces)) == without_fences(text)


@pytest.mark.parametrize("limit", LIMITS)
def test_code_fences_are_balanced_in_every_piece(limit: int) -> None:
    """Each piece has an even number of fences, so no block runs on into the next message."""
    for text in TEXTS:
        for piece in split_message(text, limit):
            assert piece.count("```") % 2 == 0, piece


def test_cut_code_block_is_reopened_with_its_info_string() -> None:
    """A JSON block cut in two is closed, then reopened as ```json with the rest inside."""
    rows = "\n".join(f'  "key{i}": "value {i}",' for i in range(60))
    pieces = split_message(f"Here it is:\n```json\n{{\n{rows}\n}}\n```\nDone.", 400)
    assert len(pieces) > 2
    assert pieces[0].startswith("Here it is:")
    for piece in pieces[1:-1]:
        assert piece.startswith("```json\n")
        assert piece.endswith("\n```")
    assert pieces[-1].startswith("```json\n")
    assert pieces[-1].endswith("```\nDone.")


def test_prefers_paragraph_breaks() -> None:
    """With paragraphs that fit, every cut falls between paragraphs, not at a line inside one."""
    rng = random.Random(7)
    paragraphs = [
        "\n".join(words(rng, rng.randint(3, 12)) for _ in range(rng.randint(1, 4)))
        for _ in range(30)
    ]
    pieces = split_message("\n\n".join(paragraphs), 500)
    assert len(pieces) > 1
    rejoined = [p for piece in pieces for p in piece.split("\n\n")]
    assert rejoined == paragraphs


def test_prefers_line_breaks_over_spaces() -> None:
    """Without paragraph breaks, cuts fall at line ends, keeping each list item whole."""
    items = [f"- item {i} with a few words" for i in range(50)]
    pieces = split_message("\n".join(items), 120)
    assert [line for piece in pieces for line in piece.split("\n")] == items


def test_long_word_is_cut_hard() -> None:
    """A single word longer than the limit is cut into full-size pieces."""
    pieces = split_message("y" * 4500, 2000)
    assert [len(p) for p in pieces] == [2000, 2000, 500]


def test_short_text_is_one_trimmed_piece() -> None:
    """A reply that fits comes back as one piece without surrounding blank lines."""
    assert split_message("\n\n  \nHello there!\n\n", 2000) == ["Hello there!"]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
def test_blank_text_gives_no_pieces(text: str) -> None:
    """Nothing to say means nothing to post."""
    assert split_message(text, 2000) == []


def test_unclosed_code_block_is_closed() -> None:
    """A block the model never closed is closed, so it cannot swallow the platform's layout."""
    assert split_message("Look:\n```\nprint(1)", 2000) == ["Look:\n```\nprint(1)\n```"]


def test_block_is_not_left_empty_at_a_cut() -> None:
    """A block that would start at the very end of a piece moves whole to the next piece."""
    text = "a" * 20 + " " + "b" * 20 + "\n```\n" + "code line\n" * 3 + "```"
    pieces = split_message(text, 50)
    assert pieces[0] == "a" * 20 + " " + "b" * 20
    assert pieces[1].startswith("```\ncode line")


def test_too_small_limit_is_refused() -> None:
    """A limit with no room for fences is a programming error, not a silent overflow."""
    with pytest.raises(ValueError, match="at least"):
        split_message("hello", MIN_LIMIT - 1)
