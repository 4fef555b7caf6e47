"""Learning from the team: agents' corrections → a new head, if it is not worse.

* :func:`record_correction` stores who corrected what and when (and appends an
  audit event);
* :func:`train_from_corrections` refits the MiniLM head on the base data plus
  every mention's latest correction, evaluates it on a held-back slice, and
  activates it (``<models_dir>/ACTIVE``) only if it does not regress.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from listener.errors import ClassifierError, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from classifiers.data import Example
    from classifiers.settings import ClassifierSettings
    from classifiers.training import CorrectionExample, TrainResult

LABELLER_KIND = "mention.corrected"


def default_base_data_dir() -> Path:
    """VADER's rated sets: ``$LISTENER_SHARED_DATA/vader`` or ``../shared/data/vader``."""
    root = os.environ.get("LISTENER_SHARED_DATA")
    return (Path(root) if root else Path.cwd().parent / "shared" / "data") / "vader"


def record_correction(
    session: Session,
    mention_id: int,
    unhappy: bool,
    category: str | None,
    actor: str,
    label: str | None = None,
) -> Any:
    """Store an agent's correction of one mention and append an audit event."""
    from listener import models as m

    mention = session.get(m.Mention, mention_id)
    if mention is None:
        raise NotFound(f"no mention with id {mention_id}")
    label = label or ("negative" if unhappy else None)
    now = datetime.now(UTC)
    correction = m.Correction(
        mention_id=mention_id,
        unhappy=unhappy,
        label=label,
        category=category,
        actor=actor,
        created_at=now,
    )
    session.add(correction)
    session.add(
        m.Event(
            actor=actor,
            kind=LABELLER_KIND,
            at=now,
            mention_id=mention_id,
            case_id=mention.case_id,
            data={
                "unhappy": unhappy,
                "category": category,
                "label": label,
                "was": {
                    "unhappy": mention.unhappy,
                    "category": mention.category,
                    "model_version": mention.model_version,
                },
            },
        )
    )
    session.flush()
    return correction


def load_corrections(session: Session) -> list[CorrectionExample]:
    """Each corrected mention once, with its latest correction."""
    from sqlalchemy import select

    from classifiers.training import CorrectionExample
    from listener import models as m

    rows = session.execute(
        select(m.Correction, m.Mention.text)
        .join(m.Mention, m.Mention.id == m.Correction.mention_id)
        .order_by(m.Correction.created_at, m.Correction.id)
    ).all()
    latest: dict[int, CorrectionExample] = {}
    for corr, text in rows:
        if corr.unhappy is None:
            continue
        latest[corr.mention_id] = CorrectionExample(
            key=str(corr.mention_id),
            text=text or "",
            unhappy=bool(corr.unhappy),
            category=corr.category,
        )
    return list(latest.values())


def load_base_examples(base_dir: Path | None = None, limit: int | None = None) -> list[Example]:
    """VADER's rated sets plus our templated service posts (see classifiers.synthetic)."""
    from classifiers.data import load_vader
    from classifiers.synthetic import generate

    examples = load_vader(base_dir or default_base_data_dir()) + generate()
    if limit is not None and limit < len(examples):
        # a deterministic, stratified-enough subset (used by tests)
        examples = sorted(
            examples, key=lambda e: hashlib.sha1(e.text.encode("utf-8", "replace")).hexdigest()
        )[:limit]
    return examples


def _feature_tag(settings: ClassifierSettings) -> str:
    from classifiers.encoder import INT8_SCHEME
    from classifiers.minilm import base_weights_dir

    top = base_weights_dir(settings) / "encoder_top.safetensors"
    digest = hashlib.sha1(top.read_bytes()).hexdigest()[:12] if top.is_file() else "none"
    quant = INT8_SCHEME if settings.quantize else "fp32"
    return f"{digest}-{quant}-l{settings.max_length}-{settings.backend}"


def train_from_corrections(
    settings: ClassifierSettings,
    session: Session | None,
    *,
    base_dir: Path | None = None,
    base_limit: int | None = None,
    corrections: list[CorrectionExample] | None = None,
    classifier: Any = None,
    activate: bool = True,
    log: Any = None,
) -> TrainResult:
    """Refit the head on base data + corrections; activate it unless it regresses.

    ``corrections`` may be passed directly (benchmarks); otherwise they are read
    from ``session``.  The new head is always written to ``<models_dir>/<version>``
    (so a refused head can be inspected) but only an accepted one becomes ACTIVE.
    """
    from classifiers.minilm import MiniLMClassifier, set_active_head
    from classifiers.training import cached_encode, encode_corrections, train_head

    if settings.kind != "minilm":
        raise ClassifierError(
            f"listener train refits the MiniLM head; classifier.kind is {settings.kind!r}"
        )
    say = log or (lambda _msg: None)
    if corrections is None:
        if session is None:
            raise ClassifierError("train_from_corrections needs a session or corrections")
        corrections = load_corrections(session)
    clf = classifier or MiniLMClassifier(settings)
    base = load_base_examples(base_dir, base_limit)
    say(f"encoding {len(base)} base examples (cached after the first run)")
    cache_dir = Path(settings.models_dir) / "cache"
    base_feats = cached_encode(clf.encode, base, cache_dir, _feature_tag(settings))
    corr_feats = encode_corrections(clf.encode, corrections) if corrections else None
    say(f"fitting the head on {len(base)} base examples + {len(corrections)} corrections")
    version = datetime.now(UTC).strftime("minilm-%Y%m%dT%H%M%S%fZ")
    result = train_head(
        base_feats,
        corr_feats,
        current=clf.head,
        correction_weight=settings.correction_weight,
        tolerance=settings.regression_tolerance,
        threshold=settings.threshold,
        version=version,
    )
    result.head.meta["parent"] = clf.head.version
    result.head.meta["accepted"] = result.accepted
    result.head.meta["decision"] = result.reason
    result.head.save(Path(settings.models_dir) / version)
    if result.accepted and activate:
        set_active_head(settings, version)
    return result
