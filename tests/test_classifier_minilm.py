"""The default MiniLM classifier: offline loading, the Prediction contract, categories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from classifiers import ClassifierSettings, Prediction, load_classifier
from classifiers.text import model_input
from listener.errors import ClassifierError

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "classifiers" / "weights"

COMPLAINTS = [
    "My package was supposed to arrive last week and tracking hasn't moved. Nobody answers.",
    "I was charged twice for the same order and support won't reply",
    "The sole came off my new boots after two days. Terrible quality.",
    "40 minutes on hold and then your agent hung up on me",
]
HAPPY = [
    "Love my new boots, best purchase all year! Thank you!",
    "Shout out to the support team, they sorted my order in minutes. Amazing service",
]
NEUTRAL = ["Do you ship to Canada?", "What time does the store open on Sunday?"]


def test_default_kind_is_minilm_and_weights_are_small() -> None:
    assert ClassifierSettings().kind == "minilm"
    total = sum(p.stat().st_size for p in WEIGHTS.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024, f"committed weights are {total / 1e6:.1f} MB"
    assert (WEIGHTS / "minilm-vader-v2" / "encoder_top.safetensors").is_file()
    assert (WEIGHTS / "minilm-vader-v2" / "head.npz").is_file()


def test_imports_stay_light() -> None:
    code = (
        "import sys, classifiers, classifiers.minilm, classifiers.hf, listener.cli, "
        "listener.cli_model, listener.learning\n"
        "mods = ('torch', 'transformers', 'onnxruntime', 'sklearn')\n"
        "heavy = [m for m in mods if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def minilm(models_dir: Path):  # type: ignore[no-untyped-def]
    return load_classifier(ClassifierSettings(models_dir=str(models_dir)))


@pytest.mark.model
def test_predict_contract_and_quality(minilm) -> None:  # type: ignore[no-untyped-def]
    texts = [*COMPLAINTS, *HAPPY, *NEUTRAL, "", COMPLAINTS[0]]
    preds = minilm.predict(texts)
    assert len(preds) == len(texts)
    for p in preds:
        assert isinstance(p, Prediction)
        assert p.label in ("negative", "neutral", "positive")
        assert set(p.probabilities) == {"negative", "neutral", "positive"}
        assert abs(sum(p.probabilities.values()) - 1) < 1e-4
        assert 0.0 <= p.unhappy_score <= 1.0
        assert p.unhappy == (p.unhappy_score >= 0.5)
        assert 0.0 <= p.category_score <= 1.0
        assert p.model_version.startswith("minilm-vader-v2")
    n = len(COMPLAINTS)
    assert all(p.unhappy for p in preds[:n]), [p.unhappy_score for p in preds[:n]]
    assert not any(p.unhappy for p in preds[n : n + len(HAPPY) + len(NEUTRAL)])
    assert all(p.label == "positive" for p in preds[n : n + len(HAPPY)])
    # duplicates (served by the cache) and batch composition do not change the answer
    assert preds[-1].unhappy_score == pytest.approx(preds[0].unhappy_score, abs=1e-5)
    assert (preds[-1].label, preds[-1].category) == (preds[0].label, preds[0].category)
    alone = minilm.predict([COMPLAINTS[2]])[0]
    assert abs(alone.unhappy_score - preds[2].unhappy_score) < 1e-3


@pytest.mark.model
def test_categories_from_config(minilm) -> None:  # type: ignore[no-untyped-def]
    preds = minilm.predict(
        [
            "Ordered two weeks ago and my package still hasn't arrived, tracking is stuck",
            "I was charged twice for one order, my card was billed two times",
            "These run two sizes small, had to send them back because the fit is wrong",
            "Thank you so much, the team was amazing and I love my new shoes!",
            "My mom passed away and I need the funeral shoes by Friday",
        ]
    )
    assert preds[0].category == "delivery"
    assert preds[1].category == "billing"
    assert preds[2].category == "wrong_item_or_size"
    assert preds[3].category == "praise"
    assert "bereavement" in preds[4].circumstances


@pytest.mark.model
def test_a_brand_adds_a_category_without_retraining(models_dir: Path) -> None:
    """A category defined in config (description + examples) is matched by meaning."""
    settings = ClassifierSettings(
        models_dir=str(models_dir),
        extra_categories=[
            {
                "name": "allergens",
                "description": "Food with allergens that were not on the label or menu; "
                "allergic reactions after eating.",
                "examples": [
                    "There were nuts in the nut-free cookies and my son had a reaction.",
                    "The menu said dairy free but the sauce was full of cream.",
                    "I'm allergic to shellfish and nobody told me the soup had prawns.",
                ],
            }
        ],
    )
    assert [c.name for c in settings.categories][-1] == "allergens"
    clf = load_classifier(settings)
    (p,) = clf.predict(["Your 'gluten free' pizza made me sick all night, I'm coeliac"])
    assert p.unhappy and p.category == "allergens"
    (q,) = clf.predict(["My parcel still hasn't arrived after two weeks, where is it?"])
    assert q.category == "delivery"


def test_lexicon_stays_available() -> None:
    clf = load_classifier(ClassifierSettings(kind="lexicon"))
    (p,) = clf.predict(["This is awful, my order never arrived"])
    assert p.unhappy and p.model_version.startswith("lexicon")


def test_hf_missing_model_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    settings = ClassifierSettings(kind="hf", model="someone/not-a-cached-model-xyz")
    with pytest.raises(ClassifierError, match="not in the local Hugging Face cache"):
        load_classifier(settings)
    with pytest.raises(ClassifierError, match=r"classifier\.model is not set"):
        load_classifier(ClassifierSettings(kind="hf"))


@pytest.mark.model
def test_hf_local_model_with_label_map(tmp_path: Path) -> None:
    """A (tiny, random) sequence-classification model saved locally loads offline."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from classifiers.encoder import base_model_dir

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
        label2id={"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path / "tiny")
    AutoTokenizer.from_pretrained(str(base_model_dir())).save_pretrained(tmp_path / "tiny")
    with pytest.raises(ClassifierError, match="label_map"):
        load_classifier(ClassifierSettings(kind="hf", model=str(tmp_path / "tiny")))
    clf = load_classifier(
        ClassifierSettings(
            kind="hf",
            model=str(tmp_path / "tiny"),
            label_map={"LABEL_0": "negative", "label_1": "neutral", "LABEL_2": "positive"},
        )
    )
    preds = clf.predict(["my order never arrived", "love it", "open on sunday?"])
    assert len(preds) == 3
    for p in preds:
        assert abs(sum(p.probabilities.values()) - 1) < 1e-4
        assert p.unhappy_score == pytest.approx(p.probabilities["negative"])
        assert p.model_version.startswith("hf:")


@pytest.mark.model
def test_listener_classify_uses_minilm_offline(tmp_path: Path) -> None:
    """No config: `listener classify` runs the default MiniLM model with the hub off."""
    import json
    import os

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")

    def classify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "listener", "classify"],
            input="my package never arrived and nobody answers\nthank you, love it!\n",
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=env,
        )

    out = classify()
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["unhappy"] for r in rows] == [True, False]
    assert rows[0]["category"] == "delivery"
    # derived model files go to the user's cache directory, never the current one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    assert list((tmp_path / "cache" / "listener" / "models" / "onnx").glob("minilm-*.onnx"))
    assert "Preparing the model" in out.stderr
    again = classify()  # warm: nothing to prepare, same answers
    assert again.returncode == 0 and again.stdout == out.stdout
    assert "Preparing the model" not in again.stderr


AIRLINE = ROOT.parent / "shared" / "data" / "airline-dev" / "Tweets-dev.csv"


def real_tweets(n: int) -> list[str]:
    """The first ``n`` texts of the airline dev set (real tweets to a brand)."""
    import csv

    if not AIRLINE.is_file():
        pytest.fail(f"{AIRLINE} is missing: tests read ../shared/data in place")
    with AIRLINE.open(encoding="utf-8", newline="") as fh:
        return [row["text"] for _, row in zip(range(n), csv.DictReader(fh), strict=False)]


@pytest.mark.model
def test_a_texts_verdict_does_not_depend_on_its_batch(minilm) -> None:  # type: ignore[no-untyped-def]
    """The same text gets the same score, flag and category alone, in a batch of any
    company and order, and whatever number of threads runs it (issue #16)."""
    texts = [*real_tweets(150), *COMPLAINTS, *HAPPY, *NEUTRAL]
    encoder = minilm.encoder
    workers = encoder.workers
    encoder.clear_cache()
    alone = [minilm.predict([t])[0] for t in texts]
    runs = []
    try:
        for n, order in ((1, texts), (3, texts[::-1]), (2, texts[1::2] + texts[::2])):
            encoder.workers = n
            encoder.clear_cache()
            preds = minilm.predict(order)
            runs.append(dict(zip(order, preds, strict=True)))
    finally:
        encoder.workers = workers
    for text, a in zip(texts, alone, strict=True):
        for run in runs:
            b = run[text]
            assert a.unhappy == b.unhappy, text
            assert a.category == b.category, text
            assert abs(a.unhappy_score - b.unhappy_score) <= 1e-4, text
            assert abs(a.category_score - b.category_score) <= 1e-4, text
            assert a.circumstances == b.circumstances


def _predict_in_child(clf, texts, queue) -> None:  # type: ignore[no-untyped-def]
    queue.put([p.unhappy for p in clf.predict(texts)])


@pytest.mark.model
def test_predict_after_fork_does_not_hang(minilm) -> None:  # type: ignore[no-untyped-def]
    """Celery's prefork workers fork a parent that may already have used the pool."""
    import multiprocessing

    minilm.encoder.clear_cache()
    expected = [p.unhappy for p in minilm.predict(COMPLAINTS + HAPPY)]  # the pool now exists
    minilm.encoder.clear_cache()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_predict_in_child, args=(minilm, COMPLAINTS + HAPPY, queue))
    child.start()
    try:
        got = queue.get(timeout=60)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert got == expected


@pytest.mark.model
def test_category_examples_from_another_graph_are_ignored(minilm) -> None:  # type: ignore[no-untyped-def]
    """A head trained on an older encoder graph keeps its unhappy model but not its
    agents' category vectors (they came from another layer)."""
    import dataclasses

    import numpy as np

    from classifiers.encoder import GRAPH_VERSION

    head = minilm.head
    vec = np.ones((1, 384), np.float32)
    try:
        for graph, kept in (("g1", False), (GRAPH_VERSION, True)):
            old = dataclasses.replace(
                head, cat_vectors=vec, cat_labels=["billing"], meta={**head.meta, "graph": graph}
            )
            minilm._use_head(old)
            assert (minilm.head.cat_labels == ["billing"]) is kept
    finally:
        minilm._use_head(head)


@pytest.mark.model
def test_int8_graph_quantizes_activations_with_fixed_scales(minilm) -> None:  # type: ignore[no-untyped-def]
    """What makes batching safe: no activation scale is computed from the batch (issue
    #16). A dynamic quantizer (``DynamicQuantizeLinear`` or the fused
    ``DynamicQuantizeMatMul``) in the exported graph would make a post's score depend on
    its neighbours again; every quantizer is a ``QuantizeLinear`` with constant scales."""
    import onnx

    from classifiers.encoder import onnx_path

    if minilm.encoder.backend != "onnx" or not minilm.settings.quantize:
        pytest.skip("the ONNX int8 path is not the one in use")
    path = onnx_path(minilm.settings.models_path / "onnx", minilm.encoder.top_weights, True)
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert not ops & {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulInteger"}
    constants = {i.name for i in graph.initializer}
    quantizers = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert len(quantizers) == 24  # 4 per layer: q/k/v input, attention output, two FFN inputs
    for n in quantizers:
        assert n.input[1] in constants and n.input[2] in constants, n.name
    assert sum(n.op_type == "MatMulIntegerToFloat" for n in graph.node) == 36


@pytest.mark.model
def test_steps_run_as_a_pipeline_with_the_results_of_one_step_at_a_time(
    minilm, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """``predict`` encodes the next step while it finishes this one: each step still
    encodes exactly what it would one step at a time (repeated posts once), so the
    predictions are equal, not just close."""
    texts = [*real_tweets(90), *COMPLAINTS, *HAPPY]
    texts += texts[5:45]  # posts repeated in later steps
    monkeypatch.setattr(minilm, "settings", minilm.settings.model_copy(update={"batch_size": 2}))
    step = 2 * 16
    minilm.encoder.clear_cache()
    steps = [texts[s : s + step] for s in range(0, len(texts), step)]
    one_at_a_time = [p for chunk in steps for p in minilm.predict(chunk)]
    minilm.encoder.clear_cache()
    encoded: list[str] = []
    launch = minilm.encoder._launch
    monkeypatch.setattr(
        minilm.encoder, "_launch", lambda todo: (encoded.extend(todo), launch(todo))[1]
    )
    pipelined = minilm.predict(texts)
    assert len(encoded) == len(set(encoded)) == len({model_input(t) for t in texts})
    assert pipelined == one_at_a_time
