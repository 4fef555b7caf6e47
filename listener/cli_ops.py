"""Operations commands: run (one machine), worker and beat (many machines), health."""

from __future__ import annotations

import json
import os
import signal
import threading
from types import FrameType

import click

from listener.cli import CliState

pass_state = click.make_pass_decorator(CliState)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # = listener.metrics.MULTIPROC_ENV


def _configure_logs(state: CliState) -> None:
    from listener.logs import configure

    if state.verbose == 0:
        configure(state.settings.logging.level, state.settings.logging.json_logs or state.log_json)


def _serve_metrics(state: CliState, port: int | None, host: str) -> None:
    if port is None:
        return
    from listener import metrics

    metrics.watch_app(state.app)
    metrics.serve(port, host)
    click.echo(f"metrics on http://{host}:{port}/metrics", err=True)


@click.command("run")
@click.option(
    "--once", is_flag=True, help="Do one round (poll what is due, send what is approved) and exit."
)
@click.option(
    "--max-sleep",
    type=float,
    default=30.0,
    show_default=True,
    help="Longest pause between rounds, in seconds.",
)
@click.option(
    "--lock-ttl",
    type=float,
    default=None,
    help="Seconds the scheduler lock lasts without renewal (default 3×max-sleep, ≥30).",
)
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus /metrics here.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@pass_state
def run_cmd(
    state: CliState,
    once: bool,
    max_sleep: float,
    lock_ttl: float | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run the scheduler: poll each source when due, send approved replies; stop on SIGTERM.

    Only one scheduler runs per database: a second one is refused, naming the
    holder of the lock and when it expires.
    """
    from listener.cli_core import _outcome_line
    from listener.scheduler import Scheduler

    _configure_logs(state)
    scheduler = Scheduler(state.app, max_sleep=max_sleep, lock_ttl=lock_ttl)
    if once:
        report = scheduler.run_once()
        for o in report.outcomes:
            click.echo(_outcome_line(o))
        click.echo(f"round done: {len(report.outcomes)} source(s) polled, {report.sent} sent")
        return
    _serve_metrics(state, metrics_port, metrics_host)
    scheduler.install_signal_handlers()
    scheduler.run_forever()


@click.command("worker")
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=None,
    help="Worker processes (default: workers.concurrency).",
)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "threads", "solo"]),
    default="prefork",
    show_default=True,
    help="Celery pool.",
)
@click.option("--hostname", "-n", default=None, help="Celery node name (default celery@HOST).")
@click.option("--loglevel", "-l", default="INFO", show_default=True, help="Celery log level.")
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus /metrics here.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@pass_state
def worker_cmd(
    state: CliState,
    concurrency: int | None,
    pool: str,
    hostname: str | None,
    loglevel: str,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Start a Celery worker: polls, classifies and sends what the beat enqueues.

    Reads the broker from the ``workers:`` block of config.yaml.  Run as many
    as you like, on as many machines as you like, against one PostgreSQL.
    """
    if metrics_port is not None and pool == "prefork" and not os.environ.get(MULTIPROC_ENV):
        # before prometheus_client is imported: the pool's children write their numbers to
        # files there, which this (parent) process aggregates for /metrics
        import tempfile

        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="listener-prom-")
    from listener.tasks import CONFIG_ENV, configure_from

    _configure_logs(state)
    settings = state.settings
    if settings.database.url.startswith("sqlite"):
        click.echo(
            "warning: workers on SQLite only work on one machine (claims fall back to "
            "conditional updates); use PostgreSQL for several machines",
            err=True,
        )
    os.environ.setdefault(CONFIG_ENV, str(state.config_path.resolve()))
    state.app  # noqa: B018 - migrate once here, not in every child
    _serve_metrics(state, metrics_port, metrics_host)
    capp = configure_from(settings)
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--concurrency={concurrency or settings.workers.concurrency}",
        f"--pool={pool}",
        f"--queues={settings.workers.queue}",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    capp.worker_main(argv)


@click.command("beat")
@click.option(
    "--interval",
    type=float,
    default=None,
    help="Seconds between dispatches (default: workers.dispatch_interval).",
)
@click.option("--once", is_flag=True, help="Enqueue what is due once and exit.")
@click.option("--no-classify", is_flag=True, help="Do not enqueue re-classification batches.")
@pass_state
def beat_cmd(state: CliState, interval: float | None, once: bool, no_classify: bool) -> None:
    """Every few seconds, enqueue due sources, approved messages and mentions to re-classify.

    Only one beat runs per database (it holds the ``beat`` lock, like
    ``listener run`` holds ``scheduler``); enqueuing twice would be harmless
    anyway, as every task claims its row.
    """
    from listener.locks import Heartbeat, acquire_lock, default_owner, release_lock, renew_lock
    from listener.tasks import configure_from, enqueue_due

    _configure_logs(state)
    app = state.app
    configure_from(state.settings)
    every = interval or state.settings.workers.dispatch_interval.total_seconds()
    if once:
        click.echo(json.dumps(enqueue_due(app, classify=not no_classify)))
        return
    from datetime import timedelta

    owner = default_owner()
    ttl = timedelta(seconds=max(30.0, 3 * every))
    try:
        acquire_lock(app, owner, ttl, "beat")
    except Exception as exc:
        from listener.locks import LockHeld, held_message

        if isinstance(exc, LockHeld) and exc.holder is not None:
            raise LockHeld(held_message(exc.holder, "beat"), exc.holder) from None
        raise
    stopping = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    beat = Heartbeat(
        lambda: renew_lock(app, owner, ttl, "beat"),
        every=ttl.total_seconds() / 3,
        on_lost=lambda _e: stopping.set(),
        name="beat-lock",
    )
    ticks: dict[str, object] = {}
    try:
        with beat:
            while not stopping.is_set():
                try:
                    enqueue_due(app, classify=not no_classify, state=ticks)
                except Exception as exc:  # broker or DB hiccup: log, try again next tick
                    import structlog

                    structlog.get_logger("listener.beat").error(
                        "beat.dispatch_failed", error=str(exc)
                    )
                stopping.wait(every)
    finally:
        if beat.lost is None:
            release_lock(app, owner, "beat")
    if beat.lost is not None:
        raise beat.lost


@click.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print the whole status as JSON.")
@pass_state
def health_cmd(state: CliState, as_json: bool) -> None:
    """Check the deployment: database, scheduler lock, failing sources, outbox backlog, and
    open source and send alerts.

    Exits 1 when the database cannot be reached and 3 while a source or send alert is open
    (a source refused, silent or rate-limited past its reset; replies failing to send), for
    monitoring scripts.  A single rate-limit deferral inside its quota window is not a failure.
    """
    from listener.app import App
    from listener.health import health_status

    app = App.from_settings(state.settings, upgrade=False)
    try:
        status = health_status(app)
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(status, default=str))
    else:
        click.echo(f"status    {status['status']}")
        if status.get("database", {}).get("ok"):
            for name in ("scheduler", "beat"):
                lock = status.get(name)
                click.echo(
                    f"{name:<9} "
                    + (
                        "none"
                        if not lock
                        else f"{lock['owner']} until {lock['expires_at']}"
                        + ("" if lock["current"] else " (expired)")
                    )
                )
            failing = status.get("sources_failing", [])
            click.echo(
                f"failing   {len(failing)} source(s)"
                + (": " + ", ".join(f["name"] for f in failing) if failing else "")
            )
            click.echo(f"outbox    {status.get('outbox_backlog', 0)} waiting to send")
            click.echo(f"queue     {status.get('open_cases', 0)} open case(s)")
            alerts = status.get("alerts", [])
            click.echo(f"alerts    {sum(a['failing'] for a in alerts)} failing")
            for a in alerts:
                flag = "failing" if a["failing"] else "waiting"
                click.echo(f"  - #{a['id']} {a['kind']} ({a['status']}, {flag}): {a['title']}")
        else:
            click.echo(f"database  {status['database'].get('error')}")
    if not status["ok"]:
        raise SystemExit(1)
    if not status.get("alerts_ok", True):
        raise SystemExit(3)
