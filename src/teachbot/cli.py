"""The ``teachbot`` command line: run the bot, chat in the terminal, train, test and manage models."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from teachbot.config import Settings, load_settings
from teachbot.errors import ConfigError, TeachbotError, UserError, file_error
from teachbot.logs import configure_logging
from teachbot.memory import map_large_blocks

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from teachbot.answering.encoding import LazyEncoder
    from teachbot.datasets.validation import ValidationReport

T = TypeVar("T")
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Plain help (no rich panels): flags read `--json`, not `--json <bool>`.
_PLAIN: dict[str, Any] = {"rich_markup_mode": None, "no_args_is_help": True, "add_completion": False}
app = typer.Typer(help="teachbot: a Discord bot you talk to and teach.", **_PLAIN)
models_app = typer.Typer(help="List, activate and roll back model versions.", **_PLAIN)
app.add_typer(models_app, name="models")
datasets_app = typer.Typer(help="Datasets: list, show, diff, export, delete, select, validate.", **_PLAIN)
app.add_typer(datasets_app, name="datasets")


@functools.cache
def _stderr() -> Console:
    """rich's console on stderr, made when first needed: importing rich took 57 ms of every start (-X importtime)."""
    from rich.console import Console

    return Console(stderr=True)


ScopeOption = Annotated[str | None, typer.Option("--scope", help="Knowledge scope (default: the `scope` setting).")]


def _error(message: str) -> None:
    """One plain line on stderr (no wrapping, no traceback)."""
    typer.echo(f"error: {message}", err=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def _with_app(
    settings: Settings,
    work: Callable[[Any], Awaitable[T]],
    *,
    console_logs: bool = False,
    encoder: LazyEncoder | None = None,
    preload_encoder: bool = True,
) -> T:
    """Start the app, run ``work(app)``, close it; a ``UserError`` becomes one line and exit 2. ``encoder``:
    the one these settings name, already loading (``_early_encoder``); ``preload_encoder``: see ``App.start``."""
    from teachbot.app import App

    configure_logging(settings.log_level, settings.data_dir, settings.secret_values(), console=console_logs)

    async def main() -> T:
        application = await App.start(settings, encoder=encoder, preload_encoder=preload_encoder)
        try:
            return await work(application)
        finally:
            await application.close()

    try:
        return asyncio.run(main())
    except UserError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


def _scope(settings: Settings, scope: str | None) -> str:
    if scope is None:
        return settings.scope
    try:
        return load_settings(scope=scope).scope
    except ConfigError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def run(scope: ScopeOption = None) -> None:
    """Run the bot: on Discord when a token is configured, else as a chat in this terminal."""
    settings = _settings()
    if settings.discord_token is not None and settings.discord_token.get_secret_value():
        _run_discord(settings)
        return
    backend = (
        "the embedded local model" if settings.backend.value == "local" else f"the {settings.backend.value} backend"
    )
    typer.echo(
        f"No Discord token configured (TEACHBOT_DISCORD_TOKEN): chatting in the terminal on {backend}.", err=True
    )
    _chat(settings, _scope(settings, scope))


def _run_discord(settings: Settings) -> None:
    from teachbot.transports.discord.bot import run_bot

    configure_logging(settings.log_level, settings.data_dir, settings.secret_values(), console=True)
    asyncio.run(run_bot(settings))


@app.command()
def chat(
    scope: ScopeOption = None,
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            help="Teach as you go: after each answer, pick the right one of the likeliest answers or type it.",
        ),
    ] = False,
) -> None:
    """Chat with the bot in this terminal (lines starting with the prefix are commands)."""
    settings = _settings()
    _chat(settings, _scope(settings, scope), interactive=interactive)


def _chat(settings: Settings, scope: str, *, interactive: bool = False) -> None:
    encoder = _early_encoder(settings)
    from teachbot.transports.console import run_console

    _with_app(settings, lambda application: run_console(application, scope, interactive=interactive), encoder=encoder)


def _early_encoder(settings: Settings) -> LazyEncoder | None:
    """The sentence encoder, loading from now on, before the rest of teachbot is imported. onnxruntime builds
    its session without holding the GIL, so the load hides behind the imports; started by ``App.start`` it
    ended after the model had loaded, and the first question waited for it. A setting that names no usable
    model is left for ``App.start`` to report, as for every other command."""
    from teachbot.answering.encoding import lazy_encoder

    try:
        encoder = lazy_encoder(settings.encoder, cache_dir=settings.encoder_prepared_in)
    except ConfigError:
        return None
    if encoder is not None:
        encoder.start()
    return encoder


@app.command()
def config() -> None:
    """Print the effective settings, secrets masked."""
    settings = _settings()
    for name, value in settings.public_view().items():
        typer.echo(f"{name} = {json.dumps(value, ensure_ascii=False)}")


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the project (created if missing).")] = Path("."),
) -> None:
    """Create a project: teachbot.toml, an example dataset and test set, and a model trained on them."""
    from teachbot.project import command_name, create_project, train_example, try_this
    from teachbot.transports import wording

    try:
        project = create_project(folder)
    except UserError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"Wrote {', '.join(path.name for path in project.files)} in {project.shown}/.")
    os.chdir(project.folder)  # from here on, settings are read as `cd FOLDER && teachbot …` will read them
    settings = _settings()

    async def work(application: Any) -> Any:
        with _progress() as bar:
            task = bar.add_task("training", total=1.0)
            return await train_example(
                application, project, progress=lambda stage, done: bar.update(task, description=stage, completed=done)
            )

    outcome = _with_app(settings, work)
    typer.echo(wording.train_outcome(outcome, settings.command_prefix))
    starter = settings.starter_examples
    typer.echo(try_this(project, command=command_name(), prefix=settings.command_prefix, starter=starter))


def _progress() -> Progress:
    """A progress bar on stderr that clears itself when done, so what follows starts on a clean line."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # chat starts without it

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=_stderr(), transient=True
    )


@app.command()
def train(
    paths: Annotated[list[Path], typer.Argument(help="Dataset files to import before training.")] = [],  # noqa: B006
    scope: ScopeOption = None,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: each file's name).")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, tsv, jsonl, yaml or text (default: guessed).")
    ] = None,
    prompt_column: Annotated[str | None, typer.Option(help="CSV column holding the prompts.")] = None,
    answer_column: Annotated[str | None, typer.Option(help="CSV column holding the answers.")] = None,
) -> None:
    """Import dataset files, train a new model version and activate it.

    Every file is validated first; a file with errors stops the command before anything is imported.
    """
    from teachbot.transports import wording

    settings = _settings()
    chosen = _scope(settings, scope)
    for path in paths:
        report = _validate(settings, path, fmt, prompt_column, answer_column)
        if not report.ok:
            _stderr().print(report.to_text(limit=3), markup=False, highlight=False, soft_wrap=True)
            _error(f"nothing was imported; run `teachbot datasets validate {path}` for details.")
            raise typer.Exit(EXIT_USAGE)
        if report.warning_count:
            typer.echo(
                f"{report.source}: {report.warning_count} warning(s); `teachbot datasets validate {path}` lists them.",
                err=True,
            )

    async def work(application: Any) -> None:
        for path in paths:
            info = await application.datasets.import_file(
                chosen,
                path,
                author="cli",
                name=name,
                fmt=fmt,
                prompt_column=prompt_column,
                answer_column=answer_column,
                max_bytes=settings.max_upload_bytes,
            )
            typer.echo(wording.dataset_info(info, imported=True, prefix="teachbot "))
        if application.trainer is not None:
            application.trainer.one_shot = True  # this process answers nothing: see TrainingService.one_shot
        with _progress() as bar:
            task = bar.add_task("training", total=1.0)
            outcome = await application.training.train(
                chosen, author="cli", progress=lambda stage, done: bar.update(task, description=stage, completed=done)
            )
        typer.echo(wording.train_outcome(outcome, settings.command_prefix))

    _with_app(settings, work, preload_encoder=False)  # a retrain with every vector cached never needs the encoder


def _cached_encoder(settings: Settings) -> Any:
    """The sentence encoder with its vector cache in the data folder (None for encoder=none)."""
    from teachbot.answering.encoding import CachedEncoder, lazy_encoder

    try:
        encoder = lazy_encoder(settings.encoder, cache_dir=settings.encoder_prepared_in)
    except ConfigError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    return CachedEncoder(encoder, settings.cache_dir) if encoder is not None else None


def _validate(
    settings: Settings, path: Path, fmt: str | None, prompt_column: str | None, answer_column: str | None
) -> ValidationReport:
    """The full validation of a dataset file for the configured backend; an unreadable file exits 2."""
    from teachbot.datasets.validation import validate_file

    try:
        return validate_file(
            path,
            fmt=fmt,
            prompt_column=prompt_column,
            answer_column=answer_column,
            max_bytes=settings.max_upload_bytes,
            backend=settings.backend,
        )
    except UserError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def test(
    path: Annotated[Path, typer.Argument(help="Test set: prompts with their expected answers.")],
    scope: ScopeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as one JSON object.")] = False,
    version: Annotated[str | None, typer.Option(help="Test this stored version instead of the active one.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the results (default: DATA_DIR/results/<version>-<time>/).")
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(
            help="Cross-validate instead: train N models on N-1 parts of the file (plus the starter small talk) "
            "and ask each the part it did not see.",
            min=2,
        ),
    ] = None,
) -> None:
    """Ask the model every prompt of a test set and report accuracy; trains nothing.

    Writes a results folder: report.json, chart.png, confusions.csv and wrong.csv (the wrong answers,
    which `teachbot train wrong.csv` imports once their expected answers are checked).
    """
    from teachbot.datasets.formats import read_examples
    from teachbot.project import command_name
    from teachbot.training.results import new_results_folder, write_results

    settings = _settings()
    chosen = _scope(settings, scope)
    if folds is not None and version is not None:
        _error("--folds trains fresh models from the file; it cannot be combined with --version.")
        raise typer.Exit(EXIT_USAGE)
    try:
        examples = read_examples(path, max_bytes=settings.max_upload_bytes)
    except UserError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None

    async def work(application: Any) -> tuple[Any, Any]:
        return await application.testing.test(chosen, examples, version=version), None

    if folds is None:
        report, validation = _with_app(settings, work)
        text, extra = report.summary(), None
    else:
        configure_logging(settings.log_level, settings.data_dir, settings.secret_values(), console=False)
        validation = _cross_validate(settings, examples, folds, path.name)
        report, text, extra = validation.report, validation.summary(), {"cross_validation": validation.to_json()}
    try:
        folder = out if out is not None else new_results_folder(settings.data_dir, report.model_version)
        results = write_results(folder, report, threshold=settings.confidence_threshold, source=path.name, extra=extra)
    except UserError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        document = {**(extra or {}), **report.to_json(), "results_folder": str(results.folder)}
        typer.echo(json.dumps(document, ensure_ascii=False))
        typer.echo(results.describe(command_name()), err=True)
    else:
        typer.echo(text)
        typer.echo(results.describe(command_name()))


def _cross_validate(settings: Settings, examples: list[Any], folds: int, source: str) -> Any:
    from teachbot.training.crossval import cross_validate
    from teachbot.training.data import starter_examples

    starter = starter_examples() if settings.starter_examples else []
    try:
        with _progress() as bar:
            bar.add_task(f"training {folds} models", total=None)
            return cross_validate(
                examples, folds=folds, starter=starter, threshold=settings.confidence_threshold, source=source
            )
    except UserError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def doctor() -> None:
    """Check the setup (Python, data folder, database, encoder, voice, Discord token, LLM server) and say
    what to do about each problem; exit 1 when something needs fixing."""
    from teachbot.doctor import Status, run_checks

    settings = _settings()
    configure_logging(settings.log_level, None, settings.secret_values(), console=False)
    checks = asyncio.run(run_checks(settings))
    for check in checks:
        typer.echo(check.line())
    problems = sum(check.status is Status.PROBLEM for check in checks)
    typer.echo(f"{problems} problem(s) to fix." if problems else "Everything teachbot needs is in place.")
    raise typer.Exit(EXIT_PROBLEMS if problems else 0)


@models_app.command("list")
def models_list(scope: ScopeOption = None) -> None:
    """List the model versions of a scope."""
    from teachbot.transports import wording

    settings = _settings()
    chosen = _scope(settings, scope)

    async def work(application: Any) -> None:
        for version in await application.versions.in_scope(chosen):
            typer.echo(wording.version_info(version))

    _with_app(settings, work)


@models_app.command("activate")
def models_activate(version: str, scope: ScopeOption = None) -> None:
    """Make a stored model version the active one."""
    _act(scope, lambda handlers, call: handlers.models_activate(call, version))


@models_app.command("rollback")
def models_rollback(scope: ScopeOption = None) -> None:
    """Activate the version before the active one."""
    _act(scope, lambda handlers, call: handlers.models_rollback(call))


def _act(scope: str | None, work: Callable[[Any, Any], Awaitable[Any]]) -> None:
    """Run one command handler as the command-line user (the owner) and print its reply."""
    from teachbot.answering.chat import Origin
    from teachbot.transports import wording
    from teachbot.transports.catalogue import Door, Privilege
    from teachbot.transports.handlers import Call, CommandHandlers

    settings = _settings()
    origin = Origin(scope=_scope(settings, scope), channel="cli", author="cli", author_name="cli")
    call = Call(origin, Door.CONSOLE, Privilege.OWNER, trusted=True, external_ids=False)

    async def run(application: Any) -> str:
        try:
            reply = await work(CommandHandlers(application), call)
        except UserError as exc:
            raise UserError(wording.user_error(exc, settings.command_prefix)) from None
        return str(reply.text)

    typer.echo(_with_app(settings, run))


@datasets_app.command("list")
def datasets_list(scope: ScopeOption = None) -> None:
    """List the datasets and how each feeds training."""
    _act(scope, lambda handlers, call: handlers.datasets_list(call))


@datasets_app.command("show")
def datasets_show(name: str, version: int | None = None, scope: ScopeOption = None) -> None:
    """Show a dataset version's size and first examples."""
    _act(scope, lambda handlers, call: handlers.datasets_show(call, name, version))


@datasets_app.command("diff")
def datasets_diff(name: str, old: int, new: int, scope: ScopeOption = None) -> None:
    """Compare two versions of a dataset."""
    _act(scope, lambda handlers, call: handlers.datasets_diff(call, name, old, new))


@datasets_app.command("export")
def datasets_export(
    name: Annotated[str, typer.Argument(help="Dataset name, or `corrections` for preference pairs.")],
    fmt: Annotated[str, typer.Argument(help="openai-chat, preference, csv or yaml.")] = "openai-chat",
    scope: ScopeOption = None,
) -> None:
    """Write a dataset into the data folder's exports/."""
    _act(scope, lambda handlers, call: handlers.datasets_export(call, name, fmt))


@datasets_app.command("delete")
def datasets_delete(name: str, scope: ScopeOption = None) -> None:
    """Delete a dataset and all its versions."""
    _act(scope, lambda handlers, call: handlers.datasets_delete(call, name))


@datasets_app.command("select")
def datasets_select(
    name: str,
    use: Annotated[str, typer.Argument(help="positive, negative or off.")] = "positive",
    scope: ScopeOption = None,
) -> None:
    """Choose how a dataset feeds training."""
    _act(scope, lambda handlers, call: handlers.select_dataset(call, name, use.lower()))


@datasets_app.command("from-chat")
def datasets_from_chat(
    name: str,
    channel: Annotated[str | None, typer.Option(help="Only this channel id.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only messages since (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Only messages before (UTC).")] = None,
    liked: Annotated[bool, typer.Option(help="Only answers with a 👍 (and corrected ones).")] = False,
    scope: ScopeOption = None,
) -> None:
    """Turn stored conversations into a new dataset version (corrections applied)."""
    from teachbot.transports.handlers import Reply
    from teachbot.transports.wording import dataset_info

    async def work(handlers: Any, call: Any) -> Reply:
        info = await handlers.app.datasets.from_conversations(
            call.scope, name, author="cli", channel=channel, since=since, until=until, only_liked=liked
        )
        return Reply(dataset_info(info))

    _act(scope, work)


@datasets_app.command("validate")
def datasets_validate(
    path: Path,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    validation: Annotated[Path | None, typer.Option(help="Validation set to check for overlap.")] = None,
) -> None:
    """Check a dataset file without importing it; exit 1 when it has errors."""
    from teachbot.datasets.validation import validate_file

    settings = _settings()
    encoder = _cached_encoder(settings)
    try:
        report = validate_file(
            path, validation=validation, max_bytes=settings.max_upload_bytes, backend=settings.backend, encoder=encoder
        )
    finally:
        if encoder is not None:
            encoder.close()
    typer.echo(json.dumps(report.to_json(), ensure_ascii=False) if as_json else report.to_text())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def review(
    approve: Annotated[list[str], typer.Option(help="Item ids to approve.")] = [],  # noqa: B006
    reject: Annotated[list[str], typer.Option(help="Item ids to reject.")] = [],  # noqa: B006
    scope: ScopeOption = None,
) -> None:
    """List corrections and 👎 waiting for review; approve or reject them."""
    from teachbot.transports.handlers import Reply

    async def work(handlers: Any, call: Any) -> Reply:
        lines = [(await handlers.approve(call, item)).text for item in approve]
        lines += [(await handlers.reject(call, item)).text for item in reject]
        return Reply("\n".join(lines)) if lines else await handlers.review(call)

    _act(scope, work)


@app.command()
def jobs(scope: ScopeOption = None) -> None:
    """List training runs with their state."""
    _act(scope, lambda handlers, call: handlers.jobs_list(call))


@app.command()
def archive(
    what: Annotated[str, typer.Argument(help="datasets, exports, logs or all.")] = "all", scope: ScopeOption = None
) -> None:
    """Zip part of the data folder into archives/."""
    _act(scope, lambda handlers, call: handlers.archive(call, what))


@app.command()
def transcribe(
    path: Annotated[Path, typer.Argument(help="Audio file (anything ffmpeg reads; .raw = 16 kHz s16le).")],
) -> None:
    """Print what the configured speech-to-text engine hears in an audio file."""
    from teachbot.speech.factory import transcribe_file

    settings = _settings()
    configure_logging(settings.log_level, None, settings.secret_values(), console=False)
    transcript = transcribe_file(path, settings)
    typer.echo(transcript.text)


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="What to say.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write: .wav (16-bit PCM) or .ogg (Opus).")],
) -> None:
    """Speak text with the configured text-to-speech engine into a file."""
    from teachbot.speech.factory import say_to_file

    settings = _settings()
    configure_logging(settings.log_level, None, settings.secret_values(), console=False)
    speech = say_to_file(text, output, settings)
    typer.echo(f"Wrote {output} ({speech.seconds:.1f} s of speech).")


# -- running at scale: the training worker and the deployment's status


@app.command()
def worker() -> None:
    """Take training runs from the job queue in PostgreSQL and train them, until stopped (Ctrl-C, SIGTERM)."""
    from teachbot.worker.main import run_worker

    settings = _settings()
    configure_logging(settings.log_level, settings.data_dir, settings.secret_values(), console=True)
    asyncio.run(run_worker(settings))


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema, then exit. Every process also does this when it starts; run it
    once before starting many processes on a new release, so none of them starts on a half-upgraded database."""
    from teachbot.store.db import Database

    settings = _settings()
    configure_logging(settings.log_level, settings.data_dir, settings.secret_values(), console=False)
    db = Database(settings.effective_database_url)
    try:
        before = db.current_revision()
        db.migrate()
        after = db.current_revision()
    finally:
        db.close()
    where = settings.shown_database_url
    if before == after:
        typer.echo(f"The database at {where} is up to date (schema {after}).")
    else:
        typer.echo(f"The database at {where} was upgraded from schema {before or '(new)'} to {after}.")


@app.command()
def status() -> None:
    """Show the processes serving the bot, their shards, the active versions and the training queue."""
    from teachbot.status import collect_status, render_status
    from teachbot.store.db import Database

    settings = _settings()
    configure_logging(settings.log_level, None, settings.secret_values(), console=False)
    db = Database(settings.effective_database_url)
    try:
        db.migrate()
        typer.echo(render_status(db.call(lambda s: collect_status(s, settings.heartbeat_seconds))))
    finally:
        db.close()


def main() -> None:
    """Console-script entry point: whatever goes wrong ends in one line on stderr, never a traceback.

    Exit codes: 0 done, 1 a check found problems (``datasets validate``) or an unexpected failure
    (logged), 2 bad input or settings, 130 interrupted.
    """
    map_large_blocks()  # training's large arrays go back to the system when freed (see teachbot.memory)
    try:
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:  # a bad option or argument: typer's own one-line message (or the help)
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            _error(exc.format_message())
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("", err=True)
        code = EXIT_INTERRUPTED
    except TeachbotError as exc:  # ConfigError and UserError: the text names what to fix
        _error(str(exc))
        code = EXIT_USAGE
    except OSError as exc:
        _error(str(file_error(exc, str(exc.filename) if exc.filename else "a file")))
        code = EXIT_USAGE
    except Exception as exc:
        logging.getLogger(__name__).error("unexpected failure", exc_info=exc)
        _error(f"unexpected {type(exc).__name__}; the details are in the log.")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
