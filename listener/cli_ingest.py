"""Ingest CLI commands: ``listener backfill SOURCE``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from listener.cli import CliState

if TYPE_CHECKING:
    from listener.backfill import BackfillProgress
    from listener.pipeline import PollOutcome

pass_state = click.make_pass_decorator(CliState)


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = units.get(t[-1:], 1)
    if t[-1:] in units:
        t = t[:-1]
    try:
        value = int(float(t) * mult)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size like 1MiB or 512k") from None
    if value < 64 * 1024:
        raise click.BadParameter("the chunk must be at least 64KiB")
    return value


@click.command("backfill")
@click.argument("source")
@click.option(
    "--chunk",
    default="1MiB",
    show_default=True,
    metavar="SIZE",
    help="Bytes read and committed per chunk from a file source (e.g. 512k, 4MiB).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per chunk, then a summary.")
@pass_state
def backfill_cmd(state: CliState, source: str, chunk: str, as_json: bool) -> None:
    """Read a large SOURCE to its end in chunks, each stored with the source's state.

    Memory stays flat however large the source; a backfill that is killed or
    interrupted resumes where it stopped when run again.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from listener.backfill import backfill

    chunk_bytes = _size(chunk)
    app = state.app
    show_bar = sys.stderr.isatty() and not as_json
    progress = Progress(
        TextColumn(f"backfill {source}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[posts]:,} posts"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True, highlight=False),
        transient=False,
        disable=not show_bar,
    )
    with progress:
        task = progress.add_task("", total=None, posts=0)

        def on_chunk(p: BackfillProgress, o: PollOutcome) -> None:
            progress.update(task, completed=p.position or 0, total=p.total, posts=p.fetched)
            if as_json:
                click.echo(json.dumps(o.as_dict(), default=str))

        result = backfill(app, source, chunk_bytes=chunk_bytes, on_chunk=on_chunk)
    if as_json:
        click.echo(json.dumps({"backfill": result.as_dict()}, default=str))
    else:
        click.echo(
            f"{source}: {result.status}, {result.chunks} chunks, {result.fetched:,} posts read, "
            f"{result.new:,} new, {result.updated:,} updated, {result.cases_opened:,} cases "
            f"opened, {result.quarantined:,} quarantined"
            + (f" ({result.error})" if result.error else "")
        )
    if result.status == "error":
        raise SystemExit(1)
