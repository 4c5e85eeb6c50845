"""Actions from an OpenAPI 3.0 or 3.1 document (`actionbot actions import`).

`document` reads and validates the file (`openapi-spec-validator`, local `$ref`s only),
`mapping` turns one operation into one action or the reason it cannot, and `imported`
maps a whole document and writes the actions file, checked by the real loader.

Mapped: `operationId` (or method + path) → name; summary → display name; summary and
description → AI description; `servers[0]` + path → URL with `{param}` placeholders; path
and query parameters and a flat JSON body of string, integer, number and boolean properties
(enum values listed in the description) → typed parameters, path ones required; a bearer,
basic or header API-key security scheme → a header with a `${VAR}` to set.

Refused per operation, with the reason, never dropped: methods other than GET and POST,
arrays, nested objects, oneOf/anyOf bodies, file uploads and other non-JSON bodies, header
and cookie parameters, query parameters of a POST, `http://` or relative servers, undefined
server variables, and other security schemes (oauth2, openIdConnect, keys in the query).

May import the rest of `bot.actions` and `bot.errors`; nothing that talks to the network.
"""

from bot.actions.openapi.document import Spec, read_spec
from bot.actions.openapi.imported import Imported, Refusal, actions_file, import_operations

__all__ = ["Imported", "Refusal", "Spec", "actions_file", "import_operations", "read_spec"]
