"""The ``listener`` command line.

Subcommands live in modules imported only when used (``LazyGroup``), so
``listener --help`` answers fast without importing torch, SQLAlchemy models
or collectors.  Every command calls the same use-case functions as the web
app, the scheduler and the workers.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

#: command name → "module:attribute"
COMMANDS: dict[str, str] = {
    "init": "listener.cli_core:init_cmd",
    "poll": "listener.cli_core:poll_cmd",
    "backfill": "listener.cli_ingest:backfill_cmd",
    "run": "listener.cli_ops:run_cmd",
    "worker": "listener.cli_ops:worker_cmd",
    "beat": "listener.cli_ops:beat_cmd",
    "health": "listener.cli_ops:health_cmd",
    "quarantine": "listener.cli_ops:quarantine_cmd",
    "queue": "listener.cli_core:queue_cmd",
    "show": "listener.cli_core:show_cmd",
    "sources": "listener.cli_core:sources_cmd",
    "classify": "listener.cli_core:classify_cmd",
    "config": "listener.cli_core:config_cmd",
    "label": "listener.cli_model:label_cmd",
    "train": "listener.cli_model:train_cmd",
    "eval": "listener.cli_model:eval_cmd",
    **{
        n: f"listener.cli_cases:{n.replace('-', '_')}_cmd"
        for n in (
            "claim",
            "release",
            "assign",
            "draft",
            "offer",
            "approve",
            "reject",
            "reopen",
            "snooze",
            "resolve",
            "mark-sent",
            "sent",
            "send",
            "templates",
            "report",
        )
    },
    "merge": "listener.cli_link:merge_cmd",
    "link": "listener.cli_link:link_cmd",
    "serve": "listener.cli_web:serve_cmd",
    "users": "listener.cli_web:users_cmd",
    "alerts": "listener.cli_alerts:alerts_cmd",
}

SHORT_HELP: dict[str, str] = {
    "init": "Check the config, create or upgrade the database, register sources "
    "(writes a starter config.yaml where there is none).",
    "poll": "Poll sources now (all, --source NAME, or --due) and store what is new.",
    "backfill": "Read a large source to its end in committed chunks (resumes after a kill).",
    "run": "Run the scheduler: poll sources when due, until stopped (or --once).",
    "worker": "Start a Celery worker (several machines): polls, classifies, sends.",
    "beat": "Enqueue due sources and approved messages for the workers, every few seconds.",
    "health": "Check database, broker, scheduler lock, failing sources and outbox backlog; "
    "exit 3 while a source or send alert is open.",
    "quarantine": "List posts that could not be parsed, cleaned or stored (--json).",
    "queue": "Show the cases to work, most urgent first (--json for scripts).",
    "show": "Show one case: posts, classification, drafts, offers, audit trail.",
    "sources": "Show each source's health: last success, items, errors, next check.",
    "classify": "Classify texts from a CSV, JSONL or text file (or stdin) to JSON lines.",
    "config": "Validate config.yaml and print the effective settings (secrets hidden).",
    "label": "Correct a mention's label (feeds the learning loop).",
    "train": "Retrain the classifier head on base data plus agents' corrections.",
    "eval": "Evaluate the classifier on a labelled CSV (F1, AUC, confusion matrix).",
    "claim": "Claim a case so nobody else works it (--by NAME, or $LISTENER_USER).",
    "release": "Give a case you hold back to the queue.",
    "assign": "Hand a case to an active agent or lead (leads).",
    "draft": "Show or edit a case's reply draft (--text TEXT or --edit).",
    "offer": "List a case's suggested offers, or choose one (KEY) or none (--none).",
    "approve": "Approve a case's reply and offer [--draft-version N]; queues it.",
    "reject": "Close a case without replying (--reason TEXT); reopen undoes it.",
    "reopen": "Undo a rejection: the case comes back with its reply and offers.",
    "snooze": "Take a case out of the queue until a time (--for 4h | --until TIME).",
    "resolve": "Mark a case resolved.",
    "mark-sent": "The older name of `sent`.",
    "sent": "Record that you delivered an approved reply by hand (--url LINK or --note TEXT).",
    "send": "Deliver approved replies in the outbox now (--once: one pass).",
    "templates": "Reply templates: `templates check` renders each against samples; "
    "`templates copy DIR` copies the packaged ones for editing.",
    "report": "Team report: first response, SLA, recovery rate, cost (--since 7d).",
    "merge": "Same person: another case's posts join this one (merge CASE OTHER).",
    "link": "Suggested links between one customer's cases: suggestions, accept, reject.",
    "serve": "Serve the web app: triage queue, case pages, dashboard, JSON API.",
    "users": "Manage web users (add, list, password, disable) and their API tokens.",
    "alerts": "List alerts (--json); ack, resolve or evaluate them.",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, _, attr = COMMANDS[cmd_name].partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    return None
                raise
            command: click.Command = getattr(module, attr)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class CliState:
    """Per-invocation state: where the config is; the App is built on first use."""

    def __init__(self, config_path: Path, config_given: bool, verbose: int, log_json: bool):
        self.config_path = config_path
        self.config_given = config_given
        self.verbose = verbose
        self.log_json = log_json
        self._settings: Settings | None = None
        self._app: App | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from listener.config import load_settings

            settings = load_settings(self.config_path)
            settings.check_paths()  # a missing templates folder is an error, not a fall-back
            self._settings = settings
        return self._settings

    @property
    def app(self) -> App:
        if self._app is None:
            from listener.app import App

            self._app = App.from_settings(self.settings)
            if sys.stderr.isatty():
                from classifiers.progress import rich_progress

                self._app.model_progress = rich_progress()
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Path to config.yaml (default: ./config.yaml).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("--log-json", is_flag=True, help="Write logs as JSON lines.")
@click.version_option(package_name="listener", prog_name="listener")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, log_json: bool) -> None:
    """Listener: hear every unhappy customer, answer fast, make it right.

    Collects brand mentions from blogs and social networks, flags unhappy
    customers, drafts a personal reply and a "wow" offer, and sends it once
    an agent approves.
    """
    from listener.logs import configure

    configure("DEBUG" if verbose > 1 else "INFO" if verbose else "WARNING", log_json)
    state = CliState(config_path or Path("config.yaml"), config_path is not None, verbose, log_json)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: Listener errors become one line and exit status 2."""
    from listener.errors import ListenerError

    try:
        rv = cli.main(args=argv, prog_name="listener", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ListenerError as exc:
        from listener.redact import mask_text

        click.echo(f"error: {mask_text(str(exc))}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from listener.outage import is_outage

        if not is_outage(exc):
            raise
        from listener.redact import mask_text

        # the database or broker is unreachable: one line, no traceback (and no password)
        first = (mask_text(str(exc)).splitlines() or [type(exc).__name__])[0]
        click.echo(f"error: cannot reach a service: {first}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
