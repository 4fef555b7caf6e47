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
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from listener.errors import ClassifierError, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from classifiers.data import Example
    from classifiers.progress import Progress
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
    from classifiers.synthetic import generate, generate_voices

    examples = load_vader(base_dir or default_base_data_dir()) + generate() + generate_voices()
    if limit is not None and limit < len(examples):
        # a deterministic, stratified-enough subset (used by tests)
        examples = sorted(
            examples, key=lambda e: hashlib.sha1(e.text.encode("utf-8", "replace")).hexdigest()
        )[:limit]
    return examples


def _feature_tag(settings: ClassifierSettings, top: Path | None = None) -> str:
    """Cache key of encoded features: the top layers' digest, graph, quantization, length."""
    from classifiers.encoder import GRAPH_VERSION, INT8_SCHEME, top_digest
    from classifiers.minilm import TOP_FILE, base_weights_dir

    top = top or base_weights_dir(settings) / TOP_FILE
    digest = top_digest(top) if top.is_file() else "none"
    quant = INT8_SCHEME if settings.quantize else "fp32"
    return f"{digest}-{GRAPH_VERSION}-{quant}-l{settings.max_length}-{settings.backend}"


#: How many base (train-slice) texts join the corrections when fine-tuning the last
#: layer, so it learns the brand's posts without forgetting general sentiment.
FINE_TUNE_BASE_TEXTS = 3000


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
    fine_tune: bool = False,
    epochs: int = 2,
    progress: Progress | None = None,
) -> TrainResult:
    """Refit the head on base data + corrections; activate it unless it regresses.

    With ``fine_tune`` the last encoder layer is first fine-tuned on the corrections
    (plus a sample of the base data); the new head is fitted on that encoder's features
    and compared with the current head on the current encoder's, with the same guard.

    ``corrections`` may be passed directly (benchmarks); otherwise they are read
    from ``session``.  The new head is always written to ``<models_dir>/<version>``
    (so a refused head can be inspected) but only an accepted one becomes ACTIVE.
    """
    from classifiers.encoder import GRAPH_VERSION
    from classifiers.minilm import TOP_FILE, MiniLMClassifier, set_active_head
    from classifiers.progress import no_progress
    from classifiers.training import (
        base_split,
        cached_encode,
        correction_heldback,
        encode_corrections,
        train_head,
    )

    if settings.kind != "minilm":
        raise ClassifierError(
            f"listener train refits the MiniLM head; classifier.kind is {settings.kind!r}"
        )
    say = log or (lambda _msg: None)
    progress = progress or no_progress
    if corrections is None:
        if session is None:
            raise ClassifierError("train_from_corrections needs a session or corrections")
        corrections = load_corrections(session)
    if fine_tune and not corrections:
        raise ClassifierError("there are no corrections to fine-tune on (listener label first)")
    clf = classifier or MiniLMClassifier(settings, progress=progress)
    base = load_base_examples(base_dir, base_limit)
    version = datetime.now(UTC).strftime("minilm-%Y%m%dT%H%M%S%fZ")
    out_dir = settings.models_path / version
    cache_dir = settings.models_path / "cache"
    encode, tag = clf.encode, _feature_tag(settings, clf.encoder.top_weights)
    current_eval = None
    if fine_tune:
        from safetensors.torch import save_file

        from classifiers.finetune import finetune_last_layer

        split = base_split([f"{e.source}:{e.text}" for e in base])
        pool = [e for e, s in zip(base, split, strict=True) if s == 0]
        sample = random.Random(7).sample(pool, min(FINE_TUNE_BASE_TEXTS, len(pool)))
        train_corr = [
            c
            for c, held in zip(
                corrections, correction_heldback([c.key for c in corrections]), strict=True
            )
            if not held
        ]
        say(
            f"fine-tuning the last encoder layer on {len(train_corr)} corrections "
            f"+ {len(sample)} base examples ({epochs} epochs)"
        )
        top = clf.encoder.top_weights
        if top is None:
            raise ClassifierError("the encoder has no fine-tuned top layers to start from")
        state = finetune_last_layer(
            top,
            [c.text for c in train_corr] + [e.text for e in sample],
            [c.unhappy for c in train_corr] + [e.unhappy for e in sample],
            [settings.correction_weight] * len(train_corr) + [1.0] * len(sample),
            epochs=epochs,
            max_length=settings.max_length,
            progress=progress,
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        save_file(state, str(out_dir / TOP_FILE))
        # the current head is judged on its own encoder's features
        held = [e for e, s in zip(base, split, strict=True) if s == 2]
        current_eval = (
            cached_encode(clf.encode, held, cache_dir, tag),
            encode_corrections(clf.encode, corrections),
        )
        encoder = clf._encoder(out_dir / TOP_FILE)

        def encode(texts: Any) -> Any:
            from classifiers.encoder import lexicon_features

            sent, topic = encoder.encode(texts)
            return sent, topic, lexicon_features(texts)

        tag = _feature_tag(settings, out_dir / TOP_FILE)
    say(f"encoding {len(base)} base examples (cached after the first run)")
    with progress(f"Encoding {len(base)} base examples (cached after the first run)"):
        base_feats = cached_encode(encode, base, cache_dir, tag)
    corr_feats = encode_corrections(encode, corrections) if corrections else None
    say(f"fitting the head on {len(base)} base examples + {len(corrections)} corrections")
    result = train_head(
        base_feats,
        corr_feats,
        current=clf.head,
        correction_weight=settings.correction_weight,
        tolerance=settings.regression_tolerance,
        threshold=settings.threshold,
        version=version,
        current_eval=current_eval,
    )
    result.head.meta["parent"] = clf.head.version
    result.head.meta["accepted"] = result.accepted
    result.head.meta["decision"] = result.reason
    result.head.meta["fine_tuned_layer"] = fine_tune
    result.head.meta["graph"] = GRAPH_VERSION
    result.head.save(out_dir)
    if result.accepted and activate:
        set_active_head(settings, version)
    return result
