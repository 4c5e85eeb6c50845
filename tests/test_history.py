"""The prompt's history window keeps whole tool-call units within count and size limits."""

from __future__ import annotations

from bot.llm.history import Message, units, window


def user(text: str) -> Message:
    return {"role": "user", "content": text}


def assistant(text: str) -> Message:
    return {"role": "assistant", "content": text}


def calls(*ids: str) -> Message:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "x", "arguments": "{}"}} for i in ids
        ],
    }


def result(call_id: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": "{}"}


def conversation(turns: int) -> list[Message]:
    messages: list[Message] = []
    for n in range(turns):
        messages += [user(f"q{n}"), calls(f"a{n}", f"b{n}"), result(f"a{n}"), result(f"b{n}")]
        messages.append(assistant(f"answer {n}"))
    return messages


def test_tool_results_grouped_with_their_call() -> None:
    """An assistant tool-call message and its results form one unit."""
    grouped = units(conversation(1))
    assert [len(u) for u in grouped] == [1, 3, 1]


def test_window_never_splits_a_call_from_its_results() -> None:
    """Whatever the limit, every kept tool result has its call in the window."""
    messages = conversation(10)
    for limit in range(2, 30):
        kept = window(messages, max_messages=limit, max_chars=10**6)
        call_ids = {c["id"] for m in kept for c in m.get("tool_calls") or []}
        results = [m["tool_call_id"] for m in kept if m["role"] == "tool"]
        assert all(r in call_ids for r in results), limit
        assert not kept or kept[0]["role"] == "user"
        assert len(kept) <= limit


def test_window_respects_character_budget() -> None:
    """Old units are dropped once the character budget is spent."""
    messages = [user("x" * 400), assistant("y" * 400), user("z" * 400)]
    kept = window(messages, max_messages=100, max_chars=900)
    assert kept == [messages[2]]


def test_window_stays_bounded_over_long_conversations() -> None:
    """200 turns in, the window holds no more than its message limit."""
    kept = window(conversation(200), max_messages=40, max_chars=10**6)
    assert 0 < len(kept) <= 40
    assert kept[-1]["content"] == "answer 199"


def test_nothing_kept_when_no_room() -> None:
    """With no room left, the window is empty rather than over budget."""
    assert window([user("old"), user("q" * 5000)], max_messages=10, max_chars=100) == []
    assert window([user("old")], max_messages=0, max_chars=10**6) == []
