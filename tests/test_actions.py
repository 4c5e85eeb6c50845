"""The actions file: loading, located errors, tool schemas, argument checks, request shapes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.actions.loader import load_actions, parse_actions
from bot.actions.models import (
    Action,
    ActionSet,
    parse_arguments,
    path_segment,
    prepare_request,
    tool_schema,
)
from bot.errors import ActionNotFoundError, ActionsFileError, ArgumentError, ConfigError
from bot.outbound.egress import EgressPolicy

REPO = Path(__file__).resolve().parent.parent


def public() -> EgressPolicy:
    return EgressPolicy()


GOOD = """\
[[actions]]
display_name = "Check Inventory"
description = "Check if a specific part is in stock."
url = "https://api.example.com/inventory/check"

[[actions.parameters]]
name = "part_name"
type = "String"
description = "The part"
required = true

[[actions.parameters]]
name = "quantity"
type = "NUMBER"
description = "How many"

[[actions.parameters]]
name = "express"
type = "boolean"
description = "Express shipping"

[[actions]]
name = "loyalty"
display_name = "Loyalty"
description = "Loyalty status"
url = "https://crm.example.com/customers/{customer_id}/loyalty?fields=tier"
method = "post"
timeout = 5
headers = { Authorization = "Bearer ${CRM_TOKEN}", X-Shop = "static-value" }

[[actions.parameters]]
name = "customer_id"
type = "string"
description = "Customer id"
required = true
"""


def load(
    text: str, environ: dict[str, str] | None = None, policy: EgressPolicy | None = None
) -> ActionSet:
    env = {"CRM_TOKEN": "s3cret-token"} if environ is None else environ
    policy = policy or public()
    return parse_actions(text, source="actions.toml", environ=env, policy=policy)


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ActionsFileError) as caught:
        load(text, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_example_file_loads() -> None:
    """The shipped example loads with the seed's three actions when its secret is set."""
    env = dict(os.environ, CRM_TOKEN="x")
    text = (REPO / "actions.example.toml").read_text()
    actions = parse_actions(text, source="actions.example.toml", environ=env, policy=public())
    assert actions.names() == [
        "check_inventory",
        "warranty_status",
        "loyalty_status",
        "create_return",
    ]
    assert actions.get("warranty_status").method == "POST"
    assert actions.get("loyalty_status").path_parameters() == ["customer_id"]


def test_fields_derived_and_normalised() -> None:
    """The name derives from the display name; type and method are case-insensitive."""
    actions = load(GOOD)
    check = actions.get("check_inventory")
    assert [p.type.value for p in check.parameters] == ["string", "number", "boolean"]
    assert check.method == "GET"
    assert actions.get("loyalty").method == "POST"


def test_max_concurrency_defaults_to_ten_and_is_read() -> None:
    """An action allows 10 calls at once unless its `max_concurrency` says otherwise."""
    assert load(GOOD).get("loyalty").max_concurrency == 10
    changed = load(GOOD.replace("timeout = 5", "timeout = 5\nmax_concurrency = 3"))
    assert changed.get("loyalty").max_concurrency == 3


def test_secret_resolved_but_never_shown() -> None:
    """A ${VAR} header is resolved for calls but absent from repr, schema and masked view."""
    action = load(GOOD).get("loyalty")
    assert action.header_values["Authorization"].get_secret_value() == "Bearer s3cret-token"
    shown = [repr(action), json.dumps(tool_schema(action)), json.dumps(action.masked_headers())]
    assert not any("s3cret" in text or "static-value" in text for text in shown)
    assert action.masked_headers()["Authorization"] == "${CRM_TOKEN} (from the environment)"


def test_tool_schema_shape() -> None:
    """An action renders as a function tool with descriptions, required and no extra keys."""
    schema = tool_schema(load(GOOD).get("check_inventory"))
    function = schema["function"]
    assert schema["type"] == "function"
    assert function["name"] == "check_inventory"
    assert function["description"] == "Check if a specific part is in stock."
    params = function["parameters"]
    assert params["required"] == ["part_name"]
    assert params["additionalProperties"] is False
    assert params["properties"]["quantity"] == {"type": "number", "description": "How many"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"part_name": "screen"}', {"part_name": "screen"}),
        ({"part_name": "screen", "quantity": "5"}, {"part_name": "screen", "quantity": 5}),
        (
            {"part_name": "s", "quantity": 2.5, "express": "true"},
            {"part_name": "s", "quantity": 2.5, "express": True},
        ),
        ({"part_name": 15, "express": "No"}, {"part_name": "15", "express": False}),
        ({"part_name": "s", "quantity": None}, {"part_name": "s"}),
    ],
)
def test_arguments_accept_obvious_forms(raw: object, expected: dict[str, object]) -> None:
    """Numbers and booleans written as text, and numbers for text, are accepted."""
    assert parse_arguments(load(GOOD).get("check_inventory"), raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{}", "'part_name' is required"),
        ('{"part_name": "  "}', "'part_name' is required"),
        ('{"part_name": "s", "quantity": "lots"}', "'quantity' must be a number"),
        ('{"part_name": "s", "quantity": true}', "'quantity' must be a number"),
        ('{"part_name": "s", "express": "maybe"}', "'express' must be true or false"),
        ('{"part_name": ["a"]}', "'part_name' must be text"),
        ('{"part_name": "s", "colour": "red"}', "unknown parameter 'colour'"),
        ('{"part_name": "s", "quantity": "nan"}', "finite"),
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_arguments_rejected_with_reason(raw: str, fragment: str) -> None:
    """Missing, mistyped and unknown values are refused with a per-parameter message."""
    with pytest.raises(ArgumentError) as caught:
        parse_arguments(load(GOOD).get("check_inventory"), raw)
    assert fragment in str(caught.value)
    assert caught.value.action == "check_inventory"


def test_get_puts_values_in_query() -> None:
    """GET appends every value to the query string, encoded."""
    action = load(GOOD).get("check_inventory")
    request = prepare_request(action, {"part_name": "screen & glass=1", "express": True})
    assert request.url == (
        "https://api.example.com/inventory/check?part_name=screen+%26+glass%3D1&express=true"
    )
    assert request.json_body is None


def test_post_fills_path_and_body() -> None:
    """POST fills the placeholder, keeps the static query, and sends the rest as JSON."""
    action = load(GOOD).get("loyalty")
    request = prepare_request(action, {"customer_id": "C 42"})
    assert request.url == "https://crm.example.com/customers/C%2042/loyalty?fields=tier"
    assert request.json_body == {}


@pytest.mark.parametrize(
    ("value", "segment"),
    [("../admin", "..%2Fadmin"), ("..", "%2E%2E"), (".", "%2E"), ("a/b?c#d", "a%2Fb%3Fc%23d")],
)
def test_placeholder_cannot_escape_segment(value: str, segment: str) -> None:
    """Slashes, query and fragment marks and dot segments stay inside one path segment."""
    assert path_segment(value) == segment


def test_unknown_action_names_known_ones() -> None:
    """Looking up a missing action says which actions exist."""
    with pytest.raises(ActionNotFoundError, match="check_inventory, loyalty"):
        load(GOOD).get("nope")


BAD_CASES = [
    ("[[actions]\n", "actions.toml:1: TOML syntax error"),
    ('title = "x"\n', "unknown top-level key 'title'"),
    (
        GOOD.replace("timeout = 5", "timeout = 5\nretry = 2"),
        "actions.toml:29: action 'loyalty': field 'retry': unknown key",
    ),
    (
        GOOD.replace("timeout = 5", "timeout = 5\nretries = 6"),
        "action 'loyalty': field 'retries': Input should be less than or equal to 5",
    ),
    (
        GOOD.replace('type = "NUMBER"', 'type = "integer"'),
        "actions.toml:14: action 'check_inventory': field 'parameters.quantity.type': must be",
    ),
    (
        GOOD.replace("https://api.example.com", "http://api.example.com"),
        "field 'url': must use https://",
    ),
    (
        GOOD.replace("https://api.example.com", "https://bob:pw@api.example.com"),
        "must not contain credentials",
    ),
    (
        GOOD.replace("https://api.example.com", "https://10.1.2.3"),
        "private or special-purpose address",
    ),
    (
        GOOD.replace("https://api.example.com", "https://localhost:8443"),
        "localhost is this machine",
    ),
    (GOOD.replace("https://api.example.com", "https://0x7f.1"), "loopback"),
    (
        GOOD.replace("customers/{customer_id}", "customers/{customer}"),
        "placeholder {customer} names no declared parameter",
    ),
    (GOOD.replace("loyalty?fields=tier", "loyalty?id={customer_id}"), "only allowed in the path"),
    (
        GOOD.replace('description = "Customer id"\nrequired = true', 'description = "Customer id"'),
        "names an optional parameter",
    ),
    (
        GOOD.replace("${CRM_TOKEN}", "${MISSING_TOKEN}"),
        "environment variable MISSING_TOKEN is not set",
    ),
    (
        GOOD.replace('name = "loyalty"', 'name = "check_inventory"'),
        "duplicate action name (first defined at line 1)",
    ),
    (
        GOOD.replace('name = "loyalty"', 'name = "bad name!"'),
        "field 'name': must be 1-64 characters",
    ),
    (
        GOOD.replace('name = "quantity"', 'name = "part_name"'),
        "parameter 'part_name' is declared twice",
    ),
    (GOOD.replace('name = "quantity"', 'name = "2nd"'), "must be an identifier"),
    (GOOD.replace("X-Shop", "Idempotency-Key"), "set by ActionBot"),
    (GOOD.replace('description = "Loyalty status"\n', ""), "field 'description': is required"),
    (
        GOOD.replace("timeout = 5", "timeout = 5\nmax_concurrency = 0"),
        "action 'loyalty': field 'max_concurrency': Input should be greater than or equal to 1",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CASES)
def test_bad_file_names_the_problem(text: str, expected: str) -> None:
    """Each kind of mistake is reported with its file, action, field (and line)."""
    found = problems(text)
    assert any(expected in p for p in found), found


def test_every_problem_reported_together() -> None:
    """Two broken actions give two problems in one error, not one at a time."""
    text = GOOD.replace("https://api.example.com", "http://api.example.com").replace(
        "${CRM_TOKEN}", "${NOPE}"
    )
    found = problems(text)
    assert len(found) == 2
    assert "check_inventory" in found[0]
    assert "loyalty" in found[1]


def test_file_with_a_utf8_byte_order_mark_loads(tmp_path: Path) -> None:
    """Editors that save UTF-8 with a byte order mark (Notepad) produce a valid file."""
    path = tmp_path / "actions.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    actions = load_actions(path, environ={"CRM_TOKEN": "x"}, policy=public())
    assert actions.names() == ["check_inventory", "loyalty"]


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-16", "is UTF-16 or UTF-32 text; save it as UTF-8"),
        ("utf-16-le", "is UTF-16 or UTF-32 text; save it as UTF-8"),
        ("latin-1", "is not UTF-8 text (line 25 has the byte 0xe9); save it as UTF-8"),
    ],
)
def test_file_in_another_encoding_is_one_clear_error(
    tmp_path: Path, encoding: str, expected: str
) -> None:
    """A file saved as UTF-16 or Latin-1 is named with what to do, not a decoding trace."""
    path = tmp_path / "actions.toml"
    path.write_bytes(GOOD.replace("Loyalty status", "Loyalty café").encode(encoding))
    with pytest.raises(ConfigError) as caught:
        load_actions(path, environ={"CRM_TOKEN": "x"}, policy=public())
    assert f"The actions file {path} {expected}" in str(caught.value)


def test_unclosed_string_is_said_in_words() -> None:
    """A missing closing quote is named as such, on its line."""
    found = problems(GOOD.replace('"Check Inventory"', '"Check Inventory'))
    assert found == [
        'actions.toml:2: TOML syntax error: a "…" string is not closed on this line '
        '(add the closing ")'
    ]


def test_duplicate_name_reported_even_when_the_first_has_other_errors() -> None:
    """The first of two same-named actions has its own error: both problems are listed."""
    text = GOOD.replace('name = "loyalty"', 'name = "check_inventory"').replace(
        'url = "https://api.example.com/inventory/check"', 'url = "ftp://api.example.com/"'
    )
    found = problems(text)
    assert len(found) == 2, found
    assert "field 'url': must use https://" in found[0]
    assert "duplicate action name (first defined at line 1)" in found[1]


def test_problems_are_listed_in_file_order() -> None:
    """Problems come sorted by line, whatever order they were found in."""
    text = (
        GOOD.replace("${CRM_TOKEN}", "${NOPE}")
        .replace('type = "NUMBER"', 'type = "integer"')
        .replace('description = "Check if a specific part is in stock."\n', "")
    )
    lines = [int(p.split(":")[1]) for p in problems(text)]
    assert len(lines) == 3
    assert lines == sorted(lines)


def test_reserved_header_in_a_sub_table_is_located_on_its_line() -> None:
    """`Host` written in an `[actions.headers]` table is reported at its own line."""
    text = (
        GOOD.replace(
            'headers = { Authorization = "Bearer ${CRM_TOKEN}", X-Shop = "static-value" }\n', ""
        )
        + '\n[actions.headers]\nAccept = "x"\nHost = "evil.example"\n'
    )
    [found] = problems(text)
    line = len(text.splitlines())
    assert found.startswith(f"actions.toml:{line}: action 'loyalty': field 'headers.Host'")


def test_private_address_error_names_the_allow_list() -> None:
    """Refusing a private endpoint says how the operator can allow it."""
    [found] = problems(GOOD.replace("https://api.example.com", "https://10.1.2.3"))
    assert "(to allow it, add 10.1.2.3 to ACTIONBOT_EGRESS_ALLOW)" in found


def test_allow_list_admits_local_host() -> None:
    """The operator's egress allow list lets a loopback endpoint load."""
    text = GOOD.replace("https://api.example.com", "https://127.0.0.1:8443")
    actions = load(text, policy=EgressPolicy(["127.0.0.1/32"]))
    assert actions.get("check_inventory").host == "127.0.0.1"


def test_action_model_forbids_unknown_fields() -> None:
    """The runtime model is strict too, so code cannot smuggle fields past the file rules."""
    with pytest.raises(ValueError, match="extra"):
        Action(name="a", display_name="A", description="d", url="https://x.example", bogus=1)  # type: ignore[call-arg]
