"""CLI commands for working cases: claim, draft, offer, approve, reject, resolve, send,
templates check, report.  Each is a thin wrapper over :mod:`listener.recovery`."""

from __future__ import annotations

import getpass
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import click

from listener.cli import CliState

pass_state = click.make_pass_decorator(CliState)
ROLE = click.Choice(["agent", "lead", "marketing", "admin"])


def _default_actor() -> str:
    return os.environ.get("LISTENER_USER") or getpass.getuser()


def _echo_case(case: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(case, ensure_ascii=False, default=str))
        return
    offer = case.get("offer") or {}
    line = f"case {case['id']}  {case['status']}"
    if case.get("assignee"):
        line += f"  ({case['assignee']})"
    click.echo(line)
    if offer:
        code = f"  code {offer['code']}" if offer.get("code") else ""
        click.echo(f"offer  {offer['key']} [{offer['status']}]{code}")
    if case.get("draft"):
        click.echo("")
        click.echo(case["draft"])


def _by_option(required: bool = False) -> Any:
    if required:
        return click.option("--by", "actor", required=True, help="Who is acting.")
    return click.option(
        "--by", "actor", default=None, help="Who is acting (default: $LISTENER_USER or your login)."
    )


@click.command("claim")
@click.argument("case_id", type=int)
@_by_option(required=True)
@click.option("--role", type=ROLE, default="agent", show_default=True)
@click.option("--force", is_flag=True, help="Take over someone else's claim (lead/admin).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def claim_cmd(
    state: CliState, case_id: int, actor: str, role: str, force: bool, as_json: bool
) -> None:
    """Claim a case so nobody else works it at the same time."""
    from listener.recovery import claim_case

    _echo_case(claim_case(state.app, case_id, actor, role=role, force=force), as_json)


@click.command("draft")
@click.argument("case_id", type=int)
@click.option("--text", default=None, help="The new reply text.")
@click.option("--subject", default=None, help="New subject (email).")
@click.option("--edit", "edit", is_flag=True, help="Edit the current draft in $EDITOR.")
@_by_option()
@click.option("--json", "as_json", is_flag=True)
@pass_state
def draft_cmd(
    state: CliState,
    case_id: int,
    text: str | None,
    subject: str | None,
    edit: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Show the current draft, or save a new version (--text or --edit)."""
    from listener.recovery import case_detail, edit_draft

    app = state.app
    if text is not None and edit:
        raise click.UsageError("give --text or --edit, not both")
    if text is None and not edit:
        detail = case_detail(app, case_id)
        drafts = [d for d in detail["drafts"] if d["status"] in ("current", "approved", "sent")]
        if as_json:
            click.echo(json.dumps(drafts[-1] if drafts else None, default=str))
        elif drafts:
            d = drafts[-1]
            click.echo(
                f"draft v{d['version']}  {d['channel']}  {d['status']}  by {d['created_by']}"
            )
            if d["subject"]:
                click.echo(f"Subject: {d['subject']}")
            click.echo("")
            click.echo(d["text"])
        else:
            click.echo(f"case {case_id} has no draft")
        return
    if edit:
        detail = case_detail(app, case_id)
        current = detail.get("draft") or ""
        text = click.edit(current)
        if text is None or text.strip() == current.strip():
            click.echo("no change")
            return
    assert text is not None
    _echo_case(edit_draft(app, case_id, actor or _default_actor(), text, subject=subject), as_json)


@click.command("offer")
@click.argument("case_id", type=int)
@click.argument("key", required=False)
@click.option("--none", "none_", is_flag=True, help="Send the reply without an offer.")
@_by_option()
@click.option("--json", "as_json", is_flag=True)
@pass_state
def offer_cmd(
    state: CliState, case_id: int, key: str | None, none_: bool, actor: str | None, as_json: bool
) -> None:
    """List the suggested offers, or choose one (KEY) or none (--none)."""
    from listener.recovery import case_detail, select_offer

    app = state.app
    if key and none_:
        raise click.UsageError("give KEY or --none, not both")
    if key or none_:
        _echo_case(
            select_offer(app, case_id, actor or _default_actor(), None if none_ else key), as_json
        )
        return
    detail = case_detail(app, case_id)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "offers": detail["offers"],
                    "catalogue": detail["catalogue"],
                    "budget": detail["budget"],
                },
                default=str,
            )
        )
        return
    budget = detail["budget"]
    cur = budget["currency"]
    if budget["team_left_today"] is not None:
        click.echo(f"team budget left today: {cur}{budget['team_left_today']:.2f}")
    for s in detail["catalogue"]:
        mark = "  " if s["excluded"] is None else "x "
        lead = "  [lead]" if s["requires_lead"] else ""
        click.echo(f"{mark}{s['key']:<22} {s['kind']:<18} {cur}{s['cost']:<7g}{lead}")
        click.echo(f"    {' · '.join(s['reasons'])}")
        if s["excluded"]:
            click.echo(f"    excluded: {s['excluded']}")
    chosen = [o for o in detail["offers"] if o["status"] in ("selected", "approved")]
    if chosen:
        click.echo(f"chosen: {chosen[-1]['key']} ({chosen[-1]['status']})")


@click.command("approve")
@click.argument("case_id", type=int)
@_by_option(required=True)
@click.option("--role", type=ROLE, default="agent", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def approve_cmd(state: CliState, case_id: int, actor: str, role: str, as_json: bool) -> None:
    """Approve the case's reply and offer; it is queued for sending (`listener send`)."""
    from listener.recovery import approve_case

    _echo_case(approve_case(state.app, case_id, actor, role=role), as_json)


@click.command("reject")
@click.argument("case_id", type=int)
@_by_option(required=True)
@click.option("--reason", required=True, help="Why no reply is sent.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def reject_cmd(state: CliState, case_id: int, actor: str, reason: str, as_json: bool) -> None:
    """Close the case without replying."""
    from listener.recovery import reject_case

    _echo_case(reject_case(state.app, case_id, actor, reason), as_json)


@click.command("resolve")
@click.argument("case_id", type=int)
@_by_option()
@click.option("--note", default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def resolve_cmd(
    state: CliState, case_id: int, actor: str | None, note: str | None, as_json: bool
) -> None:
    """Mark the case resolved."""
    from listener.recovery import resolve_case

    _echo_case(resolve_case(state.app, case_id, actor or _default_actor(), note), as_json)


@click.command("send")
@click.option("--once", is_flag=True, help="One pass over the outbox, then exit.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
@pass_state
def send_cmd(state: CliState, once: bool, interval: float) -> None:
    """Deliver approved replies waiting in the outbox (exactly once each)."""
    from listener.outbox import deliver_pending

    app = state.app
    total = 0
    try:
        while True:
            sent = deliver_pending(app)
            total += sent
            if sent:
                click.echo(f"sent {sent}")
            if once:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    if once:
        click.echo(f"sent {total} message{'s' if total != 1 else ''}")


@click.group("templates")
def templates_cmd() -> None:
    """Reply templates."""


@templates_cmd.command("check")
@pass_state
def templates_check_cmd(state: CliState) -> None:
    """Render every template against sample contexts; exit 1 on any problem."""
    from listener.personalize import check_templates

    renders, problems = check_templates(state.settings)
    for p in problems:
        click.echo(p, err=True)
    if problems:
        click.echo(f"{len(problems)} template problem(s) in {renders} renders", err=True)
        raise SystemExit(1)
    click.echo(f"templates ok ({renders} renders)")


@click.command("report")
@click.option("--since", default="7d", show_default=True, help="Window, e.g. 24h, 7d, 30d.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def report_cmd(state: CliState, since: str, as_json: bool) -> None:
    """Team report: first response, SLA, recovery rate, cost per recovered customer."""
    from listener.recovery import report_window, team_report

    start, end = report_window(since, datetime.now(UTC))
    r = team_report(state.app, start, end)
    if as_json:
        click.echo(json.dumps(r, default=str))
        return

    def dur(s: float | None) -> str:
        if s is None:
            return "–"
        return f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"

    cur = r["currency"]
    click.echo(f"cases opened        {r['cases']}  ({since})")
    click.echo(f"replied             {r['replied']}")
    frt = r["first_response_seconds"]
    click.echo(f"first response      median {dur(frt['median'])}, p90 {dur(frt['p90'])}")
    sla = "–" if r["sla_met_pct"] is None else f"{r['sla_met_pct']}%"
    click.echo(f"SLA met             {sla} of {r['sla_cases']}")
    rate = "–" if r["recovery_rate_pct"] is None else f"{r['recovery_rate_pct']}%"
    click.echo(f"recovered           {r['recovered']} of {r['followed_up']} followed up ({rate})")
    click.echo(f"offer cost          {cur}{r['offer_cost']:.2f}")
    cpr = r["cost_per_recovered_customer"]
    click.echo(f"cost per recovered  {'–' if cpr is None else f'{cur}{cpr:.2f}'}")
    for kind, v in r["offers_by_kind"].items():
        click.echo(f"  {kind:<18} {v['count']:>4}  {cur}{v['cost']:.2f}")
