"""One OpenAPI operation → one action, or the reason it cannot be one (`Unmappable`).

`OperationMapper` builds the URL from the first server and the path, the typed parameters
from path and query parameters and a flat JSON body, the headers from the security
requirement and the texts from summary and description. Anything it cannot map faithfully
raises `Unmappable` with the reason; a half action is never made.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.actions.models import (
    HEADER_NAME,
    PARAMETER_NAME,
    PLACEHOLDER,
    RESERVED_HEADERS,
    ActionConfig,
    Method,
    Parameter,
    ParameterType,
)
from bot.actions.openapi.document import Spec

PRIMITIVES = {
    "string": ParameterType.STRING,
    "integer": ParameterType.NUMBER,
    "number": ParameterType.NUMBER,
    "boolean": ParameterType.BOOLEAN,
}


class Unmappable(Exception):
    """Why an operation cannot become an action. It never leaves `bot.actions.openapi`:
    `import_operations` turns it into a `Refusal`, so it is not part of `bot.errors`."""


@dataclass(frozen=True)
class Operation:
    """One operation of the document: its id (`operationId`, else method and path)."""

    id: str
    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.id} ({self.method} {self.path})"


@dataclass(frozen=True)
class Variable:
    """An environment variable a generated header refers to, and what to put in it."""

    name: str
    meaning: str


def scheme_variables(spec: Spec) -> dict[str, Variable]:
    """A `${VAR}` per security scheme: the API's title and the kind of secret
    (`ACME_HELPDESK_TOKEN`), plus the scheme's name when two schemes share a kind."""
    prefix = re.sub(r"[^A-Za-z0-9]+", "_", spec.title).strip("_").upper() or "API"
    prefix = f"API_{prefix}" if prefix[0].isdigit() else prefix
    schemes = spec.document.get("components", {}).get("securitySchemes", {})
    kinds = {
        name: kind
        for name, scheme in schemes.items()
        if (kind := _secret_kind(spec.resolve(scheme))) is not None
    }
    result = {}
    for name, (suffix, meaning) in kinds.items():
        shared = sum(1 for other, _ in kinds.values() if other == suffix) > 1
        scheme = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
        var = f"{prefix}_{scheme}_{suffix}" if shared else f"{prefix}_{suffix}"
        result[name] = Variable(var, f"{meaning} (security scheme {name!r})")
    return result


def _secret_kind(scheme: dict[str, Any]) -> tuple[str, str] | None:
    """The variable suffix and meaning of a scheme an action can send; None for others."""
    http = str(scheme.get("scheme", "")).lower()
    if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
        return "API_KEY", f"the API key, sent in the {scheme.get('name')} header"
    if scheme.get("type") == "http" and http == "basic":
        return "BASIC_AUTH", "base64 of user:password"
    if scheme.get("type") == "http" and http == "bearer":
        return "TOKEN", "the bearer token"
    return None


class OperationMapper:
    """Maps one operation; every method raises `Unmappable` with the reason it cannot."""

    def __init__(
        self,
        spec: Spec,
        op: Operation,
        *,
        item: dict[str, Any],
        raw: dict[str, Any],
        variables: dict[str, Variable],
    ) -> None:
        self.spec, self.op, self.item, self.raw = spec, op, item, raw
        self.scheme_variables = variables
        self.notes: list[str] = []
        self.variables: list[Variable] = []

    def action(self, name: str) -> ActionConfig:
        method = {"GET": Method.GET, "POST": Method.POST}.get(self.op.method)
        if method is None:
            raise Unmappable("only GET and POST can be actions")
        path, renamed = _path_template(self.op.path)
        url = self.server() + path
        parameters = self.parameters(method, renamed) + self.body(method)
        names = [p.name for p in parameters]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise Unmappable(f"two of its values are named {dup[0]!r} (parameters, body)")
        display_name, description = self.texts()
        return ActionConfig(
            name=name,
            display_name=display_name,
            description=description,
            url=url,
            method=method,
            headers=self.headers(),
            parameters=parameters,
        )

    def server(self) -> str:
        servers = (
            self.raw.get("servers") or self.item.get("servers") or self.spec.document.get("servers")
        )
        if not servers:
            raise Unmappable("the document names no server: add its https:// URL under servers")
        server = servers[0]
        variables = server.get("variables", {})

        def fill(match: re.Match[str]) -> str:
            variable = variables.get(match.group(1))
            if variable is None or "default" not in variable:
                raise Unmappable(
                    f"server variable {{{match.group(1)}}} of {server['url']} is undefined"
                )
            return str(variable["default"])

        url = PLACEHOLDER.sub(fill, server["url"]).rstrip("/")
        for name in PLACEHOLDER.findall(server["url"]):
            default = variables[name]["default"]
            self.notes.append(f"server variable {{{name}}}: the URLs use its default, {default!r}")
        if len(servers) > 1:
            self.notes.append(f"{len(servers)} servers are listed: the URLs use the first, {url}")
        parts = urlsplit(url)
        if parts.scheme.lower() == "http":
            raise Unmappable(f"the server {url} is http://; ActionBot calls https:// only")
        if parts.scheme.lower() != "https" or not parts.hostname:
            raise Unmappable(f"the server URL {server['url']!r} is not a full https:// URL")
        return url

    def parameters(self, method: Method, renamed: dict[str, str]) -> list[Parameter]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*self.item.get("parameters", []), *self.raw.get("parameters", [])]:
            parameter = self.spec.resolve(raw)
            merged[parameter["name"], parameter["in"]] = parameter
        return [self.parameter(p, method, renamed) for p in merged.values()]

    def parameter(self, raw: dict[str, Any], method: Method, renamed: dict[str, str]) -> Parameter:
        name, where = raw["name"], raw["in"]
        what = f"{where} parameter {name!r}"
        if where == "header":
            raise Unmappable(f"{what}: an action's headers are fixed, not chosen per call")
        if where == "cookie":
            raise Unmappable(f"{what}: an action sends no cookies")
        if where == "query" and method is Method.POST:
            raise Unmappable(f"{what} of a POST: ActionBot sends a POST's values in the JSON body")
        if "schema" not in raw:
            raise Unmappable(f"{what} is described by content, not a schema")
        schema = self.spec.resolve(raw["schema"])
        kind, hints = _primitive(schema, what)
        text = raw.get("description") or schema.get("description") or _humanized(name)
        return Parameter(
            name=renamed.get(name, name) if where == "path" else _wire_name(name, what),
            type=kind,
            description=_described(text, hints),
            required=where == "path" or bool(raw.get("required")),
        )

    def body(self, method: Method) -> list[Parameter]:
        if "requestBody" not in self.raw:
            return []
        body = self.spec.resolve(self.raw["requestBody"])
        if method is Method.GET:
            raise Unmappable(
                "a GET with a request body: ActionBot sends a GET's values in the query"
            )
        content: dict[str, Any] = body.get("content", {})
        media = next((m for m in content if _is_json(m)), None)
        if media is None:
            kinds = ", ".join(content) or "empty"
            upload = any(m.startswith(("multipart/", "application/octet-stream")) for m in content)
            what = " (a file upload)" if upload else ""
            raise Unmappable(f"the request body is {kinds}{what}; ActionBot sends JSON bodies only")
        properties, required = self.properties(content[media].get("schema", {}))
        parameters = []
        for name, raw in properties.items():
            schema = self.spec.resolve(raw)
            if schema.get("readOnly"):
                continue  # sent by the server only, never in a request
            what = f"body property {name!r}"
            kind, hints = _primitive(schema, what)
            text = schema.get("description") or schema.get("title") or _humanized(name)
            parameters.append(
                Parameter(
                    name=_wire_name(name, what),
                    type=kind,
                    description=_described(text, hints),
                    required=name in required,
                )
            )
        return parameters

    def properties(self, raw: Any) -> tuple[dict[str, Any], set[str]]:
        """A flat object body's properties and required names (`allOf` parts merged)."""
        schema = self.spec.resolve(raw)
        properties: dict[str, Any] = {}
        required: set[str] = set()
        for part in schema.get("allOf", []):
            more, needed = self.properties(part)
            properties |= more
            required |= needed
        if "oneOf" in schema or "anyOf" in schema:
            raise Unmappable("the request body is a oneOf/anyOf choice of shapes")
        kinds = schema.get("type", "object")
        if "object" not in (kinds if isinstance(kinds, list) else [kinds]):
            raise Unmappable(f"the request body is a JSON {kinds}, not an object of values")
        properties |= schema.get("properties", {})
        required |= set(schema.get("required", []))
        if not properties:
            raise Unmappable("the request body is a free-form object with no properties to map")
        return properties, required

    def headers(self) -> dict[str, str]:
        requirements = self.raw.get("security", self.spec.document.get("security", []))
        if not requirements:
            return {}
        reasons = []  # the first requirement that can be met wins; `{}` is "none needed"
        for requirement in requirements:
            try:
                return self.requirement(requirement)
            except Unmappable as exc:
                reasons.append(str(exc))
        raise Unmappable("; ".join(reasons))

    def requirement(self, requirement: dict[str, Any]) -> dict[str, str]:
        """The headers of one security requirement (all its schemes together)."""
        schemes = self.spec.document.get("components", {}).get("securitySchemes", {})
        headers: dict[str, str] = {}
        for name in requirement:
            if name not in schemes:
                raise Unmappable(f"security scheme {name!r} is not defined")
            scheme = self.spec.resolve(schemes[name])
            variable = self.scheme_variables.get(name)
            if variable is None:
                raise Unmappable(_unmappable(name, scheme))
            if scheme["type"] == "http":
                header = "Authorization"
                value = f"{str(scheme['scheme']).title()} ${{{variable.name}}}"
            else:
                header, value = str(scheme["name"]), f"${{{variable.name}}}"
            if not HEADER_NAME.match(header) or header.lower() in RESERVED_HEADERS:
                raise Unmappable(f"security scheme {name!r} uses the header {header!r}")
            if header in headers:
                raise Unmappable(f"security schemes {', '.join(requirement)} both set {header}")
            headers[header] = value
            self.variables.append(variable)
        return headers

    def texts(self) -> tuple[str, str]:
        summary = " ".join(str(self.raw.get("summary", "")).split())
        details = str(self.raw.get("description", "")).strip()
        display_name = summary if 0 < len(summary) <= 80 else _humanized(self.op.id)
        parts = [summary.rstrip(".") + "." if summary else "", details]
        if summary and details.startswith(summary.rstrip(".")):
            parts = [details]
        description = " ".join(p for p in parts if p)
        if not description:
            description = f"Calls {self.op.method} {self.op.path} of {self.spec.title}."
            self.notes.append(
                f"{self.op}: no summary or description; say when the AI should use it"
            )
        if self.raw.get("deprecated"):
            self.notes.append(f"{self.op}: the operation is deprecated")
        return display_name, description


def _unmappable(name: str, scheme: dict[str, Any]) -> str:
    kind = scheme.get("type")
    if kind == "apiKey":
        return f"security scheme {name!r} sends its key in the {scheme.get('in')}, not a header"
    shown = f"{kind} {scheme['scheme']}" if kind == "http" else kind
    return f"security scheme {name!r} ({shown}) cannot be mapped: bearer, basic and API keys can"


def _path_template(path: str) -> tuple[str, dict[str, str]]:
    """The path with every `{placeholder}` an identifier (`{pet-id}` → `{pet_id}`); the
    renamed ones (the value fills a segment, so its name is never sent)."""
    renamed: dict[str, str] = {}
    for name in PLACEHOLDER.findall(path):
        if not PARAMETER_NAME.match(name):
            fixed = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
            renamed[name] = fixed if PARAMETER_NAME.match(fixed) else f"p_{fixed}"
    return PLACEHOLDER.sub(lambda m: "{" + renamed.get(m.group(1), m.group(1)) + "}", path), (
        renamed
    )


def _wire_name(name: str, what: str) -> str:
    if not PARAMETER_NAME.match(name):
        raise Unmappable(f"{what} is not a name ActionBot can send (letters, digits and _)")
    return name


def _primitive(schema: dict[str, Any], what: str) -> tuple[ParameterType, list[str]]:
    """The parameter type of a primitive schema, with hints for the AI (enum values, whole
    numbers, format, range, default); `Unmappable` for anything else."""
    kind = schema.get("type")
    if isinstance(kind, list):  # 3.1: ["string", "null"]
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    enum = [value for value in schema.get("enum", []) if value is not None]
    if kind is None and enum:
        kind = "string" if all(isinstance(v, str) for v in enum) else None
    if kind in ("array", "object"):
        nested = "an array" if kind == "array" else "a nested object"
        raise Unmappable(f"{what} is {nested}; an action takes one plain value per parameter")
    if kind not in PRIMITIVES:
        raise Unmappable(f"{what} has no single plain type (string, integer, number, boolean)")
    if schema.get("format") == "binary":
        raise Unmappable(f"{what} is a file (format: binary)")
    return PRIMITIVES[kind], _hints(schema, kind, enum)


def _hints(schema: dict[str, Any], kind: str, enum: list[Any]) -> list[str]:
    hints = []
    if enum:
        hints.append("One of: " + ", ".join(str(v) for v in enum) + ".")
    if kind == "integer":
        hints.append("A whole number.")
    if "format" in schema and kind == "string":
        hints.append(f"Format: {schema['format']}.")
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        hints.append(f"From {low} to {high}.")
    if "default" in schema:
        hints.append(f"Default: {json.dumps(schema['default'])}.")
    return hints


def _described(text: str, hints: list[str]) -> str:
    text = " ".join(str(text).split())
    return " ".join([text.rstrip(".") + "." if hints else text, *hints])


def _is_json(media: str) -> bool:
    kind = media.split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _humanized(op_id: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", op_id).replace("_", " ").replace("-", " ")
    return " ".join(word[:1].upper() + word[1:] for word in words.split()) or op_id
