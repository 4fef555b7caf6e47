"""``listener merge`` and ``listener link``: one customer across sources.

Thin wrappers over :mod:`listener.cases.linking` (the same use-cases as the
case page and the API); the actor is named like every case command
(``--by``, ``$LISTENER_USER``, the login).
"""

from __future__ import annotations

from typing import Any

import click

from listener.cli import CliState
from listener.cli_cases import actor_name, as_json_option, echo_case, identity
from listener.terminal import json_line, safe

pass_state = click.make_pass_decorator(CliState)


@click.command("merge")
@click.argument("case_id", type=int)
@click.argument("other_id", type=int)
@identity
@as_json_option
@pass_state
def merge_cmd(
    state: CliState, case_id: int, other_id: int, by: str | None, role: str | None, as_json: bool
) -> None:
    """ "Same person": OTHER_ID's posts join CASE_ID and the two authors become one customer."""
    from listener.cases.linking import merge_cases

    done = merge_cases(state.app, case_id, other_id, actor_name(by), role=role)
    if not as_json:
        click.echo(f"case {other_id} merged into case {case_id}")
    echo_case(done, as_json)


@click.group("link")
def link_cmd() -> None:
    """One customer across sources: suggested links, accept or reject them."""


def _echo_suggestion(s: dict[str, Any]) -> None:
    evidence = "; ".join(str(e.get("detail")) for e in s.get("evidence") or [])
    click.echo(
        f"{s['id']}  case {s['case_id']} ({safe(s.get('case_platform') or '')} "
        f"{safe(s.get('case_author') or '')}) ~ case {s['other_case_id']} "
        f"({safe(s.get('other_case_platform') or '')} {safe(s.get('other_case_author') or '')})"
        f"  [{s['status']}]  {safe(evidence)}"
    )


@link_cmd.command("suggestions")
@click.option("--case", "case_id", type=int, default=None, help="Only this case's suggestions.")
@click.option(
    "--all", "everything", is_flag=True, help="Include accepted and rejected suggestions."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_state
def suggestions_cmd(state: CliState, case_id: int | None, everything: bool, as_json: bool) -> None:
    """List suggested links between cases, with their evidence."""
    from listener.cases.linking import suggestions_for

    with state.app.sessions() as session:
        rows = suggestions_for(session, case_id, status=None if everything else "suggested")
    for s in rows:
        click.echo(json_line(s)) if as_json else _echo_suggestion(s)
    if not rows and not as_json:
        click.echo("no link suggestions")


@link_cmd.command("accept")
@click.argument("suggestion_id", type=int)
@identity
@as_json_option
@pass_state
def accept_cmd(
    state: CliState, suggestion_id: int, by: str | None, role: str | None, as_json: bool
) -> None:
    """Accept a suggestion: the newer case merges into the older one."""
    from listener.cases.linking import accept_suggestion

    done = accept_suggestion(state.app, suggestion_id, actor_name(by), role=role)
    echo_case(done, as_json)


@link_cmd.command("reject")
@click.argument("suggestion_id", type=int)
@identity
@pass_state
def reject_cmd(state: CliState, suggestion_id: int, by: str | None, role: str | None) -> None:
    """Reject a suggestion (it is not suggested again)."""
    from listener.cases.linking import reject_suggestion

    done = reject_suggestion(state.app, suggestion_id, actor_name(by), role=role)
    click.echo(f"suggestion {done['id']} rejected by {safe(done['decided_by'] or '')}")
