"""What a webhook call is built from and reports to: the signing keys the operator set,
the `Idempotency-Key` of a turn's call, the TLS trust, and the recorder and observer
protocols (`webhooks.py` makes the calls)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import ssl
from typing import Any, Protocol

import certifi

from bot.errors import ConfigError
from bot.outbound.signing import DEFAULT_KEY_ID, SigningKey, parse_keys
from bot.runtime import config
from bot.types import ActionResult


class CallRecorder(Protocol):
    """Where each call's result goes (the store), with the conversation and, for a call of
    a customer's turn, the turn's event key (its journal row gets the result)."""

    async def record_call(
        self,
        result: ActionResult,
        *,
        conversation: str | None = None,
        event_key: str | None = None,
        caller: str = "",
        arguments: str | None = None,
    ) -> None:
        """Record one finished call, with who asked (`caller`, the `X-ActionBot-Caller`
        value) and its arguments as canonical JSON, secrets masked (the audit trail)."""


class CallObserver(Protocol):
    """Watches capacity (the metrics): waits for a slot and calls in flight per action."""

    def webhook_queued(self, action: str, seconds: float) -> None:
        """A call of `action` waited `seconds` for its slots (got them, or ended busy)."""

    def webhook_in_flight(self, action: str, change: int) -> None:
        """A call of `action` started (+1) or finished (-1) being sent."""


def configured_keys(settings: config.Settings) -> list[SigningKey]:
    """The signing keys the operator set: `ACTIONBOT_WEBHOOK_SECRETS`, else
    `ACTIONBOT_WEBHOOK_SECRET` as the key `default`, else none (calls go unsigned)."""
    if settings.webhook_secrets is not None:
        return parse_keys(settings.webhook_secrets.get_secret_value())
    if settings.webhook_secret is not None:
        return [SigningKey(DEFAULT_KEY_ID, settings.webhook_secret.get_secret_value().encode())]
    return []


def idempotency_key(
    instance_key: bytes, event_key: str, action: str, arguments: str, n: int
) -> str:
    """The `Idempotency-Key` of a call made while answering one message: hex HMAC-SHA256
    under the instance key of the event key, the action, the canonical JSON of the arguments
    and `n` (how many identical calls came before it in the turn). The same message thus
    gets the same keys on every retry, restart and replica."""
    message = json.dumps([event_key, action, arguments, n], ensure_ascii=False)
    return hmac.new(instance_key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: equal arguments give equal text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def default_ssl_context(extra_ca_file: str | None = None) -> ssl.SSLContext:
    """certifi's CA bundle plus, as extra trust, `extra_ca_file` (default `$SSL_CERT_FILE`)."""
    context = ssl.create_default_context(cafile=certifi.where())
    extra = extra_ca_file if extra_ca_file is not None else os.environ.get("SSL_CERT_FILE")
    if extra:
        try:
            context.load_verify_locations(cafile=extra)
        except OSError as exc:  # ssl.SSLError is an OSError too
            raise ConfigError(f"Cannot load extra CA certificates from {extra}: {exc}") from None
    return context
