"""The `actionbot` command: `run`, `chat`, `actions …` for admins at a shell, and `db …`."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import sys
import urllib.request
from datetime import UTC, datetime
from enum import StrEnum
from http import HTTPStatus
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from pydantic import ValidationError

from actionbot.app import (
    configuration_problems,
    load_configured_actions,
    open_engine,
    open_services,
)
from actionbot.doctor import Finding, ModelReport, check_actions, check_model, check_store
from adapters.console import ConsoleAdapter, stdin_lines
from bot.actions.export import ExportFormat, TemplatesOnly, export_toml
from bot.actions.models import ActionConfig
from bot.actions.openapi import Imported, actions_file, import_operations, read_spec
from bot.admin.operations import AdminCommand, AdminResult, Notice, TestReport, Verb, render_text
from bot.audit import export as export_audit
from bot.audit import parse_since
from bot.delivery import Inbox
from bot.errors import ActionBotError, ActionsFileError, DatabaseError, StartupError
from bot.llm.client import OpenAIChatModel
from bot.outbound.egress import EgressPolicy
from bot.runtime.config import ENV_FILE, Settings, apply_env_file
from bot.runtime.logs import configure_logging, protect_secrets
from bot.runtime.tasks import Turns
from bot.store.open import configured_database, open_store
from bot.store.postgres_connect import describe
from bot.store.transfer import check_target, copy_to_postgres, shown_url

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="actionbot",
    help="ActionBot: an AI support bot for Slack and Discord with Custom Actions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
actions_app = typer.Typer(
    help="Inspect, toggle and test Custom Actions (the same operations as /actions).",
    no_args_is_help=True,
)
app.add_typer(actions_app, name="actions")
db_app = typer.Typer(help="Move the bot's data to another database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` to stderr and return the exit to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def load_settings(log_level: str = "WARNING") -> Settings:
    """Settings from the environment and `.env` (see `apply_env_file`), with logging set up
    first; exits on invalid values."""
    shadowed = apply_env_file(ENV_FILE)
    configure_logging(log_level)
    if shadowed:
        names = ", ".join(shadowed)
        logger.info("set in the environment, so %s's value is not used: %s", ENV_FILE, names)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"Invalid settings in the environment:\n{problems}", 2) from None
    protect_secrets(settings.secret_values())
    return settings


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _run_admin(command: AdminCommand) -> AdminResult:
    async with open_services(load_settings()) as services:
        return await services.admin.perform(command, actor=cli_actor())


def admin_command(command: AdminCommand) -> None:
    """Run one admin command, print it, and exit non-zero when it failed."""
    try:
        result = asyncio.run(_run_admin(command))
    except ActionBotError as exc:
        raise fail(str(exc)) from None
    failed = (isinstance(result, Notice) and result.error) or (
        isinstance(result, TestReport) and not result.result.ok
    )
    typer.echo(render_text(result), err=failed and isinstance(result, Notice))
    if failed:
        raise typer.Exit(1)


NameArg = Annotated[str, typer.Argument(help="The action name, e.g. check_inventory.")]


@actions_app.command()
def validate(
    file: Annotated[
        Path | None, typer.Argument(help="Actions file (default: ACTIONBOT_ACTIONS).")
    ] = None,
) -> None:
    """Check an actions file and list its actions, or every problem in it."""
    settings = load_settings()
    if file is not None:
        settings = settings.model_copy(update={"actions_path": file})
    path = settings.actions_path
    try:
        actions = load_configured_actions(settings)
    except ActionsFileError as exc:
        raise fail(f"{path} is not valid.\n{exc}") from None
    except ActionBotError as exc:
        raise fail(str(exc)) from None
    names = ", ".join(actions.names()) or "none"
    typer.echo(f"{path} is valid: {len(actions)} action(s): {names}.")


@actions_app.command("export")
def export_actions(
    output_format: Annotated[
        ExportFormat, typer.Option("--format", help="The file format.")
    ] = ExportFormat.TOML,
) -> None:
    """Print every action, the file's and those made in chat, as one actions file (headers
    keep their ${VAR}; no secret is read)."""
    settings = load_settings()
    try:
        actions = load_configured_actions(settings, environ=TemplatesOnly())
        made = asyncio.run(_chat_actions(settings))
    except ActionBotError as exc:
        raise fail(str(exc)) from None
    header = [f"Actions exported from {settings.actions_path} by `actionbot actions export`."]
    if made:
        header.append(f"Made in chat: {', '.join(m.name for m in made)}.")
    every = [*actions, *(m for m in made if m.name not in actions)]
    typer.echo(export_toml(every, header=header), nl=False)


async def _chat_actions(settings: Settings) -> list[ActionConfig]:
    """The actions made in chat, as their definitions read (no secret is resolved)."""
    store = await open_store(settings)
    try:
        kept = await store.chat_actions()
    finally:
        await store.close()
    found: list[ActionConfig] = []
    for made in kept:
        try:
            found.append(ActionConfig.model_validate(made.definition))
        except ValidationError as exc:
            typer.echo(f"Left out {made.name} (made in chat): {exc.errors()[0]['msg']}", err=True)
    return found


@actions_app.command("import")
def import_openapi(
    spec: Annotated[Path, typer.Argument(help="An OpenAPI 3.0 or 3.1 document, YAML or JSON.")],
    only: Annotated[
        str | None, typer.Option(help="Only these operations (operationId), e.g. listPets,addPet.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the actions file here instead of printing it.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite the --out file if it exists.")] = False,
) -> None:
    """Write actions for an OpenAPI document's operations; skipped ones listed on stderr."""
    settings = load_settings()
    if out is not None and out.exists() and not force:
        raise fail(f"{out} already exists: choose another --out, or add --force to replace it.")
    wanted = [name.strip() for name in (only or "").split(",") if name.strip()]
    try:
        imported = import_operations(read_spec(spec), only=wanted)
        text = actions_file(imported)
    except ActionBotError as exc:
        raise fail(str(exc)) from None
    for line in imported.report() + _blocked_hosts(imported, settings):
        typer.echo(line, err=True)
    if not imported.actions:
        raise fail("Nothing to write: no operation could be made into an action.")
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        with out.open("w" if force else "x", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise fail(f"Cannot write {out}: {exc.strerror}") from None
    typer.echo(f"Wrote {out}. Check it with: actionbot actions validate {out}", err=True)


def _blocked_hosts(imported: Imported, settings: Settings) -> list[str]:
    """Hosts of the imported actions that the egress policy blocks, as report lines."""
    policy = EgressPolicy(settings.egress_allow_entries)
    hosts = sorted({urlsplit(action.url).hostname or "" for action in imported.actions})
    return [
        f"Blocked: {host}: {problem} (to allow it, add {host} to ACTIONBOT_EGRESS_ALLOW)"
        for host in hosts
        if (problem := policy.host_problem(host)) is not None
    ]


class AuditFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@actions_app.command()
def audit(
    since: Annotated[
        str | None,
        typer.Option(help="Only calls since then: 2026-01-01, 2026-01-01T09:30[Z], 24h, 7d."),
    ] = None,
    action: Annotated[str | None, typer.Option(help="Only this action's calls.")] = None,
    output_format: Annotated[
        AuditFormat, typer.Option("--format", help="JSON lines or CSV with a header row.")
    ] = AuditFormat.JSONL,
) -> None:
    """Print every recorded call, oldest first: who asked (platform, team, user, channel),
    the conversation, the arguments sent (secrets masked), the idempotency key, outcome,
    status, latency and attempts. Streams: memory stays small however many calls there are."""
    settings = load_settings()
    try:
        start = None if since is None else parse_since(since, now=datetime.now(UTC))
    except ActionBotError as exc:
        raise fail(str(exc), 2) from None
    try:
        asyncio.run(_audit(settings, since=start, action=action, fmt=output_format))
    except BrokenPipeError:  # `actionbot actions audit | head`: the reader has had enough
        _quiet_stdout()
    except ActionBotError as exc:
        raise fail(str(exc)) from None


async def _audit(
    settings: Settings, *, since: datetime | None, action: str | None, fmt: AuditFormat
) -> None:
    store = await open_store(settings)
    try:
        await export_audit(store, sys.stdout, fmt=fmt.value, since=since, action=action)
        sys.stdout.flush()
    finally:
        await store.close()


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush into the closed pipe
    does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # not a real file (a test's runner): nothing to flush


def _simple(verb: Verb, name: str | None = None) -> None:
    admin_command(AdminCommand(verb, name))


@actions_app.command("list")
def list_actions() -> None:
    """Every action with its method, host, state and call count."""
    _simple("list")


@actions_app.command()
def show(name: NameArg) -> None:
    """One action's definition, with secrets masked."""
    _simple("show", name)


@actions_app.command()
def enable(name: NameArg) -> None:
    """Offer the action to the AI again."""
    _simple("enable", name)


@actions_app.command()
def disable(name: NameArg) -> None:
    """Stop offering the action to the AI (nothing is deleted)."""
    _simple("disable", name)


@actions_app.command()
def stats(
    name: Annotated[str | None, typer.Argument(help="Only this action.")] = None,
) -> None:
    """Calls, failures by outcome, average and p95 latency, last call and last error."""
    _simple("stats", name)


@actions_app.command()
def console() -> None:
    """Every action with its state, calls, success rate and p95 of the last 24 hours."""
    _simple("console")


@actions_app.command()
def resume(
    conversation: Annotated[
        str, typer.Argument(help="The conversation, e.g. slack:C0123:1700000000.000100.")
    ],
) -> None:
    """Let the bot answer again in a conversation handed to a person (or every one under
    a channel, e.g. slack:C0123)."""
    _simple("resume", conversation)


@actions_app.command()
def delete(name: NameArg) -> None:
    """Delete an action made in chat (actions of the file are removed in the file)."""
    _simple("delete", name)


@actions_app.command()
def dryrun(
    name: NameArg,
    mode: Annotated[
        str, typer.Argument(help="on: nothing is sent, the AI sees what would be; off: live.")
    ],
) -> None:
    """Put an action in dry-run mode (on) or back live (off), overriding the file's `mode`."""
    if mode.lower() not in ("on", "off"):
        raise fail(f"dryrun takes `on` or `off`, not {mode!r}.", 2)
    admin_command(AdminCommand("dryrun", name, {"mode": mode.lower()}))


@actions_app.command()
def reload() -> None:
    """Only the running bot reloads its actions (file watch, SIGHUP, /actions reload)."""
    _simple("reload")


@actions_app.command("test")
def try_action(
    name: NameArg,
    arguments: Annotated[
        list[str] | None, typer.Argument(help="Arguments as key=value, e.g. part_name=screen.")
    ] = None,
) -> None:
    """Call the action's endpoint once and print outcome, status, latency and body."""
    pairs: dict[str, str] = {}
    for word in arguments or []:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise fail(f"Arguments are key=value pairs; {word!r} is not one.", 2)
        pairs[key] = value
    admin_command(AdminCommand("test", name, pairs))


async def _chat(settings: Settings, model: OpenAIChatModel, conversation: str) -> None:
    interactive = sys.stdin.isatty()
    async with open_services(settings) as services, open_engine(services, model) as engine:
        if interactive:
            names = ", ".join(services.actions.names()) or "none"
            typer.echo(f"ActionBot console. Actions: {names}. Type /actions help, Ctrl-D to quit.")
        console = ConsoleAdapter(
            engine=engine,
            admin=services.admin,
            conversation=conversation,
            out=sys.stdout,
            interactive=interactive,
            inbox=Inbox(services.store, Turns(), metrics=services.metrics),
        )
        await console.run(stdin_lines("you> " if interactive else None))


def start_chat(conversation: str, *, log_level: str = "WARNING") -> None:
    settings = load_settings(log_level)
    try:
        model = OpenAIChatModel.from_settings(settings)
        asyncio.run(_chat(settings, model, conversation))
    except ActionBotError as exc:
        raise fail(str(exc), 2) from None
    except KeyboardInterrupt:
        typer.echo("")


@app.command()
def chat(
    conversation: Annotated[
        str, typer.Option(help="Conversation name; the same name continues its history.")
    ] = "local",
) -> None:
    """Talk to the bot as a customer on this terminal (lines starting /actions are admin)."""
    start_chat(conversation)


NO_PLATFORM = """No chat platform is configured and there is no terminal to chat on.
Set SLACK_BOT_TOKEN (+ SLACK_APP_TOKEN or SLACK_SIGNING_SECRET) or DISCORD_TOKEN,
or run `actionbot chat` in a terminal to talk to the bot locally."""


async def _serve(settings: Settings, model: OpenAIChatModel) -> None:
    # The composition root: platform adapters are imported only when a platform is configured.
    from actionbot.catalogue import Catalogue
    from actionbot.platforms import serve

    async with open_services(settings) as services, open_engine(services, model) as engine:
        reloader = Catalogue(
            settings, services.actions, webhooks=services.webhooks, store=services.store
        )
        services.admin.editing.catalogue = reloader
        await serve(
            settings,
            engine=engine,
            admin=services.admin,
            store=services.store,
            metrics=services.metrics,
            alerts=services.alerts,
            reloader=reloader,
        )


def check_configuration(settings: Settings, *, extra: list[str] | None = None) -> None:
    """Exit with every configuration problem listed, if there is any."""
    problems = configuration_problems(settings) + (extra or [])
    if problems:
        raise fail(str(StartupError(problems)), 2)


@app.command()
def run() -> None:
    """Start the bot on every platform whose token is set; the console when none is."""
    settings = load_settings("INFO")
    headless = not settings.has_platform and not sys.stdin.isatty()
    check_configuration(settings, extra=[NO_PLATFORM] if headless else [])
    if not settings.has_platform:
        start_chat("local")  # a conversation on this terminal: only warnings interrupt it
        return
    try:
        model = OpenAIChatModel.from_settings(settings)
        asyncio.run(_serve(settings, model))
    except DatabaseError as exc:  # damaged or locked: nothing to configure, exit 1
        raise fail(str(exc), 1) from None
    except ActionBotError as exc:
        raise fail(str(exc), 2) from None


async def _diagnose(settings: Settings) -> tuple[list[Finding], ModelReport | None]:
    """Every check of `actionbot doctor`, in the order they are printed."""
    findings = [Finding("configuration", False, p) for p in configuration_problems(settings)]
    findings.append(await check_store(lambda: open_store(settings)))
    report = None
    if settings.openai_api_key is not None or settings.openai_base_url:
        model = OpenAIChatModel.from_settings(settings)
        try:
            report = await check_model(model)
            findings += report.findings
            await _remember(settings, model, report)
        finally:
            await model.aclose()
    try:
        actions = load_configured_actions(settings)
    except ActionBotError:
        actions = None  # already listed as a configuration problem
    if actions is not None:
        findings += await check_actions(actions, EgressPolicy(settings.egress_allow_entries))
        if settings.has_platform:
            findings += await _platform_findings(settings)
    return findings, report


async def _remember(settings: Settings, model: OpenAIChatModel, report: ModelReport) -> None:
    """Keep what was found, so `run` in auto mode starts with the tools in the prompt."""
    if report.native_tools is None:
        return
    try:
        store = await open_store(settings)
    except ActionBotError:
        return  # the database finding already says why
    try:
        await store.record_model_check(
            model.endpoint, model.model, native_tools=report.native_tools
        )
    finally:
        await store.close()


async def _platform_findings(settings: Settings) -> list[Finding]:
    from actionbot.platforms import configured_platforms
    from bot.runtime.http import HttpServer

    model = OpenAIChatModel.from_settings(settings)
    async with open_services(settings) as services, open_engine(services, model) as engine:
        turns = Turns()
        platforms = configured_platforms(
            settings,
            engine=engine,
            admin=services.admin,
            store=services.store,
            turns=turns,
            inbox=Inbox(services.store, turns, metrics=services.metrics),
            http=HttpServer(port=0),
            alerts=services.alerts,
        )
        findings = []
        for name, platform in platforms.items():
            try:
                await platform.check()
            except ActionBotError as exc:
                findings.append(Finding(name, False, str(exc)))
            else:
                findings.append(Finding(name, True, "tokens accepted"))
        return findings


def _print_findings(findings: list[Finding], report: ModelReport | None) -> int:
    """The report; the number of blocking problems."""
    width = max(len(f.check) for f in findings)
    for f in findings:
        mark = "ok  " if f.ok else ("FAIL" if f.blocking else "warn")
        detail = f.detail.replace("\n", " ")
        typer.echo(f"  {mark}  {f.check.ljust(width)}  {detail}")
    if report is not None and report.native_tools is not None:
        mode = report.recommended
        why = (
            "native tool calls work"
            if mode == "native"
            else "this server does not call tools natively; in auto mode ActionBot now "
            "describes them in the prompt for this model"
        )
        typer.echo(f"\nRecommended: ACTIONBOT_TOOL_MODE={mode} ({why}).")
    problems = sum(1 for f in findings if f.blocking and not f.ok)
    typer.echo("\nThe bot can run." if not problems else f"\n{problems} problem(s) to fix.")
    return problems


@app.command()
def doctor() -> None:
    """Check the model server, the actions' hosts, the database and the platform tokens."""
    settings = load_settings()
    typer.echo("ActionBot doctor")
    findings, report = asyncio.run(_diagnose(settings))
    if _print_findings(findings, report):
        raise typer.Exit(1)


@app.command()
def mcp(
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Serve over streamable HTTP on ACTIONBOT_MCP_PORT (needs ACTIONBOT_MCP_TOKEN) "
            "instead of stdin/stdout.",
        ),
    ] = False,
) -> None:
    """Serve the active actions as MCP tools to other agents (Claude Desktop, IDEs, …)."""
    # The MCP SDK (and its web server) is imported only for this command.
    from actionbot.mcp import HTTP_NEEDS_BEARER, serve_mcp

    settings = load_settings("INFO")
    if http and settings.mcp_token is None:
        raise fail(HTTP_NEEDS_BEARER, 2)
    problems = configuration_problems(settings, need_llm=False)
    if problems:
        raise fail(str(StartupError(problems)), 2)
    try:
        asyncio.run(serve_mcp(settings, http=http))
    except DatabaseError as exc:
        raise fail(str(exc), 1) from None
    except ActionBotError as exc:
        raise fail(str(exc), 2) from None


@app.command()
def healthcheck() -> None:
    """Exit 0 if the running bot's /healthz answers on ACTIONBOT_HTTP_HOST:ACTIONBOT_HTTP_PORT
    (Docker uses it)."""
    settings = load_settings()
    wildcard = settings.http_host in ("0.0.0.0", "::", "")  # noqa: S104 - compared, not bound
    host = "127.0.0.1" if wildcard else settings.http_host
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{settings.http_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            healthy = response.status == HTTPStatus.OK
    except OSError as exc:
        raise fail(f"unhealthy: {url}: {exc}") from None
    if not healthy:
        raise fail(f"unhealthy: {url} answered {response.status}")
    typer.echo("healthy")


@db_app.command("migrate-to")
def migrate_to(
    url: Annotated[
        str,
        typer.Argument(
            help="The PostgreSQL database: postgresql://user:password@host:5432/database.",
            show_default=False,
        ),
    ],
) -> None:
    """Copy the SQLite database (ACTIONBOT_DB) into PostgreSQL; safe to run again. Stop the
    bot first."""
    settings = load_settings()
    try:
        check_target(url)
        source = configured_database(settings)
    except ActionBotError as exc:
        raise fail(str(exc), 2) from None
    if source.path is None:
        raise fail(
            f"The settings already name a PostgreSQL database ({source.describe()}): set "
            "ACTIONBOT_DB (or ACTIONBOT_DATABASE_URL=sqlite:///…) to the SQLite file to copy.",
            2,
        )
    protect_secrets([urlsplit(url).password or ""])
    try:
        asyncio.run(copy_to_postgres(source.path, url, report=lambda done: typer.echo(done)))
    except ActionBotError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"Copied {source.path} into {describe(url)}. Now set "
        f"ACTIONBOT_DATABASE_URL={shown_url(url)} and restart ActionBot."
    )


def main() -> None:
    """Console-script entry point."""
    app(prog_name="actionbot")


if __name__ == "__main__":
    main()
