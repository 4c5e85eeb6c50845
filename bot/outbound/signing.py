"""Signing outbound calls, and verifying them where they arrive.

A signed call carries

    X-ActionBot-Timestamp: <Unix seconds>
    X-ActionBot-Key-Id:    <id of the secret that signed>
    X-ActionBot-Signature: v2=<hex HMAC-SHA256(secret, "v2\\n" + timestamp + "\\n" + METHOD
                           + "\\n" + path?query + "\\n" + X-ActionBot-Caller + "\\n"
                           + Idempotency-Key + "\\n" + raw body)>

so a receiver knows the request came from this ActionBot, for this method, path, query,
caller and call, with this body, recently. The first key of `ACTIONBOT_WEBHOOK_SECRETS`
(`id:secret,id:secret`) signs; a receiver configured with several keys accepts any of them,
which is how a secret is rotated. `ACTIONBOT_WEBHOOK_SECRET` alone is one key, id `default`.

`verify` is the receiver's side, for Python endpoints; README has the same check in about
twenty lines of standard library, for endpoints that do not install ActionBot.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.errors import ConfigError

VERSION = "v2"
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_KEY_ID = "default"
TOLERANCE_SECONDS = 300
TIMESTAMP = re.compile(r"[0-9]{1,12}")
"""Unix seconds as ActionBot sends them: ASCII digits only (`isdigit` also takes '²')."""


@dataclass(frozen=True)
class SigningKey:
    """One named secret."""

    id: str
    secret: bytes = field(repr=False)


def parse_keys(text: str) -> list[SigningKey]:
    """`id:secret,id:secret` as keys, in order (the first signs); `ConfigError` names the
    entry that is not `id:secret` (never the secret)."""
    keys: list[SigningKey] = []
    for number, entry in enumerate((e.strip() for e in text.split(",") if e.strip()), 1):
        key_id, sep, secret = entry.partition(":")
        if not sep or not secret.strip() or not KEY_ID.match(key_id.strip()):
            raise ConfigError(
                f"ACTIONBOT_WEBHOOK_SECRETS: entry {number} is not id:secret (the id is 1-64 "
                "letters, digits, _ . or -)."
            )
        if any(k.id == key_id.strip() for k in keys):
            raise ConfigError(f"ACTIONBOT_WEBHOOK_SECRETS: key id {key_id.strip()!r} is repeated.")
        keys.append(SigningKey(key_id.strip(), secret.strip().encode("utf-8")))
    return keys


def message(timestamp: str, method: str, target: str, caller: str, key: str, body: bytes) -> bytes:
    """The signed bytes (see the module docstring)."""
    head = "\n".join([VERSION, timestamp, method.upper(), target, caller, key, ""])
    return head.encode("utf-8") + body


def signature(secret: bytes, signed: bytes) -> str:
    """`v2=` + hex HMAC-SHA256 of `signed` under `secret`."""
    return f"{VERSION}=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def target_of(url: str) -> str:
    """`path?query` of a URL as sent on the request line (`/` for an empty path). Given a
    request target already (it starts with `/`), it is used as it is, never read as a host
    (`//evil/x` is a path)."""
    if url.startswith("/"):
        path, sep, query = url.partition("?")
    else:
        parts = urlsplit(url)
        path, sep, query = parts.path, "?" if parts.query else "", parts.query
    path = path or "/"
    return f"{path}?{query}" if sep and query else path


def signed_headers(
    key: SigningKey,
    *,
    method: str,
    target: str,
    caller: str,
    idempotency_key: str,
    body: bytes,
    now: float | None = None,
) -> dict[str, str]:
    """The three signature headers for one request."""
    timestamp = str(int(time.time() if now is None else now))
    signed = message(timestamp, method, target, caller, idempotency_key, body)
    return {
        "X-ActionBot-Timestamp": timestamp,
        "X-ActionBot-Key-Id": key.id,
        "X-ActionBot-Signature": signature(key.secret, signed),
    }


def verify(
    headers: Mapping[str, str],
    method: str,
    url: str,
    body: bytes,
    secrets: Mapping[str, str | bytes],
    tolerance: float = TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """Whether a request really comes from ActionBot: signed by one of `secrets` (key id →
    secret) over exactly this method, URL (`path?query` is used), caller, key and body,
    within `tolerance` seconds. `headers` must look names up case-insensitively (any web
    framework's headers do), or use the names as ActionBot sends them."""
    timestamp = headers.get("X-ActionBot-Timestamp", "")
    secret = secrets.get(headers.get("X-ActionBot-Key-Id", ""))
    if secret is None or not TIMESTAMP.fullmatch(timestamp):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    caller = headers.get("X-ActionBot-Caller", "")
    key = headers.get("Idempotency-Key", "")
    signed = message(timestamp, method, target_of(url), caller, key, body)
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    expected = signature(raw, signed).encode("ascii")
    given = headers.get("X-ActionBot-Signature", "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected, given)
