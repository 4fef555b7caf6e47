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
    """Manage the people who sign in to the web app, and their API tokens."""


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
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.pass_obj
def users_token(state: CliState, username: str, name: str) -> None:
    """Mint an API token for USERNAME (shown once; only its hash is stored)."""
    from listener.auth import mint_token

    click.echo(mint_token(state.app, username, name))


@users_cmd.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_obj
def users_password(state: CliState, username: str, password_stdin: bool) -> None:
    """Set a user's password."""
    from listener.auth import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    set_password(state.app, username, password)
    click.echo(f"password changed for {username}")
