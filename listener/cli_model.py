"""``listener label``, ``listener train`` and ``listener eval``: the model's commands."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from listener.cli import CliState
from listener.cli_cases import actor_name, identity

if TYPE_CHECKING:
    from classifiers.settings import ClassifierSettings

pass_state = click.make_pass_decorator(CliState)


def _classifier_settings(state: CliState) -> ClassifierSettings:
    """The config's classifier block (defaults when there is no config), paths resolved."""
    from classifiers import ClassifierSettings

    if state.config_given or state.config_path.exists():
        settings = state.settings
        return settings.classifier.resolved(settings.base_dir)
    return ClassifierSettings()


@click.command("label")
@click.argument("mention_id", type=int)
@click.option(
    "--unhappy/--not-unhappy",
    "unhappy",
    required=True,
    help="Whether the customer is really unhappy.",
)
@click.option("--category", default=None, help="The right problem category (a configured name).")
@identity
@pass_state
def label_cmd(
    state: CliState,
    mention_id: int,
    unhappy: bool,
    category: str | None,
    by: str | None,
    role: str | None,
) -> None:
    """Correct a mention's label; `listener train` learns from corrections."""
    from listener.cases.labels import correct_label

    cs = state.settings.classifier
    names = [c.name for c in cs.categories]
    if category is not None and category not in names:
        raise click.BadParameter(
            f"unknown category {category!r}; configured: {', '.join(names)}",
            param_hint="--category",
        )
    done = correct_label(
        state.app, mention_id, actor_name(by), unhappy=unhappy, category=category, role=role
    )
    click.echo(
        f"correction {done['id']}: mention {mention_id} is "
        f"{'unhappy' if unhappy else 'not unhappy'}"
        + (f", category {category}" if category else "")
        + f" (by {done['by']}); run `listener train` to learn from it"
    )
    again = done.get("retriaged")
    if again:
        click.echo(
            f"case {done['case_id']} re-triaged: priority {again['priority']}, "
            f"category {again['category']}"
            + (f", reply v{again['draft_version']} rewritten" if again.get("draft_version") else "")
        )


@click.command("train")
@click.option(
    "--base-data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of VADER's *_GroundTruth.txt (default: ../shared/data/vader).",
)
@click.option(
    "--rebuild-base",
    is_flag=True,
    help="Rebuild the committed base weights: fine-tune the top MiniLM layers on the "
    "base data, then fit the head (no corrections). Minutes on a GPU.",
)
@click.option(
    "--head-only",
    is_flag=True,
    help="With --rebuild-base: keep the existing top layers, refit only the head.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --rebuild-base: where to write (default: the configured weights).",
)
@click.option(
    "--fine-tune",
    "fine_tune",
    is_flag=True,
    help="Also fine-tune the last encoder layer on the corrections (minutes on a CPU); the "
    "same held-back check decides whether the result is used.",
)
@click.option("--device", default=None, help="torch device for --rebuild-base (e.g. cuda).")
@click.option(
    "--epochs",
    type=int,
    default=None,
    help="Fine-tuning epochs (default: 3 with --rebuild-base, 2 with --fine-tune).",
)
@click.option(
    "--base-limit", type=int, default=None, hidden=True, help="Use only N base examples (tests)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def train_cmd(
    state: CliState,
    base_data: Path | None,
    rebuild_base: bool,
    head_only: bool,
    output: Path | None,
    fine_tune: bool,
    device: str | None,
    epochs: int | None,
    base_limit: int | None,
    as_json: bool,
) -> None:
    """Refit the classifier head on base data plus agents' corrections.

    The new head is evaluated on a held-back slice and becomes the one in use
    only if its unhappy-F1 does not regress; otherwise it is refused (exit 1).
    """
    from classifiers.progress import rich_progress

    cs = _classifier_settings(state)
    if fine_tune and rebuild_base:
        raise click.UsageError("--fine-tune learns from corrections; not with --rebuild-base")

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    if rebuild_base:
        from classifiers.rebuild import rebuild_base_weights

        out = rebuild_base_weights(
            cs,
            base_dir=base_data,
            output=output,
            device=device or cs.device,
            epochs=epochs or 3,
            head_only=head_only,
            base_limit=base_limit,
            log=log,
            progress=rich_progress(),
        )
        click.echo(f"base weights written to {out}")
        return
    from listener.learning import train_from_corrections

    with state.app.sessions() as session:
        result = train_from_corrections(
            cs,
            session,
            base_dir=base_data,
            base_limit=base_limit,
            log=log,
            fine_tune=fine_tune,
            epochs=epochs or 2,
            progress=rich_progress(),
        )
    summary = {
        "version": result.head.version,
        "accepted": result.accepted,
        "reason": result.reason,
        "corrections": result.head.meta.get("corrections", 0),
        "new": result.new_metrics,
        "current": result.current_metrics,
    }
    if as_json:
        click.echo(json.dumps(_no_nan(summary), indent=2, default=float))
    else:
        for where, m in result.new_metrics.items():
            cur = result.current_metrics.get(where)
            if not m.get("n"):
                click.echo(f"{where}: nothing held back to compare on")
                continue
            click.echo(
                f"{where}: n={m['n']} unhappy-F1 new {_score(m['f1'])}"
                + (f" vs current {_score(cur['f1'])}" if cur else "")
            )
    if result.accepted:
        if state._app is not None:
            from classifiers import load_classifier

            state.app.use_classifier(load_classifier(cs))
        click.echo(f"accepted: head {result.head.version} is now in use ({result.reason})")
    else:
        click.echo(
            f"refused: head {result.head.version} was not activated: {result.reason}", err=True
        )
        sys.exit(1)


def _score(value: Any) -> str:
    """A metric for people: "n/a" where it is undefined (no unhappy example in the slice),
    never "nan"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(number) else f"{number:.3f}"


def _no_nan(value: Any) -> Any:
    """``value`` with every NaN as null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if math.isnan(float(value)) and not isinstance(value, str | bool):
            return None
    except (TypeError, ValueError):
        pass
    return value


@click.command("eval")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Labelled CSV file.",
)
@click.option("--text-column", default="text", show_default=True)
@click.option(
    "--label-column",
    default="airline_sentiment",
    show_default=True,
    help="Gold negative/neutral/positive; 'negative' means unhappy.",
)
@click.option("--category-column", default=None, help="Gold problem category column.")
@click.option(
    "--categories",
    "categories_file",
    default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML with `categories`, `fallback_category` and `eval_mapping` (gold value → "
    "category name), e.g. classifiers/airline_categories.yaml.",
)
@click.option(
    "--id-column",
    default="tweet_id",
    show_default=True,
    help="Rows are deduplicated by this column when present.",
)
@click.option(
    "--kind",
    type=click.Choice(["minilm", "lexicon", "hf"]),
    default=None,
    help="Override classifier.kind.",
)
@click.option("--limit", type=int, default=None, help="Evaluate only the first N rows.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def eval_cmd(
    state: CliState,
    data_path: Path,
    text_column: str,
    label_column: str,
    category_column: str | None,
    categories_file: Path | None,
    id_column: str,
    kind: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Evaluate the classifier on a labelled CSV: macro-F1, accuracy, unhappy P/R/F1,
    ROC AUC, confusion matrix, calibration and (with --category-column) category accuracy."""
    from classifiers.evaluation import evaluate_csv, format_report

    cs = _classifier_settings(state)
    if kind:
        cs = cs.model_copy(update={"kind": kind})
    from classifiers import load_classifier
    from classifiers.progress import no_progress, rich_progress

    progress = rich_progress() if sys.stderr.isatty() else no_progress
    classifier = None
    if categories_file is None:  # (a categories file changes the model's settings)
        with progress(f"Loading the {cs.kind} model"):
            classifier = load_classifier(cs)
    with progress(f"Evaluating on {data_path.name}" + (f" (first {limit})" if limit else "")):
        report = evaluate_csv(
            cs,
            data_path,
            classifier=classifier,
            text_column=text_column,
            label_column=label_column,
            category_column=category_column,
            categories_file=categories_file,
            id_column=id_column,
            limit=limit,
        )
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))
