"""``listener alerts``: list alerts (``--json`` for scripts), acknowledge, resolve, evaluate."""

from __future__ import annotations

import json

import click

from listener.alerts import KINDS, STATUSES
from listener.cli import CliState

pass_state = click.make_pass_decorator(CliState)


@click.group("alerts", invoke_without_command=True)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per alert (stable contract)."
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only alerts in this status (repeatable).",
)
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Only this kind.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.pass_context
def alerts_cmd(
    ctx: click.Context,
    as_json: bool,
    statuses: tuple[str, ...],
    kinds: tuple[str, ...],
    limit: int,
) -> None:
    """List alerts, unresolved first, newest first: spikes, negative shifts, silent, refused
    or rate-limited sources, failing sends — each with its explanation and evidence.

    \b
    listener alerts                 # the list
    listener alerts --json          # id, kind, status, started_at, explanation, evidence…
    listener alerts ack 12 --by carla
    listener alerts resolve 12 --by carla --note "token renewed"
    listener alerts evaluate        # evaluate now (polls do it after every poll)
    """
    if ctx.invoked_subcommand is not None:
        return
    from listener.alerts.store import list_alerts

    state: CliState = ctx.obj
    rows = list_alerts(state.app, statuses=statuses, kinds=kinds, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    if not rows:
        click.echo("no alerts")
        return
    for a in rows:
        status = a["status"] + (f" by {a['acknowledged_by']}" if a["acknowledged_by"] else "")
        click.echo(
            f"#{a['id']:<5} {(a['status'] == 'open' and '!') or ' '} {a['kind']:<15} "
            f"{status:<22} since {a['started_at'][:16].replace('T', ' ')}  {a['title']}"
        )
        if a["status"] != "resolved":
            click.echo(f"         {a['explanation']}")


@alerts_cmd.command("ack")
@click.argument("alert_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--by", "actor", required=True, help="Who is on it.")
@pass_state
def ack_cmd(state: CliState, alert_id: int, actor: str) -> None:
    """Acknowledge an alert: someone is on it (it resolves when its condition clears)."""
    from listener.alerts.store import acknowledge

    a = acknowledge(state.app, alert_id, actor)
    click.echo(f"alert #{a['id']} {a['status']}")


@alerts_cmd.command("resolve")
@click.argument("alert_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--by", "actor", required=True, help="Who resolves it.")
@click.option("--note", default=None, help="What was done.")
@pass_state
def resolve_cmd(state: CliState, alert_id: int, actor: str, note: str | None) -> None:
    """Resolve an alert by hand (if its condition still holds it comes back, without a new
    notification within alerts.cooldown)."""
    from listener.alerts.store import resolve

    a = resolve(state.app, alert_id, actor, note)
    click.echo(f"alert #{a['id']} {a['status']}")


@alerts_cmd.command("evaluate")
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
@pass_state
def evaluate_cmd(state: CliState, as_json: bool) -> None:
    """Evaluate every alert condition now and send due notifications (polls do this too)."""
    from listener.alerts.evaluate import evaluate

    report = evaluate(state.app)
    out = {
        "conditions": report.conditions,
        "changes": [{"alert_id": c.alert_id, "action": c.action} for c in report.changes],
        "notifications": report.notifications,
    }
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(
            f"{report.conditions} condition(s) hold; "
            + (", ".join(f"#{c.alert_id} {c.action}" for c in report.changes) or "no change")
        )
