"""``listener serve`` (the web app) and ``listener users …`` (people and API tokens)."""

from __future__ import annotations

import sys

import click

from listener.cli import CliState


@click.command("serve")
@click.option("--host", default=None, help="Address to bind (default: web.host).")
@click.option("--port", type=int, default=None, help="Port to bind (default: web.port).")
@click.pass_obj
def serve_cmd(state: CliState, host: str | None, port: int | None) -> None:
    """Serve the queue, case pages, dashboard and JSON API."""
    import uvicorn

    from listener.web import create_app

    app = state.app
    web = create_app(app)
    host = host or app.settings.web.host
    port = port or app.settings.web.port
    click.echo(f"Listener on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(web, host=host, port=port, log_level="warning", proxy_headers=False)


@click.group("users")
def users_cmd() -> None:
    """Manage the people who sign in to the web app, and their API tokens.

    Taking access back: `users disable NAME`, `users revoke-token NAME TOKEN_NAME`,
    `users password NAME` (signs out everywhere and revokes every token).
    """


@users_cmd.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["agent", "lead", "marketing", "admin"]),
    default="agent",
    show_default=True,
)
@click.option("--name", "display_name", default=None, help="Display name.")
@click.option("--email", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_obj
def users_add(
    state: CliState,
    username: str,
    role: str,
    display_name: str | None,
    email: str | None,
    password_stdin: bool,
) -> None:
    """Add a user (prompts for the password unless --password-stdin)."""
    from listener.auth import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = add_user(
        state.app, username, password, role=role, display_name=display_name, email=email
    )
    click.echo(f"added {user['username']} ({user['role']})")


@users_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_obj
def users_list(state: CliState, as_json: bool) -> None:
    """List users and their roles."""
    import json

    from listener.auth import list_users

    for u in list_users(state.app):
        if as_json:
            click.echo(json.dumps(u))
        else:
            status = "" if u["active"] else "  (inactive)"
            click.echo(
                f"{u['username']:<24} {u['role']:<10} last sign-in "
                f"{u['last_login_at'] or 'never'}{status}"
            )


@users_cmd.command("token")
@click.argument("username")
@click.option(
    "--name",
    default=None,
    help="What the token is for; unique among the user's live tokens (default: cli, cli-2…).",
)
@click.option(
    "--expires",
    default=None,
    metavar="DURATION",
    help="The token stops working after this long, e.g. 90d, 12h (default: never).",
)
@click.pass_obj
def users_token(state: CliState, username: str, name: str | None, expires: str | None) -> None:
    """Mint an API token for USERNAME (shown once; only its hash is stored)."""
    from listener.auth import mint_token
    from listener.durations import parse_duration

    try:
        expires_in = parse_duration(expires) if expires is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    click.echo(mint_token(state.app, username, name, expires_in=expires_in))


@users_cmd.command("tokens")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_obj
def users_tokens(state: CliState, username: str, as_json: bool) -> None:
    """List USERNAME's API tokens: name, status, created, last used, expiry (never the value)."""
    import json

    from listener.auth import list_tokens

    tokens = list_tokens(state.app, username)
    if as_json:
        for t in tokens:
            click.echo(json.dumps(t))
        return
    if not tokens:
        click.echo(f"{username} has no API tokens")
        return
    for t in tokens:
        detail = t["revoked_reason"] if t["status"] == "revoked" else ""
        if t["status"] != "revoked" and t["expires_at"]:
            detail = f"expires {t['expires_at'][:19]}"
        click.echo(
            f"{t['name']:<24} {t['status']:<8} created {t['created_at'][:19]}  last used "
            f"{(t['last_used_at'] or 'never')[:19]}  {detail}".rstrip()
        )


@users_cmd.command("revoke-token")
@click.argument("username")
@click.argument("token_name")
@click.pass_obj
def users_revoke_token(state: CliState, username: str, token_name: str) -> None:
    """Revoke USERNAME's token TOKEN_NAME: it gets 401 from now on."""
    from listener.auth import revoke_token

    revoke_token(state.app, username, token_name)
    click.echo(f"revoked {username}'s token {token_name!r}")


@users_cmd.command("disable")
@click.argument("username")
@click.pass_obj
def users_disable(state: CliState, username: str) -> None:
    """Disable USERNAME: signed out everywhere, every API token revoked, no new sign-in."""
    from listener.auth import set_active

    revoked = set_active(state.app, username, False)
    click.echo(f"disabled {username} (signed out everywhere, {revoked} token(s) revoked)")


@users_cmd.command("enable")
@click.argument("username")
@click.pass_obj
def users_enable(state: CliState, username: str) -> None:
    """Enable USERNAME again (they sign in anew; revoked tokens stay revoked)."""
    from listener.auth import set_active

    set_active(state.app, username, True)
    click.echo(f"enabled {username}")


@users_cmd.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_obj
def users_password(state: CliState, username: str, password_stdin: bool) -> None:
    """Set a user's password: every session is signed out and every API token revoked."""
    from listener.auth import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    set_password(state.app, username, password)
    click.echo(f"password changed for {username} (signed out everywhere, API tokens revoked)")
