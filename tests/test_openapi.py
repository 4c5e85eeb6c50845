"""OpenAPI import: two real-world-style documents (a petstore-style 3.0 YAML and a 3.1 JSON
with `$ref`s and a bearer scheme) mapped to actions that load, every refused operation
reported with its reason, bad documents refused with the validator's path, and an import
that `actionbot actions test` calls on the HTTPS fake."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deployment import Deployment

from bot.actions.loader import parse_actions
from bot.actions.models import ActionConfig, ActionSet, Method, ParameterType
from bot.actions.openapi import Imported, actions_file, import_operations, read_spec
from bot.actions.openapi.imported import operations
from bot.actions.openapi.mapping import Operation
from bot.errors import ConfigError
from bot.outbound.egress import EgressPolicy

DATA = Path(__file__).resolve().parent / "data" / "openapi"
PETSTORE = DATA / "petstore.yaml"
HELPDESK = DATA / "helpdesk.json"
ACTIONBOT = Path(sys.executable).parent / "actionbot"
PETSTORE_ENV = {"PETSTORE_API_KEY": "petstore-key-4711"}
HELPDESK_ENV = {"ACME_HELPDESK_TOKEN": "helpdesk-token-4711"}


def load(imported: Imported, environ: dict[str, str]) -> ActionSet:
    """The generated file, loaded as the bot loads an actions file."""
    return parse_actions(
        actions_file(imported), source="imported", environ=environ, policy=EgressPolicy()
    )


def refusals(imported: Imported) -> dict[str, str]:
    return {r.operation.id: r.reason for r in imported.refused}


def shop(paths: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A small OpenAPI 3.0 document around `paths`."""
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Shop", "version": "1"},
        "servers": [{"url": "https://api.shop.example"}],
        "paths": paths,
    }
    return document | top


def get(**fields: Any) -> dict[str, Any]:
    """An operation with a response, as every operation needs."""
    return {"responses": {"200": {"description": "OK"}}} | fields


def write(tmp_path: Path, document: dict[str, Any], name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


async def actionbot(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the installed `actionbot` with exactly `env` (plus PATH and HOME): code, out, err."""
    keep = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    process = await asyncio.create_subprocess_exec(
        str(ACTIONBOT),
        *args,
        cwd=cwd,
        env=keep | env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


# --- the two documents ----------------------------------------------------------------------


def test_petstore_yaml_becomes_actions_that_load() -> None:
    """The petstore YAML's GET and POST operations become typed actions that load as a file."""
    actions = load(import_operations(read_spec(PETSTORE)), PETSTORE_ENV)
    assert actions.names() == [
        "listPets",
        "createPet",
        "showPetById",
        "get_stores_store_id_address",
    ]

    listing = actions.get("listPets")
    assert listing.url == "https://petstore.example.com/v1/pets"
    assert listing.method is Method.GET
    assert listing.headers == {"X-API-Key": "${PETSTORE_API_KEY}"}
    limit, species = listing.parameters
    assert (limit.name, limit.type, limit.required) == ("limit", ParameterType.NUMBER, False)
    assert "From 1 to 100" in limit.description
    assert species.type is ParameterType.STRING
    assert "One of: dog, cat, bird." in species.description
    assert listing.description == (
        "List the pets in the shop. Use when a customer asks which pets are available."
    )
    assert listing.display_name == "List the pets in the shop"

    create = actions.get("createPet")
    assert create.method is Method.POST
    shape = [(p.name, p.type, p.required) for p in create.parameters]
    assert shape == [
        ("name", ParameterType.STRING, True),
        ("tag", ParameterType.STRING, False),
        ("age", ParameterType.NUMBER, False),
        ("vaccinated", ParameterType.BOOLEAN, False),
    ]

    pet = actions.get("showPetById")
    assert pet.url == "https://petstore.example.com/v1/pets/{petId}"
    assert [(p.name, p.required) for p in pet.parameters] == [("petId", True)]

    address = actions.get("get_stores_store_id_address")  # no operationId; `store-id` renamed
    assert address.url == "https://petstore.example.com/v1/stores/{store_id}/address"
    assert address.headers == {}  # `security: []` on the operation
    assert address.description == "The street address of a store."


def test_helpdesk_json_resolves_references_and_the_bearer_scheme() -> None:
    """The 3.1 JSON's `$ref`d body, parameter and enum schema are resolved, the bearer scheme
    becomes a `${VAR}` header, and the server variable takes its default."""
    imported = import_operations(read_spec(HELPDESK))
    actions = load(imported, HELPDESK_ENV)
    assert actions.names() == ["createTicket", "getTicket", "getOrderStatus", "getStatus"]

    ticket = actions.get("createTicket")
    assert ticket.url == "https://eu.helpdesk.example.com/api/tickets"
    assert ticket.headers == {"Authorization": "Bearer ${ACME_HELPDESK_TOKEN}"}
    assert ticket.header_values["Authorization"].get_secret_value() == (
        "Bearer helpdesk-token-4711"
    )
    by_name = {p.name: p for p in ticket.parameters}
    assert list(by_name) == ["subject", "customer_email", "priority", "notify"]
    assert by_name["subject"].required
    assert by_name["customer_email"].required
    assert "Format: email." in by_name["customer_email"].description
    assert by_name["priority"].description == (
        "How soon the team should answer. One of: low, normal, urgent."
    )
    assert by_name["notify"].type is ParameterType.BOOLEAN

    lookup = actions.get("getTicket")
    assert lookup.parameters[0].name == "ticketId"
    assert lookup.parameters[0].type is ParameterType.NUMBER
    assert lookup.parameters[0].required

    status = actions.get("getOrderStatus")
    history = status.parameters[1]
    assert (history.name, history.type, history.required) == (
        "include_history",
        ParameterType.BOOLEAN,
        False,
    )
    assert actions.get("getStatus").headers == {}  # `security: []`

    assert [(v.name, "bearer token" in v.meaning) for v in imported.variables] == [
        ("ACME_HELPDESK_TOKEN", True)
    ]
    report = "\n".join(imported.report())
    assert "server variable {region}: the URLs use its default, 'eu'" in report
    assert "2 servers are listed" in report
    assert "ACME_HELPDESK_TOKEN: the bearer token" in report


def test_every_refused_operation_is_reported_with_its_reason() -> None:
    """Operations that cannot be actions are listed, each with why, none silently dropped."""
    petstore = import_operations(read_spec(PETSTORE))
    assert refusals(petstore) == {
        "searchPets": "query parameter 'tags' is an array; an action takes one plain value "
        "per parameter",
        "deletePet": "only GET and POST can be actions",
        "uploadPhoto": "the request body is multipart/form-data (a file upload); ActionBot "
        "sends JSON bodies only",
        "get_stores_store_id_hours": "header parameter 'X-Request-Id': an action's headers "
        "are fixed, not chosen per call",
    }
    helpdesk = import_operations(read_spec(HELPDESK))
    assert refusals(helpdesk) == {
        "updateTicket": "only GET and POST can be actions",
        "addReply": "body property 'author' is a nested object; an action takes one plain "
        "value per parameter",
        "searchOrders": "body property 'skus' is an array; an action takes one plain value "
        "per parameter",
        "sendFeedback": "the request body is application/xml; ActionBot sends JSON bodies only",
    }
    for imported in (petstore, helpdesk):
        report = imported.report()
        for refusal in imported.refused:
            assert f"  - {refusal.operation}: {refusal.reason}" in report
        every = list(operations(imported.spec))
        assert len(imported.actions) + len(imported.refused) == len(every)


def test_only_selects_operations() -> None:
    """`--only` maps just the named operations, and reports refusals only among them."""
    imported = import_operations(read_spec(PETSTORE), only=["showPetById", "deletePet"])
    assert [a.name for a in imported.actions] == ["showPetById"]
    assert list(refusals(imported)) == ["deletePet"]


def test_only_with_an_unknown_operation_names_the_available_ones() -> None:
    """An unknown `--only` id is an error that lists the document's operations."""
    with pytest.raises(ConfigError) as caught:
        import_operations(read_spec(PETSTORE), only=["listPets", "adoptPet"])
    message = str(caught.value)
    assert "'adoptPet'" in message
    assert "listPets, createPet, searchPets, showPetById, deletePet" in message


# --- what cannot be mapped --------------------------------------------------------------------

BEARER = {"securitySchemes": {"auth": {"type": "http", "scheme": "bearer"}}}
QUERY_ID = {"name": "id", "in": "query", "schema": {"type": "string"}}
CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "http server",
        shop({"/a": {"get": get()}}, servers=[{"url": "http://api.shop.example"}]),
        "the server http://api.shop.example is http://; ActionBot calls https:// only",
    ),
    (
        "relative server",
        shop({"/a": {"get": get()}}, servers=[{"url": "/v1"}]),
        "the server URL '/v1' is not a full https:// URL",
    ),
    (
        "no server",
        shop({"/a": {"get": get()}}, servers=[]),
        "the document names no server",
    ),
    (
        "undefined server variable",
        shop({"/a": {"get": get()}}, servers=[{"url": "https://{tenant}.shop.example"}]),
        "server variable {tenant} of https://{tenant}.shop.example is undefined",
    ),
    (
        "cookie parameter",
        shop({"/a": {"get": get(parameters=[QUERY_ID | {"in": "cookie"}])}}),
        "cookie parameter 'id': an action sends no cookies",
    ),
    (
        "query parameter of a POST",
        shop({"/a": {"post": get(parameters=[QUERY_ID])}}),
        "query parameter 'id' of a POST",
    ),
    (
        "query parameter that is not an identifier",
        shop({"/a": {"get": get(parameters=[QUERY_ID | {"name": "page-size"}])}}),
        "query parameter 'page-size' is not a name ActionBot can send",
    ),
    (
        "object query parameter",
        shop({"/a": {"get": get(parameters=[QUERY_ID | {"schema": {"type": "object"}}])}}),
        "query parameter 'id' is a nested object",
    ),
    (
        "oneOf body",
        shop(
            {
                "/a": {
                    "post": get(
                        requestBody={
                            "content": {
                                "application/json": {
                                    "schema": {"oneOf": [{"type": "object"}, {"type": "string"}]}
                                }
                            }
                        }
                    )
                }
            }
        ),
        "the request body is a oneOf/anyOf choice of shapes",
    ),
    (
        "array body",
        shop(
            {
                "/a": {
                    "post": get(
                        requestBody={"content": {"application/json": {"schema": {"type": "array"}}}}
                    )
                }
            }
        ),
        "the request body is a JSON array, not an object of values",
    ),
    (
        "oauth2",
        shop(
            {"/a": {"get": get()}},
            security=[{"oauth": []}],
            components={
                "securitySchemes": {
                    "oauth": {
                        "type": "oauth2",
                        "flows": {
                            "clientCredentials": {"tokenUrl": "https://x.example", "scopes": {}}
                        },
                    }
                }
            },
        ),
        "security scheme 'oauth' (oauth2) cannot be mapped",
    ),
    (
        "API key in the query",
        shop(
            {"/a": {"get": get()}},
            security=[{"key": []}],
            components={"securitySchemes": {"key": {"type": "apiKey", "in": "query", "name": "k"}}},
        ),
        "security scheme 'key' sends its key in the query, not a header",
    ),
]


@pytest.mark.parametrize(("document", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_unmappable_operations_are_refused_with_the_reason(
    tmp_path: Path, document: dict[str, Any], reason: str
) -> None:
    """An operation with a part ActionBot cannot send is skipped whole, with the reason."""
    imported = import_operations(read_spec(write(tmp_path, document)))
    assert imported.actions == []
    [refusal] = imported.refused
    assert reason in refusal.reason


def test_an_alternative_security_requirement_is_used(tmp_path: Path) -> None:
    """When an operation accepts oauth2 or a bearer token, the bearer token is used."""
    document = shop(
        {"/a": {"get": get(operationId="ping")}},
        security=[{"oauth": []}, {"auth": []}],
        components={
            "securitySchemes": {
                "oauth": {"type": "openIdConnect", "openIdConnectUrl": "https://x.example"},
                "auth": {"type": "http", "scheme": "bearer"},
            }
        },
    )
    actions = load(import_operations(read_spec(write(tmp_path, document))), {"SHOP_TOKEN": "t"})
    assert actions.get("ping").headers == {"Authorization": "Bearer ${SHOP_TOKEN}"}


@pytest.mark.parametrize(
    ("scheme", "headers"),
    [
        ({"type": "http", "scheme": "bearer"}, {"Authorization": "Bearer ${SHOP_TOKEN}"}),
        ({"type": "http", "scheme": "basic"}, {"Authorization": "Basic ${SHOP_BASIC_AUTH}"}),
        ({"type": "apiKey", "in": "header", "name": "X-Key"}, {"X-Key": "${SHOP_API_KEY}"}),
    ],
    ids=["bearer", "basic", "api key"],
)
def test_security_schemes_become_headers_with_a_variable(
    tmp_path: Path, scheme: dict[str, Any], headers: dict[str, str]
) -> None:
    """Bearer, basic and header API-key schemes become a header naming a `${VAR}`."""
    document = shop(
        {"/a": {"get": get(operationId="ping")}},
        security=[{"auth": []}],
        components={"securitySchemes": {"auth": scheme}},
    )
    imported = import_operations(read_spec(write(tmp_path, document)))
    [variable] = imported.variables
    actions = load(imported, {variable.name: "secret"})
    assert actions.get("ping").headers == headers


def test_loosely_written_yaml_reads_as_json_would(tmp_path: Path) -> None:
    """Unquoted status codes and a date-like version read as text, so the document validates."""
    text = (
        yaml.safe_dump(shop({"/a": {"get": get(operationId="ping")}}))
        .replace("'200'", "200")
        .replace("version: '1'", "version: 2024-05-01")
    )
    assert "200:" in text
    assert "2024-05-01" in text
    (tmp_path / "spec.yaml").write_text(text)
    spec = read_spec(tmp_path / "spec.yaml")
    assert spec.document["info"]["version"] == "2024-05-01"
    assert [a.name for a in import_operations(spec).actions] == ["ping"]


# --- bad documents ------------------------------------------------------------------------------


def test_an_invalid_document_gives_the_validators_message_and_path(tmp_path: Path) -> None:
    """A document the validator rejects is refused with its message and JSON path."""
    bad = {"name": "limit", "in": "query", "schema": {"type": "integr"}}
    path = write(tmp_path, shop({"/pets": {"get": get(parameters=[bad])}}))
    with pytest.raises(ConfigError) as caught:
        read_spec(path)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a valid OpenAPI document: at ")
    assert "$.paths['/pets'].get.parameters[0]" in message
    assert "is not valid under any of the given schemas" in message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"swagger": "2.0", "info": {}}, "is Swagger 2.0; convert it to OpenAPI 3 first"),
        (shop({}, openapi="4.0.0"), "openapi: '4.0.0' is not supported"),
        (
            shop({"/a": {"get": get(parameters=[{"$ref": "other.yaml#/P"}])}}),
            "at $.paths['/a'].get.parameters[0]: $ref 'other.yaml#/P' is not in this document",
        ),
        (
            shop({"/a": {"get": get(parameters=[{"$ref": "#/components/parameters/P"}])}}),
            "$ref '#/components/parameters/P' points to nothing",
        ),
        (["not", "a", "mapping"], "is not an OpenAPI document"),
    ],
    ids=["swagger 2", "unknown version", "remote ref", "dangling ref", "not a mapping"],
)
def test_documents_that_cannot_be_read_are_refused(
    tmp_path: Path, document: Any, message: str
) -> None:
    """Swagger 2, unknown versions, non-local or dangling `$ref`s are refused by name."""
    with pytest.raises(ConfigError) as caught:
        read_spec(write(tmp_path, document))
    assert message in str(caught.value)


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    """Broken JSON and YAML are refused with the file and line."""
    (tmp_path / "bad.json").write_text('{\n  "openapi": "3.0.3",\n  oops\n}')
    (tmp_path / "bad.yaml").write_text("openapi: 3.0.3\ninfo: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.json:3: not valid JSON"):
        read_spec(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: not valid YAML"):
        read_spec(tmp_path / "bad.yaml")


def test_a_generated_file_the_loader_refuses_is_a_loud_bug() -> None:
    """If the mapper ever made a file the loader refuses, writing it fails instead."""
    imported = import_operations(read_spec(PETSTORE), only=["listPets"])
    broken = ActionConfig(
        name="broken",
        display_name="Broken",
        description="A placeholder that names no parameter.",
        url="https://petstore.example.com/v1/pets/{petId}",
    )
    imported.actions.append(broken)
    imported.origins["broken"] = Operation("broken", "GET", "/pets/{petId}")
    with pytest.raises(ConfigError, match="Bug: the actions made from this OpenAPI document"):
        actions_file(imported)


# --- the command --------------------------------------------------------------------------------


async def test_import_prints_the_file_and_reports_on_stderr(tmp_path: Path) -> None:
    """Without --out the file goes to stdout and the report, refusals included, to stderr."""
    code, out, err = await actionbot("actions", "import", str(PETSTORE), cwd=tmp_path, env={})
    assert code == 0, err
    actions = parse_actions(out, source="stdout", environ=PETSTORE_ENV, policy=EgressPolicy())
    assert len(actions) == 4
    assert "Skipped 4 operation(s):" in err
    assert "  - deletePet (DELETE /pets/{petId}): only GET and POST can be actions" in err
    assert "PETSTORE_API_KEY" in err
    assert "Skipped" not in out


async def test_import_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """--out never replaces an existing file unless --force is given."""
    target = tmp_path / "actions.toml"
    target.write_text("# mine\n")
    args = ("actions", "import", str(PETSTORE), "--only", "listPets", "--out", str(target))
    code, _, err = await actionbot(*args, cwd=tmp_path, env={})
    assert code == 1
    assert "already exists" in err
    assert "--force" in err
    assert target.read_text() == "# mine\n"
    code, _, err = await actionbot(*args, "--force", cwd=tmp_path, env={})
    assert code == 0, err
    assert '\nname = "listPets"\n' in target.read_text()


async def test_import_of_an_invalid_document_exits_1_with_the_path(tmp_path: Path) -> None:
    """`actionbot actions import` of an invalid document prints the validator's message and
    path, and no trace."""
    path = write(tmp_path, shop({"/pets": {"get": {"operationId": "listPets"}}}))
    code, out, err = await actionbot("actions", "import", str(path), cwd=tmp_path, env={})
    assert code == 1
    assert "is not a valid OpenAPI document: at $.paths['/pets'].get" in err
    assert "'responses' is a required property" in err
    assert "Traceback" not in err
    assert out == ""


async def test_imported_actions_call_the_endpoint(deployment: Deployment) -> None:
    """Actions imported from both documents, written with --out, are called by
    `actionbot actions test` on the HTTPS fake with the right path, query, body and header."""
    server = deployment.server
    helpdesk = json.loads(HELPDESK.read_text())
    helpdesk["servers"] = [{"url": server.url("/api")}]
    (deployment.cwd / "helpdesk.json").write_text(json.dumps(helpdesk))
    petstore = PETSTORE.read_text().replace("https://petstore.example.com", server.url(""))
    (deployment.cwd / "petstore.yaml").write_text(petstore)

    for name in ("helpdesk", "petstore"):
        suffix = "json" if name == "helpdesk" else "yaml"
        code, out = await deployment.cli(
            "actions", "import", f"{name}.{suffix}", "--out", f"{name}.toml"
        )
        assert code == 0, out
        assert f"Wrote {name}.toml" in out
        assert "Blocked" not in out  # 127.0.0.1 is in ACTIONBOT_EGRESS_ALLOW

    deployment.env |= HELPDESK_ENV | {"ACTIONBOT_ACTIONS": str(deployment.cwd / "helpdesk.toml")}
    code, out = await deployment.cli(
        "actions",
        "test",
        "createTicket",
        "subject=Cracked screen",
        "customer_email=ada@example.com",
        "priority=urgent",
        "notify=yes",
    )
    assert code == 0, out
    ticket = server.requests[-1]
    assert (ticket.method, ticket.path) == ("POST", "/api/tickets")
    assert ticket.json() == {
        "subject": "Cracked screen",
        "customer_email": "ada@example.com",
        "priority": "urgent",
        "notify": True,
    }
    assert ticket.headers["Authorization"] == "Bearer helpdesk-token-4711"

    code, out = await deployment.cli(
        "actions", "test", "getOrderStatus", "orderId=A-1001", "include_history=true"
    )
    assert code == 0, out
    status = server.requests[-1]
    assert (status.method, status.path) == ("GET", "/api/orders/A-1001/status")
    assert status.query == {"include_history": "true"}

    deployment.env |= PETSTORE_ENV | {"ACTIONBOT_ACTIONS": str(deployment.cwd / "petstore.toml")}
    code, out = await deployment.cli("actions", "test", "listPets", "limit=5", "species=dog")
    assert code == 0, out
    pets = server.requests[-1]
    assert (pets.method, pets.path, pets.query) == (
        "GET",
        "/v1/pets",
        {"limit": "5", "species": "dog"},
    )
    assert pets.headers["X-API-Key"] == "petstore-key-4711"
