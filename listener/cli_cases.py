"""CLI commands for working cases — claim, release, assign, draft, offer, approve, reject,
reopen, snooze, resolve, mark-sent — and send, templates check, report.

Each case command is a thin wrapper over :mod:`listener.cases.actions`, and
every one of them (and ``label``) names its actor the same way
(:func:`actor_name`): ``--by NAME``, else ``$LISTENER_USER``, else the login.
The actor must be a known, active user; their role comes from the ``users``
table, and ``--role`` is only a claim that is checked (a mismatch exits 2).
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from listener.cli import CliState
from listener.terminal import json_line, safe

pass_state = click.make_pass_decorator(CliState)
ROLE = click.Choice(["agent", "lead", "marketing", "admin"])
F = TypeVar("F", bound=Callable[..., Any])


def actor_name(by: str | None) -> str:
    """Who is acting: ``--by``, else ``$LISTENER_USER``, else the login (one rule for all)."""
    return by or os.environ.get("LISTENER_USER") or getpass.getuser()


def identity(fn: F) -> F:
    """The ``--by`` and ``--role`` options every case command (and ``label``) takes."""
    fn = click.option(
        "--role",
        type=ROLE,
        default=None,
        help="Your role, checked against the users table (refused when it differs).",
    )(fn)
    fn = click.option(
        "--by",
        "by",
        default=None,
        metavar="NAME",
        help="Who is acting (default: $LISTENER_USER, else your login); a known user.",
    )(fn)
    return fn


def as_json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the case as JSON.")(fn)


def echo_case(case: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        click.echo(json_line(case))
        return
    line = f"case {case['id']}  {case['status']}"
    if case.get("assignee"):
        line += f"  ({safe(case['assignee'])})"
    if case.get("snoozed_until") and not case.get("back_from_snooze"):
        line += f"  snoozed until {case['snoozed_until'][:16].replace('T', ' ')} UTC"
    click.echo(line)
    offer = case.get("offer") or {}
    if offer:
        code = f"  code {safe(offer['code'])}" if offer.get("code") else ""
        click.echo(f"offer  {safe(offer['key'])} [{offer['status']}]{code}")
    if case.get("draft"):
        click.echo(f"\nreply (version {case.get('draft_version')}):")
        click.echo(safe(case["draft"]))


@click.command("claim")
@click.argument("case_id", type=int)
@identity
@click.option("--force", is_flag=True, help="Take over someone else's claim (lead/admin).")
@as_json_option
@pass_state
def claim_cmd(
    state: CliState, case_id: int, by: str | None, role: str | None, force: bool, as_json: bool
) -> None:
    """Claim a case so nobody else works it at the same time."""
    from listener.cases import actions

    echo_case(actions.claim(state.app, case_id, actor_name(by), role=role, force=force), as_json)


@click.command("release")
@click.argument("case_id", type=int)
@identity
@as_json_option
@pass_state
def release_cmd(
    state: CliState, case_id: int, by: str | None, role: str | None, as_json: bool
) -> None:
    """Give a case you hold back to the queue."""
    from listener.cases import actions

    echo_case(actions.release(state.app, case_id, actor_name(by), role=role), as_json)


@click.command("assign")
@click.argument("case_id", type=int)
@click.argument("assignee")
@identity
@as_json_option
@pass_state
def assign_cmd(
    state: CliState, case_id: int, assignee: str, by: str | None, role: str | None, as_json: bool
) -> None:
    """Hand a case to an active agent or lead (leads and admins)."""
    from listener.cases import actions

    echo_case(actions.assign(state.app, case_id, actor_name(by), assignee, role=role), as_json)


@click.command("draft")
@click.argument("case_id", type=int)
@click.option("--text", default=None, help="The new reply text.")
@click.option("--subject", default=None, help="New subject (email).")
@click.option("--edit", "edit", is_flag=True, help="Edit the current reply in $EDITOR.")
@click.option(
    "--draft-version",
    type=int,
    default=None,
    help="The version you edited; refused if someone saved a newer one since.",
)
@identity
@as_json_option
@pass_state
def draft_cmd(
    state: CliState,
    case_id: int,
    text: str | None,
    subject: str | None,
    edit: bool,
    draft_version: int | None,
    by: str | None,
    role: str | None,
    as_json: bool,
) -> None:
    """Show the current reply, or save a new version (--text or --edit)."""
    from listener.cases import actions
    from listener.cases.view import case_view

    app = state.app
    if text is not None and edit:
        raise click.UsageError("give --text or --edit, not both")
    if text is None and not edit:
        reply = case_view(app, case_id)["reply"]
        if as_json:
            click.echo(json_line(reply))
        elif reply:
            click.echo(
                f"reply v{reply['version']}  {reply['channel']}  {reply['status']}  "
                f"by {safe(reply['created_by'])}"
            )
            if reply["subject"]:
                click.echo(f"Subject: {safe(reply['subject'])}")
            click.echo("")
            click.echo(safe(reply["text"]))
            for w in reply["warnings"]:
                click.echo(f"! {safe(w)}")
        else:
            click.echo(f"case {case_id} has no draft")
        return
    if edit:
        reply = case_view(app, case_id)["reply"] or {}
        current = reply.get("text") or ""
        if draft_version is None:
            draft_version = reply.get("version")
        text = click.edit(current)
        if text is None or text.strip() == current.strip():
            click.echo("no change")
            return
    assert text is not None
    echo_case(
        actions.edit_draft(
            app,
            case_id,
            actor_name(by),
            text,
            subject=subject,
            draft_version=draft_version,
            role=role,
        ),
        as_json,
    )


@click.command("offer")
@click.argument("case_id", type=int)
@click.argument("key", required=False)
@click.option("--none", "none_", is_flag=True, help="Send the reply without an offer.")
@click.option("--draft-version", type=int, default=None, help="The reply version you saw.")
@identity
@as_json_option
@pass_state
def offer_cmd(
    state: CliState,
    case_id: int,
    key: str | None,
    none_: bool,
    draft_version: int | None,
    by: str | None,
    role: str | None,
    as_json: bool,
) -> None:
    """List the suggested offers, or choose one (KEY) or none (--none)."""
    from listener.cases import actions
    from listener.cases.view import case_view

    app = state.app
    if key and none_:
        raise click.UsageError("give KEY or --none, not both")
    if key or none_:
        echo_case(
            actions.select_offer(
                app,
                case_id,
                actor_name(by),
                None if none_ else key,
                draft_version=draft_version,
                role=role,
            ),
            as_json,
        )
        return
    view = case_view(app, case_id)
    if as_json:
        click.echo(
            json_line(
                {"offers": view["offers"], "catalogue": view["catalogue"], "budget": view["budget"]}
            )
        )
        return
    budget = view["budget"]
    cur = budget["currency"]
    if budget["team_left_today"] is not None:
        click.echo(f"team budget left today: {cur}{budget['team_left_today']:.2f}")
    for s in view["catalogue"]:
        mark = "  " if s["excluded"] is None else "x "
        lead = "  [lead]" if s["requires_lead"] else ""
        click.echo(f"{mark}{s['key']:<22} {s['kind']:<18} {cur}{s['cost']:<7g}{lead}")
        click.echo(f"    {' · '.join(s['reasons'])}")
        if s["excluded"]:
            click.echo(f"    excluded: {s['excluded']}")
    chosen = [o for o in view["offers"] if o["status"] in ("selected", "approved")]
    if chosen:
        click.echo(f"chosen: {chosen[-1]['key']} ({chosen[-1]['status']})")


@click.command("approve")
@click.argument("case_id", type=int)
@click.option(
    "--draft-version",
    type=int,
    default=None,
    help="The reply version you read; refused (exit 2) if the reply changed since.",
)
@identity
@as_json_option
@pass_state
def approve_cmd(
    state: CliState,
    case_id: int,
    draft_version: int | None,
    by: str | None,
    role: str | None,
    as_json: bool,
) -> None:
    """Approve the case's reply and offer; it is queued for sending (`listener send`)."""
    from listener.cases import actions

    echo_case(
        actions.approve(state.app, case_id, actor_name(by), draft_version=draft_version, role=role),
        as_json,
    )


@click.command("reject")
@click.argument("case_id", type=int)
@click.option("--reason", required=True, help="Why no reply is sent.")
@identity
@as_json_option
@pass_state
def reject_cmd(
    state: CliState, case_id: int, reason: str, by: str | None, role: str | None, as_json: bool
) -> None:
    """Close the case without replying (`listener reopen` undoes it)."""
    from listener.cases import actions

    echo_case(actions.reject(state.app, case_id, actor_name(by), reason, role=role), as_json)


@click.command("reopen")
@click.argument("case_id", type=int)
@identity
@as_json_option
@pass_state
def reopen_cmd(
    state: CliState, case_id: int, by: str | None, role: str | None, as_json: bool
) -> None:
    """Undo a rejection: the case, its reply and its offers come back."""
    from listener.cases import actions

    echo_case(actions.reopen(state.app, case_id, actor_name(by), role=role), as_json)


@click.command("snooze")
@click.argument("case_id", type=int)
@click.option("--for", "for_", default=None, metavar="DURATION", help="e.g. 4h, 1d.")
@click.option("--until", default=None, metavar="TIME", help="ISO time (UTC if no offset).")
@click.option("--wake", is_flag=True, help="Bring a snoozed case back now.")
@click.option("--note", default=None, help="Why: shown when the case comes back.")
@identity
@as_json_option
@pass_state
def snooze_cmd(
    state: CliState,
    case_id: int,
    for_: str | None,
    until: str | None,
    wake: bool,
    note: str | None,
    by: str | None,
    role: str | None,
    as_json: bool,
) -> None:
    """Take a case out of the queue until a time; it comes back by itself."""
    from listener.cases import actions
    from listener.clock import utcnow
    from listener.durations import parse_duration
    from listener.errors import PolicyViolation

    if sum(x is not None and x is not False for x in (for_, until, wake or None)) != 1:
        raise click.UsageError("give one of --for, --until or --wake")
    when: datetime | None = None
    if for_ is not None:
        when = utcnow() + parse_duration(for_)
    elif until is not None:
        try:
            when = datetime.fromisoformat(until)
        except ValueError:
            raise PolicyViolation(f"--until: not an ISO time: {until!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    echo_case(
        actions.snooze(state.app, case_id, actor_name(by), when, note=note, role=role), as_json
    )


@click.command("resolve")
@click.argument("case_id", type=int)
@click.option("--note", default=None)
@identity
@as_json_option
@pass_state
def resolve_cmd(
    state: CliState, case_id: int, note: str | None, by: str | None, role: str | None, as_json: bool
) -> None:
    """Mark the case resolved (the holder, or a lead)."""
    from listener.cases import actions

    echo_case(actions.resolve(state.app, case_id, actor_name(by), note, role=role), as_json)


@click.command("sent")
@click.argument("case_id", type=int)
@click.option("--url", default=None, help="Where you posted the reply (the comment's link).")
@click.option("--note", default=None, help="How it was delivered, when there is no link.")
@identity
@as_json_option
@pass_state
def sent_cmd(
    state: CliState,
    case_id: int,
    url: str | None,
    note: str | None,
    by: str | None,
    role: str | None,
    as_json: bool,
) -> None:
    """Record that you delivered an approved reply by hand (blog comments, DMs, Hacker
    News) — the web app's "Mark sent"."""
    from listener.cases import actions

    echo_case(
        actions.mark_sent(state.app, case_id, actor_name(by), url, note=note, role=role), as_json
    )


#: the older name of ``sent``
mark_sent_cmd = click.Command(
    "mark-sent",
    callback=sent_cmd.callback,
    params=sent_cmd.params,
    help=sent_cmd.help,
)


@click.command("send")
@click.option("--once", is_flag=True, help="One pass over the outbox, then exit.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
@pass_state
def send_cmd(state: CliState, once: bool, interval: float) -> None:
    """Deliver approved replies waiting in the outbox (exactly once each)."""
    from listener.outbox import deliver_pending

    app = state.app
    total = 0
    if not once:
        click.echo(
            f"sending approved replies every {interval:g} s until stopped (Ctrl-C); "
            "--once for one pass",
            err=True,
        )
    try:
        while True:
            sent = deliver_pending(app)
            total += sent
            if once:
                break
            if sent:
                click.echo(f"sent {sent}")
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    if once:
        click.echo(f"sent {total} message{'s' if total != 1 else ''}")
        local = _local_channels(state)
        if total and local:
            from listener.channels.local import FILENAME

            click.echo(
                f"  {', '.join(local)}: no credentials, so replies went to "
                f"{app.settings.data_dir() / FILENAME} (recovery.local_outbox)"
            )


def _local_channels(state: CliState) -> list[str]:
    """The channels whose replies go to the local outbox file (no credentials set)."""
    from listener.channels.registry import CHANNELS, uses_local_outbox

    return [c for c in CHANNELS if uses_local_outbox(c, state.settings)]


@click.group("templates")
def templates_cmd() -> None:
    """Reply templates."""


@templates_cmd.command("copy")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def templates_copy_cmd(folder: Path) -> None:
    """Copy the packaged reply templates into FOLDER for editing (existing files are kept).

    Then set `recovery.templates_dir: FOLDER`; a file left out of it (or deleted from it)
    falls back to the packaged one.
    """
    from listener.defaults import copy_templates

    written = copy_templates(folder)
    click.echo(f"copied {len(written)} template(s) into {folder}")
    click.echo(f"use them with:  recovery: {{templates_dir: {folder}}}  in config.yaml")


@templates_cmd.command("check")
@pass_state
def templates_check_cmd(state: CliState) -> None:
    """Render every template against sample contexts; exit 1 on any problem."""
    from listener.template_check import check_templates

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
    """Team report: first response, SLA, recovery rate, cost — overall, per agent, per category."""
    from rich.console import Console
    from rich.table import Table

    from listener.cases.report import (
        TABLE_COLUMNS,
        duration_text,
        money_text,
        pct_text,
        report_window,
        table_rows,
        team_report,
    )

    start, end = report_window(since, datetime.now(UTC))
    r = team_report(state.app, start, end)
    if as_json:
        click.echo(json_line(r))
        return
    cur = r["currency"]
    frt = r["first_response_seconds"]
    click.echo(
        f"Cases opened {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC (last {since}): "
        f"{r['cases']}"
    )
    click.echo(f"replied             {r['replied']}")
    click.echo(
        f"first response      median {duration_text(frt['median'])}, "
        f"90% within {duration_text(frt['p90'])}"
    )
    click.echo(f"SLA met             {pct_text(r['sla_met_pct'])} of {r['sla_cases']}")
    click.echo(
        f"recovered           {r['recovered']} of {r['followed_up']} followed up "
        f"({pct_text(r['recovery_rate_pct'])})"
    )
    click.echo(f"offer cost          {money_text(r['offer_cost'], cur)}")
    click.echo(
        f"cost per recovered  {money_text(r['cost_per_recovered_customer'], cur)} per customer"
    )
    console = Console(highlight=False)
    for title, key, rows in (
        ("Per agent", "agent", r["by_agent"]),
        ("Per category", "category", r["by_category"]),
    ):
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        table.add_column(key)
        for heading, _, _ in TABLE_COLUMNS:
            table.add_column(heading, justify="right")
        for cells in table_rows(rows, key, cur):
            table.add_row(*(safe(c) for c in cells))
        console.print(table, markup=False)
    if r["offers_by_kind"]:
        kinds = Table(title="Offers granted by kind", title_justify="left")
        for col in ("kind", "count", "cost"):
            kinds.add_column(col, justify="left" if col == "kind" else "right")
        for kind, v in r["offers_by_kind"].items():
            kinds.add_row(kind, str(v["count"]), money_text(v["cost"], cur))
        console.print(kinds, markup=False)
