"""Settings from the environment (and `.env`), with every default named once."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.runtime.rates import parse_rate

ENV_FILE = Path(".env")
"""Settings file read from the working directory; the environment wins over it."""
DEFAULT_ACTIONS_PATH = Path("actions.toml")
DEFAULT_DB_PATH = Path("actionbot.db")
DEFAULT_DB_POOL_MIN = 2
DEFAULT_DB_POOL_MAX = 10
"""PostgreSQL connections per process: a turn holds one only for the length of a statement."""
DEFAULT_HANDOFF_HOURS = 24.0
DEFAULT_DISCORD_SHARDS = 1
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_HTTP_PORT = 8080
DEFAULT_HTTP_HOST = "127.0.0.1"
"""A bare `actionbot run` listens on loopback only; the Docker image sets 0.0.0.0."""
DEFAULT_MCP_PORT = 8090
"""Port of `actionbot mcp --http` (on `ACTIONBOT_HTTP_HOST`)."""

DEFAULT_ACTION_TIMEOUT = 10.0
"""Seconds for one webhook call: connect, send and the whole body, as one deadline."""
DEFAULT_MAX_TIMEOUT = 30.0
"""Upper bound on any action's own `timeout`."""
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""A webhook body larger than this is refused, not read further."""
DEFAULT_RESULT_CHARS = 4000
"""At most this many characters of a webhook body are shown to the model."""
DEFAULT_MAX_REDIRECTS = 3
DEFAULT_WEBHOOK_CONNECTIONS = 100
"""Webhook calls in flight at once across all actions (the connection pool's size)."""
DEFAULT_WEBHOOK_QUEUE_TIMEOUT = 5.0
"""Seconds a call may wait for a free slot before it ends `busy` (not part of its timeout)."""
DEFAULT_MAX_CONCURRENCY = 10
"""Calls of one action in flight at once, unless its `max_concurrency` says otherwise."""

DEFAULT_MAX_TOOL_ROUNDS = 5
DEFAULT_MAX_TOOL_CALLS = 8
"""Webhook calls sent per model round; further calls get a tool error, unsent."""
DEFAULT_TURN_ATTEMPTS = 3
"""Times a message's turn is started (after crashes) before it is given up with an apology."""
DEFAULT_CONFIRM_TTL = 600.0
"""Seconds a confirmation card waits for its click before the call counts as declined."""
DEFAULT_CALL_LOG_DAYS = 90
"""Days call rows are kept (the per-action totals count every call ever made)."""
DEFAULT_LLM_TIMEOUT = 60.0
DEFAULT_LLM_MAX_RETRIES = 2
DEFAULT_HISTORY_MESSAGES = 40
DEFAULT_HISTORY_CHARS = 24000
DEFAULT_HISTORY_DAYS = 30
DEFAULT_MAX_TURNS = 100
"""Customer turns running at once; more wait, in order, for one to finish."""
DEFAULT_SHUTDOWN_GRACE = 20.0
"""Seconds turns in progress get to finish after SIGTERM before they are cancelled."""


def apply_env_file(
    path: Path = ENV_FILE, environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Load `path` (`.env`) into the environment, never overriding a variable already set,
    so the `${VAR}` secrets of the actions file, `LOG_LEVEL` and `SSL_CERT_FILE` can live
    there too. A blank value counts as unset on both sides: a blank variable is removed (so
    `.env` may fill it, and no library reads `""` as a setting), and a blank line of `.env`
    sets nothing. Returns the names the environment sets to something else than `.env`
    does (names only, for the startup log: values may be secrets)."""
    env = os.environ if environ is None else environ
    for name in [name for name, value in env.items() if not value.strip()]:
        del env[name]
    found = dotenv_values(path) if path.is_file() else {}
    values = {name: value for name, value in found.items() if value and value.strip()}
    shadowed = sorted(name for name, value in values.items() if env.get(name, value) != value)
    for name, value in values.items():
        env.setdefault(name, value)
    return shadowed


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Everything an operator configures. Trust settings (egress, secrets) live only here,
    never in the actions file."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
        frozen=True,
    )

    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    model: str = Field(DEFAULT_MODEL, validation_alias=_env("ACTIONBOT_MODEL"))
    actions_path: Path = Field(DEFAULT_ACTIONS_PATH, validation_alias=_env("ACTIONBOT_ACTIONS"))
    db_path: Path = Field(DEFAULT_DB_PATH, validation_alias=_env("ACTIONBOT_DB"))
    database_url: SecretStr | None = Field(None, validation_alias=_env("ACTIONBOT_DATABASE_URL"))
    """`sqlite:///path` or `postgresql://user:password@host:port/db`; wins over `db_path`."""
    db_pool_min: int = Field(
        DEFAULT_DB_POOL_MIN, ge=0, validation_alias=_env("ACTIONBOT_DB_POOL_MIN")
    )
    db_pool_max: int = Field(
        DEFAULT_DB_POOL_MAX, ge=1, validation_alias=_env("ACTIONBOT_DB_POOL_MAX")
    )
    admins: str = Field("", validation_alias=_env("ACTIONBOT_ADMINS"))
    system_prompt: str = Field("", validation_alias=_env("ACTIONBOT_SYSTEM_PROMPT"))
    webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("ACTIONBOT_WEBHOOK_SECRET")
    )
    webhook_secrets: SecretStr | None = Field(
        None, validation_alias=_env("ACTIONBOT_WEBHOOK_SECRETS")
    )
    """`id:secret,id:secret`: the first signs, all are listed for receivers (rotation)."""
    egress_allow: str = Field("", validation_alias=_env("ACTIONBOT_EGRESS_ALLOW"))
    http_port: int = Field(DEFAULT_HTTP_PORT, validation_alias=_env("ACTIONBOT_HTTP_PORT"))
    http_host: str = Field(
        DEFAULT_HTTP_HOST, min_length=1, validation_alias=_env("ACTIONBOT_HTTP_HOST")
    )
    """Address the HTTP server binds: loopback unless the operator (or the image) opens it."""
    metrics_token: SecretStr | None = Field(None, validation_alias=_env("ACTIONBOT_METRICS_TOKEN"))
    """When set, `/metrics` wants `Authorization: Bearer <token>`."""
    mcp_port: int = Field(
        DEFAULT_MCP_PORT, ge=0, le=65535, validation_alias=_env("ACTIONBOT_MCP_PORT")
    )
    """Port of `actionbot mcp --http` (0: any free port, logged at start)."""
    mcp_token: SecretStr | None = Field(None, validation_alias=_env("ACTIONBOT_MCP_TOKEN"))
    """The bearer token every `actionbot mcp --http` request must carry (required there)."""

    max_timeout: float = Field(
        DEFAULT_MAX_TIMEOUT, gt=0, validation_alias=_env("ACTIONBOT_MAX_TIMEOUT")
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES, gt=0, validation_alias=_env("ACTIONBOT_MAX_BODY_BYTES")
    )
    result_chars: int = Field(
        DEFAULT_RESULT_CHARS, gt=0, validation_alias=_env("ACTIONBOT_RESULT_CHARS")
    )
    webhook_connections: int = Field(
        DEFAULT_WEBHOOK_CONNECTIONS, ge=1, validation_alias=_env("ACTIONBOT_WEBHOOK_CONNECTIONS")
    )
    webhook_queue_timeout: float = Field(
        DEFAULT_WEBHOOK_QUEUE_TIMEOUT,
        ge=0,
        validation_alias=_env("ACTIONBOT_WEBHOOK_QUEUE_TIMEOUT"),
    )

    max_tool_rounds: int = Field(
        DEFAULT_MAX_TOOL_ROUNDS, ge=1, validation_alias=_env("ACTIONBOT_MAX_TOOL_ROUNDS")
    )
    max_tool_calls: int = Field(
        DEFAULT_MAX_TOOL_CALLS, ge=1, validation_alias=_env("ACTIONBOT_MAX_TOOL_CALLS")
    )
    turn_attempts: int = Field(
        DEFAULT_TURN_ATTEMPTS, ge=1, validation_alias=_env("ACTIONBOT_TURN_ATTEMPTS")
    )
    confirm_ttl: float = Field(
        DEFAULT_CONFIRM_TTL, gt=0, validation_alias=_env("ACTIONBOT_CONFIRM_TTL")
    )
    call_log_days: int = Field(
        DEFAULT_CALL_LOG_DAYS, ge=0, validation_alias=_env("ACTIONBOT_CALL_LOG_DAYS")
    )
    llm_timeout: float = Field(
        DEFAULT_LLM_TIMEOUT, gt=0, validation_alias=_env("ACTIONBOT_LLM_TIMEOUT")
    )
    tool_mode: Literal["native", "prompt", "auto"] = Field(
        "auto", validation_alias=_env("ACTIONBOT_TOOL_MODE")
    )
    """How tools reach the model: its native tool calling, described in the prompt, or
    native with a fallback to the prompt when the server shows it ignores tools."""
    llm_max_retries: int = Field(
        DEFAULT_LLM_MAX_RETRIES, ge=0, validation_alias=_env("ACTIONBOT_LLM_MAX_RETRIES")
    )
    history_messages: int = Field(
        DEFAULT_HISTORY_MESSAGES, ge=2, validation_alias=_env("ACTIONBOT_HISTORY_MESSAGES")
    )
    history_chars: int = Field(
        DEFAULT_HISTORY_CHARS, ge=1000, validation_alias=_env("ACTIONBOT_HISTORY_CHARS")
    )
    history_days: int = Field(
        DEFAULT_HISTORY_DAYS, ge=0, validation_alias=_env("ACTIONBOT_HISTORY_DAYS")
    )

    max_turns: int = Field(DEFAULT_MAX_TURNS, ge=1, validation_alias=_env("ACTIONBOT_MAX_TURNS"))
    shutdown_grace: float = Field(
        DEFAULT_SHUTDOWN_GRACE, ge=0, validation_alias=_env("ACTIONBOT_SHUTDOWN_GRACE")
    )

    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_api_url: str | None = Field(None, validation_alias=_env("SLACK_API_URL"))
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    discord_guild: int | None = Field(None, validation_alias=_env("ACTIONBOT_DISCORD_GUILD"))
    """Register /actions in this server only (instant); globally (may take a while) if unset."""
    discord_shards: int = Field(
        DEFAULT_DISCORD_SHARDS, ge=1, validation_alias=_env("ACTIONBOT_DISCORD_SHARDS")
    )
    """Gateway shards in all: each replica connects the shards whose lease it holds."""
    suggested_prompts: str = Field("", validation_alias=_env("ACTIONBOT_SUGGESTED_PROMPTS"))
    """Slack assistant threads' suggested prompts, `|`-separated (at most 4 are shown)."""
    handoff_channel: str = Field("", validation_alias=_env("ACTIONBOT_HANDOFF_CHANNEL"))
    """Where handoffs to a person are posted: `slack:C…` and/or `discord:…`, comma-separated."""
    handoff_mention: str = Field("", validation_alias=_env("ACTIONBOT_HANDOFF_MENTION"))
    """Who a handoff pings, per platform: `slack:S…` (user group), `slack:U…`, `slack:here`,
    `discord:<role id>`, `discord:here`."""
    handoff_hours: float = Field(
        DEFAULT_HANDOFF_HOURS, gt=0, validation_alias=_env("ACTIONBOT_HANDOFF_HOURS")
    )
    """How long the bot stays silent in a conversation handed to a person, unless resumed."""
    alert_channel: str = Field("", validation_alias=_env("ACTIONBOT_ALERT_CHANNEL"))
    """Where admins are told of an action's breaker opening: `slack:C…` and/or `discord:…`."""
    breaker_failures: int = Field(
        DEFAULT_BREAKER_FAILURES, ge=1, validation_alias=_env("ACTIONBOT_BREAKER_FAILURES")
    )
    """Consecutive failures (timeout, connection error, 5xx) that open an action's breaker."""
    user_rate: str = Field("", validation_alias=_env("ACTIONBOT_USER_RATE"))
    """Turns per customer per platform, `20/minute` (per process); empty: no limit."""

    @field_validator("user_rate")
    @classmethod
    def _check_user_rate(cls, value: str) -> str:
        return parse_rate(value).text if value.strip() else ""

    @field_validator("handoff_channel", "handoff_mention", "alert_channel")
    @classmethod
    def _per_platform(cls, value: str) -> str:
        for platform, target in _platform_pairs(value).items():
            if platform not in PLATFORMS:
                raise ValueError(f"{platform!r} is not a platform; use slack:… or discord:…")
            if not target:
                raise ValueError(f"{platform}: needs a channel, group or role after the colon")
        return value

    @property
    def handoff_channels(self) -> dict[str, str]:
        """Handoff channel per platform (`ACTIONBOT_HANDOFF_CHANNEL`)."""
        return _platform_pairs(self.handoff_channel)

    @property
    def alert_channels(self) -> dict[str, str]:
        """Alert channel per platform (`ACTIONBOT_ALERT_CHANNEL`)."""
        return _platform_pairs(self.alert_channel)

    @property
    def handoff_mentions(self) -> dict[str, str]:
        """Who a handoff pings, per platform (`ACTIONBOT_HANDOFF_MENTION`)."""
        return _platform_pairs(self.handoff_mention)

    @property
    def suggested_prompt_list(self) -> list[str]:
        return [p.strip() for p in self.suggested_prompts.split("|") if p.strip()]

    def secret_values(self) -> list[str]:
        """The values of every secret setting that is set (for log redaction)."""
        secrets = (
            self.openai_api_key,
            self.webhook_secret,
            self.webhook_secrets,
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.discord_token,
            self.metrics_token,
            self.mcp_token,
        )
        values = [s.get_secret_value() for s in secrets if s is not None]
        if self.database_url is not None:  # the password of the database URL, both forms
            password = _password(self.database_url.get_secret_value())
            values += [password, unquote(password)]
        if self.webhook_secrets is not None:  # each secret of the list on its own, too
            for entry in self.webhook_secrets.get_secret_value().split(","):
                values += [entry.partition(":")[2].strip()] if ":" in entry else []
        return [v for v in values if v]

    @property
    def has_platform(self) -> bool:
        """Whether any chat platform token is set."""
        return self.slack_bot_token is not None or self.discord_token is not None

    @property
    def admin_ids(self) -> frozenset[str]:
        """Admin ids as `platform:id`, e.g. `slack:U123` (`ACTIONBOT_ADMINS`, spaces allowed)."""
        return frozenset(part.strip() for part in self.admins.split(",") if part.strip())

    @property
    def egress_allow_entries(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.egress_allow.split(",") if part.strip())


PLATFORMS = ("slack", "discord")


def _platform_pairs(value: str) -> dict[str, str]:
    """`slack:C1, discord:2` as {"slack": "C1", "discord": "2"}; an entry without a colon is
    kept under its whole text (and refused by the validator)."""
    pairs: dict[str, str] = {}
    for entry in value.replace(" ", ",").split(","):
        if entry.strip():
            platform, _, target = entry.strip().partition(":")
            pairs[platform.lower()] = target.strip()
    return pairs


def _password(url: str) -> str:
    """The password in a database URL ("" if none, or if the URL cannot be read)."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
