"""Reading Chat Completions answers, and what to do when no model is configured."""

from __future__ import annotations

import json

import pytest
from conftest import make_settings

from bot.errors import ConfigError, LLMResponseError
from bot.llm.client import OpenAIChatModel, parse_completion


def test_tool_calls_and_usage_are_read() -> None:
    """A tool-call completion yields the calls in order and the reported token counts."""
    raw = json.dumps(
        {
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {
                                    "name": "check_inventory",
                                    "arguments": '{"part_name":"screen"}',
                                },
                            },
                            {
                                "id": "c2",
                                "type": "function",
                                "function": {"name": "other", "arguments": ""},
                            },
                        ],
                    }
                }
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 12},
        }
    ).encode()

    turn = parse_completion(raw)

    assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [
        ("c1", "check_inventory", '{"part_name":"screen"}'),
        ("c2", "other", ""),
    ]
    assert (turn.usage.prompt_tokens, turn.usage.completion_tokens) == (120, 12)


def test_text_answer_is_stripped() -> None:
    """A plain answer comes back as its text."""
    raw = b'{"choices":[{"message":{"role":"assistant","content":"  Hello!\\n"}}]}'
    assert parse_completion(raw).text == "Hello!"


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>bad gateway</html>",
        b'{"choices":[{"nope":1}]}',
        b'{"choices":[{"message":{"tool_calls":[{"id":"x"}]}}]}',
        b"[1,2]",
    ],
)
def test_malformed_completion_is_a_typed_error(raw: bytes) -> None:
    """Anything that is not a completion raises LLMResponseError, never a raw KeyError."""
    with pytest.raises(LLMResponseError, match="malformed completion"):
        parse_completion(raw)


def test_missing_llm_settings_say_what_to_set() -> None:
    """Neither key nor base URL: the error names both variables and the Ollama option."""
    settings = make_settings(openai_api_key=None, openai_base_url=None)
    with pytest.raises(ConfigError) as caught:
        OpenAIChatModel.from_settings(settings)
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "OPENAI_BASE_URL=http://localhost:11434/v1" in str(caught.value)


def test_tool_call_without_id_or_with_object_arguments_is_read() -> None:
    """A call without an id gets one; arguments sent as an object become JSON text."""
    raw = json.dumps(
        {
            "choices": [
                {
                    "message": {
                        "content": "",
                        "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
                        "function_call": {"name": "f", "arguments": {"a": 1}},
                    },
                    "finish_reason": "stop",
                }
            ]
        }
    ).encode()
    [call] = parse_completion(raw).tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == ("call_0", "f", {"a": 1})
