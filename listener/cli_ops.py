"""Operations commands: run (one machine), worker and beat (many machines), health."""

from __future__ import annotations

import json
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click

from listener.cli import CliState

if TYPE_CHECKING:
    from listener.app import App
    from listener.outage import Outage

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

    if once:  # one round, a command like `poll`: warnings only, unless -v (results on stdout)
        scheduler = Scheduler(state.app, max_sleep=max_sleep, lock_ttl=lock_ttl)
        report = scheduler.run_once()
        for o in report.outcomes:
            click.echo(_outcome_line(o))
        click.echo(f"round done: {len(report.outcomes)} source(s) polled, {report.sent} sent")
        return
    _configure_logs(state)
    app, outage = _app_riding_outages(state)
    if app is None:
        return
    scheduler = Scheduler(app, max_sleep=max_sleep, lock_ttl=lock_ttl, outage=outage)
    _serve_metrics(state, metrics_port, metrics_host)
    scheduler.install_signal_handlers()
    scheduler.run_forever()


def _app_riding_outages(state: CliState) -> tuple[App | None, Outage]:
    """The App of a long-running command, waiting (with backoff) while the database is
    unreachable at start; None when SIGTERM/Ctrl-C came first."""
    import structlog

    from listener.outage import Outage, ride_out

    outage = Outage("database", cap=10.0, logger=structlog.get_logger("listener.startup"))
    stopping = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return ride_out(lambda: state.app, outage, stopping=stopping), outage
    except InterruptedError:
        return None, outage
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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
    import structlog

    from listener.locks import Heartbeat, acquire_lock, default_owner, release_lock, renew_lock
    from listener.outage import Outage, is_outage, ride_out
    from listener.tasks import configure_from, enqueue_due

    _configure_logs(state)
    if once:
        configure_from(state.settings)
        click.echo(json.dumps(enqueue_due(state.app, classify=not no_classify)))
        return
    app, database = _app_riding_outages(state)
    if app is None:
        return
    configure_from(state.settings)
    every = interval or state.settings.workers.dispatch_interval.total_seconds()
    from datetime import timedelta

    from listener.locks import LockHeld, held_message

    log = structlog.get_logger("listener.beat")
    broker = Outage("broker", cap=30.0, logger=log)
    owner = default_owner()
    ttl = timedelta(seconds=max(30.0, 3 * every))
    stopping = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    try:
        ride_out(lambda: acquire_lock(app, owner, ttl, "beat"), database, stopping=stopping)
    except InterruptedError:
        return
    except LockHeld as exc:
        if exc.holder is not None:
            raise LockHeld(held_message(exc.holder, "beat"), exc.holder) from None
        raise
    beat = Heartbeat(
        lambda: renew_lock(app, owner, ttl, "beat"),
        every=ttl.total_seconds() / 3,
        on_lost=lambda _e: stopping.set(),
        name="beat-lock",
        outage=database,
    )
    ticks: dict[str, object] = {}
    try:
        with beat:
            while not stopping.is_set():
                wait = every
                try:
                    if database.down:
                        renew_lock(app, owner, ttl, "beat")  # the lease before any work
                    enqueue_due(app, classify=not no_classify, state=ticks)
                except Exception as exc:
                    from listener.locks import LockLost

                    if isinstance(exc, LockLost):
                        beat.lost = exc
                        break
                    if not is_outage(exc):  # a bug: log it, try again next tick
                        log.error("beat.dispatch_failed", error=str(exc), exc_info=exc)
                    else:  # broker or database unreachable: once per outage, with backoff
                        which = broker if _is_broker_error(exc) else database
                        wait = max(every, which.failed(exc))
                else:
                    database.recovered()
                    broker.recovered()
                stopping.wait(wait)
    finally:
        if beat.lost is None:
            try:
                release_lock(app, owner, "beat")
            except Exception as exc:
                if not is_outage(exc):
                    raise
    if beat.lost is not None:
        raise beat.lost


def _is_broker_error(exc: BaseException) -> bool:
    """Whether an outage error came from the broker (kombu, redis, amqp) rather than the
    database."""
    node: BaseException | None = exc
    while node is not None:
        if type(node).__module__.split(".", 1)[0] in ("kombu", "redis", "amqp", "celery"):
            return True
        node = node.__cause__ or node.__context__
    return False


@click.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print the whole status as JSON.")
@pass_state
def health_cmd(state: CliState, as_json: bool) -> None:
    """Check the deployment: database, scheduler lock, failing sources, outbox backlog, and
    open source and send alerts.

    Exits 1 while the database cannot be reached, or the broker when workers are in use,
    and 3 while a source or send alert is open (a source refused, silent or rate-limited
    past its reset; replies failing to send) or an open case's draft or reply is failing
    (drafts_failed, sends_failing), for monitoring scripts.  A single rate-limit deferral
    inside its quota window is not a failure.
    """
    from listener.app import App
    from listener.health import health_status
    from listener.terminal import safe

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
            broker = status.get("broker")
            if broker is not None:
                click.echo(
                    f"broker    {broker['url']} "
                    + ("ok" if broker["ok"] else f"UNREACHABLE: {broker['error']}")
                )
            click.echo(f"outbox    {status.get('outbox_backlog', 0)} waiting to send")
            click.echo(f"queue     {status.get('open_cases', 0)} open case(s)")
            alerts = status.get("alerts", [])
            click.echo(f"alerts    {sum(a['failing'] for a in alerts)} failing")
            for a in alerts:
                flag = "failing" if a["failing"] else "waiting"
                click.echo(f"  - #{a['id']} {a['kind']} ({a['status']}, {flag}): {a['title']}")
            drafts = status.get("drafts_failed", [])
            click.echo(f"drafts    {len(drafts)} open case(s) whose draft failed")
            for d in drafts[:10]:
                click.echo(safe(f"  - case {d['case_id']}: {d['error']}"))
            sends = status.get("sends_failing", [])
            click.echo(f"sends     {len(sends)} failing")
            for o in sends[:10]:
                click.echo(
                    safe(
                        f"  - case {o['case_id']} ({o['channel']}, {o['status']}, "
                        f"{o['attempts']} attempt(s)): {o['error']}"
                    )
                )
            if status.get("local_outbox"):
                from listener.channels.local import FILENAME

                click.echo(
                    f"local     {status['local_outbox']} repl"
                    f"{'y' if status['local_outbox'] == 1 else 'ies'} written to "
                    f"{state.settings.data_dir() / FILENAME}, not posted "
                    "(recovery.local_outbox: no credentials)"
                )
        else:
            click.echo(f"database  {status['database'].get('error')}")
    if not status["ok"]:
        raise SystemExit(1)
    if not status.get("alerts_ok", True):
        raise SystemExit(3)
    if not status.get("work_ok", True):
        raise SystemExit(3)


@click.command("quarantine")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per quarantined post.")
@click.option("--source", default=None, metavar="NAME", help="Only this source's posts.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@pass_state
def quarantine_cmd(state: CliState, as_json: bool, source: str | None, limit: int | None) -> None:
    """Posts that could not be parsed, cleaned, classified or stored, newest first.

    Each was skipped (its source went on) and kept here with its source,
    external id, stage, reason and the start of its text (escaped).
    """
    from listener.quarantine import list_quarantined

    rows = list_quarantined(state.app, source=source, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        click.echo("the quarantine is empty")
        return
    for r in rows:
        times = f" (seen {r['times']} times)" if r["times"] > 1 else ""
        click.echo(
            f"{r['last_seen_at'][:19]}  {r['source']}  {r['external_id'] or '-'}  "
            f"[{r['stage']}] {r['reason']}{times}"
        )
        click.echo(f"    {r['excerpt'][:160]}")
    click.echo(f"{len(rows)} quarantined post(s)")
