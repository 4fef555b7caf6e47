"""Core CLI commands: init, poll, queue, show, sources, classify, config."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from listener.cli import CliState
from listener.clock import utcnow as _now

if TYPE_CHECKING:
    from listener.pipeline import PollOutcome

pass_state = click.make_pass_decorator(CliState)


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


def _console(err: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=err, highlight=False, soft_wrap=False)


# ---------------------------------------------------------------------------


@click.command("init")
@pass_state
def init_cmd(state: CliState) -> None:
    """Check config.yaml, create or upgrade the database, and register the sources (and
    recount share of voice when the brand or competitor terms changed).

    In a folder without config.yaml, first writes a commented starter config.yaml (the
    demo brand, polling the example posts it copies into examples/)."""
    from listener.db import redact_url
    from listener.pipeline import sync_sources
    from listener.redact import mask_text

    if not state.config_path.exists():
        from listener.defaults import write_starter

        written = write_starter(state.config_path)
        for path in written:
            note = "starter: edit it for your brand" if path.suffix == ".yaml" else "demo posts"
            click.echo(f"wrote     {path}  ({note})")
    settings = state.settings  # (checks the paths it names, recovery.templates_dir too)
    app = state.app
    sync_sources(app)
    click.echo(f"config    {state.config_path}  (brand: {settings.brand.name})")
    click.echo(f"database  {redact_url(settings.database.url)}  (up to date)")
    enabled = [s for s in settings.sources if s.enabled]
    click.echo(f"sources   {len(settings.sources)} configured, {len(enabled)} enabled")
    from listener.rollups import ensure_brands

    if ensure_brands(app):
        click.echo("rollups   share of voice counted with the configured brand terms")
    for s in settings.sources:
        flag = "" if s.enabled else "  (disabled)"
        click.echo(f"  - {s.name:<24} {s.type:<11} {mask_text(s.location)}{flag}")


def _outcome_line(o: PollOutcome) -> str:
    if o.status in ("ok", "not_modified"):
        detail = f"{o.new} new, {o.updated} updated, {o.cases_opened} cases opened"
        if o.status == "not_modified":
            detail = "not modified"
        if o.quarantined:
            detail += f", {o.quarantined} quarantined"
        if o.problems:
            detail += f" ({len(o.problems)} problem{'s' if len(o.problems) > 1 else ''})"
        return f"{o.source:<24} {o.status:<13} {detail}"
    return f"{o.source:<24} {o.status:<13} {o.error or ''}"


def _poll_with_progress(
    state: CliState, names: list[str] | None, due: bool, as_json: bool
) -> list[PollOutcome]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from listener.pipeline import due_sources, poll_sources, sync_sources

    app = state.app
    if names:
        total = len(names)
    elif due:
        sync_sources(app)
        total = len(due_sources(app))
    else:
        total = len(app.settings.sources)
    show_bar = sys.stderr.isatty() and total > 0
    if show_bar:
        _ = app.classifier  # loaded first, with its own spinner (one live display at a time)
    progress = Progress(
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=_console(err=True),
        transient=True,
        disable=not show_bar,
        redirect_stdout=False,  # results stay on stdout (`listener poll > file`)
        redirect_stderr=False,
    )
    # the bar and stdout share the screen: print results above the bar there, else to stdout
    above_bar = show_bar and sys.stdout.isatty()
    with progress:
        task = progress.add_task("", total=total)

        def on_result(o: PollOutcome) -> None:
            progress.update(task, advance=1, description=o.source)
            if not as_json:
                if above_bar:
                    progress.console.print(_outcome_line(o), markup=False, highlight=False)
                else:
                    click.echo(_outcome_line(o))

        return poll_sources(app, names, due_only=due, on_result=on_result)


@click.command("poll")
@click.option(
    "--source",
    "-s",
    "sources",
    multiple=True,
    metavar="NAME",
    help="Poll only this source (repeatable).",
)
@click.option("--due", is_flag=True, help="Poll only sources whose next check has come (cron).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@pass_state
def poll_cmd(state: CliState, sources: tuple[str, ...], due: bool, as_json: bool) -> None:
    """Poll sources now and store what is new (classified, triaged, drafted)."""
    outcomes = _poll_with_progress(state, list(sources) or None, due, as_json)
    if as_json:
        for o in outcomes:
            _echo_json(o.as_dict())
    elif not outcomes:
        click.echo("nothing to poll" + (" (no source is due)" if due else ""))
    failed = [o for o in outcomes if o.status == "error"]
    if failed and len(failed) == len(outcomes):
        raise SystemExit(1)


def _short(text: str | None, width: int) -> str:
    """One line: paragraphs (a blog post's title and its body) joined by " — "."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text or "")]
    t = " — ".join(p for p in paragraphs if p)
    return t if len(t) <= width else t[: width - 1] + "…"


@click.command("queue")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per case (stable contract).")
@click.option("--all", "show_all", is_flag=True, help="Every case, closed ones included.")
@click.option(
    "--status",
    multiple=True,
    help="Only cases in this status (repeatable), or a view: snoozed, waiting, sending.",
)
@click.option("--source", default=None, help="Only cases from this source.")
@click.option("--category", default=None, help="Only cases in this category.")
@click.option("--assignee", default=None, help="Only cases held by this person ('-': nobody).")
@click.option("--limit", type=int, default=None, help="At most this many cases.")
@pass_state
def queue_cmd(
    state: CliState,
    as_json: bool,
    show_all: bool,
    status: tuple[str, ...],
    source: str | None,
    category: str | None,
    assignee: str | None,
    limit: int | None,
) -> None:
    """The cases to work, most urgent first, each with why it ranks there and its draft.

    Approved replies waiting to be sent (--status sending) and snoozed cases
    (--status snoozed) are not in the default queue.
    """
    from listener.cases.queue import QueueFilter, View, list_queue
    from listener.terminal import json_line, safe

    views = [s for s in status if s in {v.value for v in View}]
    if views and len(status) > 1:
        raise click.UsageError("give one view (snoozed, waiting, sending) or statuses, not both")
    f = QueueFilter(
        status=View.ALL if show_all and not status else (views[0] if views else None),
        statuses=() if views else tuple(status),
        source=source,
        category=category,
        assignee=assignee,
    )
    rows = list_queue(state.app, f, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json_line(row.contract()))
        return
    if not rows:
        click.echo("the queue is empty")
        return
    default = f.status is None and not f.statuses
    if not sys.stdout.isatty():
        # redirected or piped: one line per case (a table would be hundreds of lines)
        for r in rows:
            reply = (
                f"draft FAILED: {_short(r.draft_error, 100)}"
                if r.draft is None and r.draft_error
                else f"→ {r.channel}: {_short(r.draft, 80)}"
                if r.draft
                else "no draft"
            )
            who = f" [{r.assignee}]" if r.assignee else ""
            click.echo(
                safe(
                    f"{r.id:>5}  p{r.priority:<3} {r.status:<9}{who} {r.author} ({r.platform}) "
                    f"{r.category or '-'}: {_short(r.text, 80)}  {reply}"
                )
            )
        click.echo(f"{len(rows)} {'open ' if default else ''}case(s)")
        return
    from rich.table import Table

    now = _now()
    table = Table(show_lines=True, expand=False)
    for col in ("case", "pri", "status", "who", "why", "post / draft", "due"):
        table.add_column(col, overflow="fold")
    for r in rows:
        due = ""
        if r.sla_due_at:
            from listener.durations import format_duration

            due = format_duration(datetime.fromisoformat(r.sla_due_at) - now)
        why = " · ".join(r.reasons)
        if r.back_from_snooze:
            why += f"\nback from snooze ({r.snoozed_by}): {r.snooze_note or 'no note'}"
        table.add_row(
            str(r.id),
            str(r.priority),
            r.status + (f"\n{r.assignee}" if r.assignee else ""),
            safe(
                f"{r.author} ({r.platform})\n{r.source}"
                + (f"\nreply: {r.channel}" if r.channel else "")
            ),
            safe(why),
            safe(
                _short(r.text, 140)
                + (
                    "\n→ " + _short(r.draft, 140)
                    if r.draft
                    else "\ndraft FAILED: " + _short(r.draft_error, 140)
                    if r.draft_error
                    else ""
                )
            ),
            due,
        )
    console = _console()
    console.print(table, markup=False)
    console.print(f"{len(rows)} {'open ' if default else ''}case(s)", markup=False)


@click.command("show")
@click.argument("case_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="As one JSON object.")
@pass_state
def show_cmd(state: CliState, case_id: int, as_json: bool) -> None:
    """Show one case: its posts, classification, drafts, offers and audit trail."""
    from listener.cases.view import case_view
    from listener.terminal import json_line, safe

    view = case_view(state.app, case_id)
    if as_json:
        click.echo(json_line(view))
        return
    out = [
        f"case {view['id']} · {view['status']} · priority {view['priority']}"
        + (f" · held by {view['assignee']}" if view["assignee"] else ""),
        "why: " + " · ".join(view["reasons"]),
        f"author: {view['author']} ({view['author_name'] or '-'}) · "
        f"followers {view['followers'] or '-'} · source {view['source']}",
    ]
    if view["snoozed"]:
        out.append(f"snoozed until {view['snoozed_until']} by {view['snoozed_by']}")
    for p in view["posts"]:
        score = "-" if p["unhappy_score"] is None else f"{p['unhappy_score']:.2f}"
        out += [
            "",
            f"mention {p['id']} [{p['published_at']}] {p['label']} {score} {p['category']}",
            *([f"  title: {p['title']}"] if p.get("title") else []),
            *_indented(_without_title(p["text"], p.get("title"))),
            f"  {p['url'] or ''}",
        ]
    if not view["drafts"] and view.get("draft_error"):
        out += ["", f"draft FAILED: {view['draft_error']}"]
    for d in view["drafts"]:
        out += ["", f"draft v{d['version']} ({d['status']}, {d['channel']}, by {d['created_by']}):"]
        if d.get("subject"):
            out.append(f"  Subject: {d['subject']}")
        out += _indented(d["text"])
    reply = view["reply"]
    if reply and reply["warnings"]:
        out += ["", "the reply breaks sending rules:", *(f"  ! {w}" for w in reply["warnings"])]
    out += _offer_lines(view)
    for o in view.get("outbox", []):
        where = f" → {o['external_id']}" if o.get("external_id") else ""
        error = f" ({o['last_error']})" if o.get("last_error") else ""
        out.append(f"outbox #{o['id']} {o['channel']} {o['status']}{where}{error}")
    out += ["", "audit trail:"]
    out += [f"  {e['at'][:16].replace('T', ' ')}  {e['text']}" for e in view["events"]]
    for line in out:
        click.echo(safe(line))


def _without_title(text: str | None, title: str | None) -> str:
    """A blog post's text without its title (shown on its own line above it)."""
    text = text or ""
    if title and text.startswith(title) and text[len(title) : len(title) + 1] in ("\n", " "):
        return text[len(title) :].lstrip()
    return text


def _indented(text: str | None, prefix: str = "  ") -> list[str]:
    """Every line of ``text`` indented (blank lines kept), so multi-line replies read as
    they will be sent."""
    return [f"{prefix}{line}".rstrip() for line in (text or "").splitlines()] or [prefix]


def _offer_lines(view: dict[str, Any]) -> list[str]:
    """The case's offers (chosen and suggested) with the reasons for each."""
    cur = view.get("budget", {}).get("currency", "")
    lines: list[str] = []
    for o in view.get("offers", []):
        cost = f" · cost {cur}{o['cost']:g}" if o.get("cost") is not None else ""
        code = f" · code {o['code']}" if o.get("code") else ""
        lead = " · needs a lead" if o.get("requires_lead") else ""
        lines.append(f"  {o['key']} ({o['kind']}) [{o['status']}]{cost}{code}{lead}")
        lines += [f"      because {r}" for r in o.get("reasons") or []]
    if lines:
        return ["", "offers:", *lines]
    suggestions = [c for c in view.get("catalogue", []) if not c.get("excluded")][:3]
    if not suggestions:
        return ["", "offers: none fits"]
    out = ["", "offers suggested (`listener offer CASE KEY` to choose):"]
    for c in suggestions:
        out.append(f"  {c['key']} ({c['kind']}) · cost {cur}{c['cost']:g}")
        out += [f"      because {r}" for r in c.get("reasons") or []]
    return out


@click.command("sources")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@pass_state
def sources_cmd(state: CliState, as_json: bool) -> None:
    """Each source's health: last success, items stored, errors, quarantined posts and next
    check."""
    from listener.quarantine import counts_by_source
    from listener.redact import mask_text
    from listener.source_health import source_health

    rows = source_health(state.app, _now())
    quarantined = counts_by_source(state.app)
    for r in rows:
        r["quarantined"] = quarantined.get(r["name"], 0)
        if isinstance(r.get("location"), str):
            r["location"] = mask_text(r["location"])
    if as_json:
        for r in rows:
            _echo_json(r)
        return
    from rich.table import Table

    table = Table()
    for col in (
        "source",
        "type",
        "health",
        "last success",
        "items",
        "errors",
        "quarantined",
        "next check",
        "last error / warning",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["name"],
            r["type"],
            r["health"],
            (r["last_success_at"] or "never")[:19],
            str(r["items"]),
            str(r["error_count"]),
            str(r["quarantined"]),
            (r["next_check_at"] or "-")[:19],
            _short(
                r["last_error"]
                or r["warning"]
                or ("; ".join(r["problems"][:2]) if r["problems"] else ""),
                80,
            ),
        )
    _console().print(table, markup=False)


@click.command("classify")
@click.argument("input_path", required=False, metavar="[FILE]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "tsv", "jsonl", "text"]),
    default=None,
    help="Input format (default: by extension; stdin: text).",
)
@click.option(
    "--text-column",
    default="text",
    show_default=True,
    help="CSV column or JSONL field holding the text.",
)
@click.option("--batch-size", type=int, default=None, help="Texts per model batch.")
@pass_state
def classify_cmd(
    state: CliState,
    input_path: str | None,
    fmt: str | None,
    text_column: str,
    batch_size: int | None,
) -> None:
    """Classify texts; one JSON object per input, in input order, on stdout.

    \b
    Output: {"label": "negative"|"neutral"|"positive", "unhappy": bool,
             "unhappy_score": 0..1, "category": NAME, "category_score": 0..1}
    """
    from itertools import islice

    from classifiers import ClassifierSettings, load_classifier
    from classifiers.progress import rich_progress
    from listener.textinput import guess_format, iter_texts, open_input

    if state.config_given or state.config_path.exists():
        classifier_settings = state.settings.classifier.resolved(state.settings.base_dir)
    else:
        classifier_settings = ClassifierSettings()
    if batch_size:
        classifier_settings = classifier_settings.model_copy(update={"batch_size": batch_size})
    chosen = fmt or guess_format(input_path)
    chunk = max(256, classifier_settings.batch_size * 8)
    if input_path in (None, "-") and sys.stdin.isatty():
        click.echo(
            "classify: type or paste texts, one per line, then Ctrl-D "
            "(or: listener classify FILE, or pipe them in)",
            err=True,
        )
    out = sys.stdout
    with open_input(input_path) as stream:
        texts = iter_texts(stream, chosen, text_column)  # type: ignore[arg-type]
        # Read (and so check) the first chunk of input before loading the model: a
        # missing file, a wrong column or broken JSON fails at once, not after a load.
        batch = list(islice(texts, chunk))
        if not batch:
            return
        classifier = load_classifier(classifier_settings, progress=rich_progress())
        while batch:
            _write_predictions(out, classifier.predict(batch), batch)
            batch = list(islice(texts, chunk))
    out.flush()


def _write_predictions(out: Any, predictions: list[Any], texts: list[str]) -> None:
    """One JSON object per text: the classifier's contract plus what the post says
    (``kind``, ``severity``, ``circumstances``, ``specifics``: listener.understanding)."""
    from listener.understanding import understand

    lines = []
    for p, text in zip(predictions, texts, strict=True):
        u = understand(text, category=p.category)
        obj = {
            **p.to_contract(),
            "kind": u.kind,
            "severity": u.severity,
            "circumstances": list(u.circumstances),
            "specifics": list(u.specifics),
        }
        lines.append(json.dumps(obj) + "\n")
    out.write("".join(lines))


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print the effective settings as JSON.")
@click.option(
    "--reference",
    is_flag=True,
    help="Print the reference of every key (Markdown) instead; needs no config file.",
)
@pass_state
def config_cmd(state: CliState, as_json: bool, reference: bool) -> None:
    """Validate config.yaml; print the effective settings (secrets and passwords in URLs
    shown as ***)."""
    if reference:
        from listener.docsgen import config_reference

        click.echo(config_reference(), nl=False)
        return
    from listener.redact import mask_data

    settings = state.settings  # (checks the paths it names, recovery.templates_dir too)
    # SecretStr fields dump as "**********"; passwords inside URLs are masked too
    data = mask_data(settings.model_dump(mode="json", by_alias=True))
    if as_json:
        _echo_json(data)
        return
    import yaml

    click.echo(f"# {state.config_path}: valid")
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
