"""Settings: `.env` loaded under the environment, blank values as unset on both sides."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_settings
from pydantic import ValidationError

from actionbot.app import configuration_problems
from bot.runtime.config import Settings, apply_env_file


def test_environment_wins_and_the_shadowed_names_are_returned(tmp_path: Path) -> None:
    """A variable set in both keeps the environment's value; its name (never its value) is
    returned for the startup log; `.env` fills what the environment lacks."""
    env_file = tmp_path / ".env"
    env_file.write_text("SSL_CERT_FILE=/srv/shop-ca.pem\nCRM_TOKEN=from-dotenv\nSAME=1\n")
    environ = {"SSL_CERT_FILE": "/etc/ssl/system.pem", "SAME": "1"}

    shadowed = apply_env_file(env_file, environ)

    assert shadowed == ["SSL_CERT_FILE"]
    assert environ == {
        "SSL_CERT_FILE": "/etc/ssl/system.pem",
        "CRM_TOKEN": "from-dotenv",
        "SAME": "1",
    }


def test_blank_values_count_as_unset_on_both_sides(tmp_path: Path) -> None:
    """`export OPENAI_BASE_URL=` does not hide `.env`'s value, and `OPENAI_API_KEY=` in
    `.env` sets nothing (the openai SDK would otherwise take `""` as its base URL)."""
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_BASE_URL=http://localhost:11434/v1\nOPENAI_API_KEY=\n")
    environ = {"OPENAI_BASE_URL": "", "ACTIONBOT_MODEL": "  "}

    assert apply_env_file(env_file, environ) == []
    assert environ == {"OPENAI_BASE_URL": "http://localhost:11434/v1"}


def test_missing_env_file_changes_nothing_but_blanks(tmp_path: Path) -> None:
    """Without a `.env`, the environment is used as it is (blank variables still dropped)."""
    environ = {"OPENAI_API_KEY": "sk-x", "SLACK_APP_TOKEN": ""}
    assert apply_env_file(tmp_path / ".env", environ) == []
    assert environ == {"OPENAI_API_KEY": "sk-x"}


def test_a_malformed_secrets_list_is_a_startup_problem_naming_the_entry() -> None:
    """`ACTIONBOT_WEBHOOK_SECRETS` that is not `id:secret,…` is listed with the other
    problems, by position, without the secret."""
    settings = make_settings(webhook_secrets="new:s3cr3t-value,oops", openai_api_key="sk-x")
    problems = configuration_problems(settings)
    [problem] = [p for p in problems if "ACTIONBOT_WEBHOOK_SECRETS" in p]
    assert "entry 2" in problem
    assert "s3cr3t-value" not in problem


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    """An operator finds every variable the bot reads in README's table."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = [
        field.validation_alias.choices[0]  # type: ignore[union-attr]
        for field in Settings.model_fields.values()
    ]
    assert [name for name in names if f"`{name}`" not in table] == []


def test_handoff_channels_are_read_per_platform_and_checked() -> None:
    """`ACTIONBOT_HANDOFF_CHANNEL` is `platform:id` pairs; an unknown platform is refused
    when settings load, and a platform without its token is a startup problem."""
    settings = make_settings(
        handoff_channel="slack:C1, discord:42", handoff_mention="slack:S9", openai_api_key="k"
    )
    assert settings.handoff_channels == {"slack": "C1", "discord": "42"}
    assert settings.handoff_mentions == {"slack": "S9"}
    problems = configuration_problems(settings)
    assert [p for p in problems if "HANDOFF" in p] == [
        "ACTIONBOT_HANDOFF_CHANNEL names a slack channel, but slack is not configured: set "
        "its token, or remove the entry.",
        "ACTIONBOT_HANDOFF_CHANNEL names a discord channel, but discord is not configured: set "
        "its token, or remove the entry.",
    ]
    with pytest.raises(ValidationError, match="'teams' is not a platform"):
        make_settings(handoff_channel="teams:general")
    with pytest.raises(ValidationError, match="needs a channel"):
        make_settings(handoff_channel="slack:")
