"""`listener classify`: the stable JSON-lines contract on CSV, JSONL, plain text and stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TEXTS = [
    "My Zephyr Shoes package never arrived and support hung up on me. Furious!",
    "Love my new boots, best purchase all year",
    "Is the store open on Sunday?",
    'A line with "quotes", commas, and émojis 🎉',
]


def run(
    args: list[str], tmp_path: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("brand: {name: Zephyr Shoes}\nclassifier: {kind: lexicon}\n")
    return subprocess.run(
        [sys.executable, "-m", "listener", "--config", str(cfg), "classify", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


def check_contract(stdout: str, n: int) -> list[dict]:
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) == n
    for row in rows:
        assert set(row) == {
            "label",
            "unhappy",
            "unhappy_score",
            "category",
            "category_score",
            # what the post says (listener.understanding, issue #13)
            "kind",
            "severity",
            "circumstances",
            "specifics",
        }
        assert row["label"] in ("negative", "neutral", "positive")
        assert isinstance(row["unhappy"], bool)
        assert 0.0 <= row["unhappy_score"] <= 1.0
        assert isinstance(row["category"], str) and row["category"]
        assert 0.0 <= row["category_score"] <= 1.0
    return rows


def test_csv_with_text_column(tmp_path: Path) -> None:
    import csv

    path = tmp_path / "in.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "tweet"])
        for i, t in enumerate(TEXTS):
            w.writerow([i, t])
    proc = run([str(path), "--text-column", "tweet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = check_contract(proc.stdout, len(TEXTS))
    assert rows[0]["unhappy"] is True and rows[0]["label"] == "negative"
    assert rows[1]["unhappy"] is False and rows[1]["label"] == "positive"


def test_csv_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,body\n1,hello\n")
    proc = run([str(path)], tmp_path)
    assert proc.returncode == 2
    assert "no column 'text'" in proc.stderr and "--text-column" in proc.stderr


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    proc = run([str(path)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    check_contract(proc.stdout, len(TEXTS))


def test_plain_text_file_and_stdin_agree(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    from_file = run([str(path)], tmp_path)
    from_stdin = run([], tmp_path, stdin="\n".join(TEXTS) + "\n")
    assert from_file.returncode == from_stdin.returncode == 0
    assert from_file.stdout == from_stdin.stdout
    check_contract(from_file.stdout, len(TEXTS))


def test_format_flag_overrides_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.dat"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    proc = run([str(path), "--format", "jsonl"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    check_contract(proc.stdout, len(TEXTS))


@pytest.mark.parametrize("n", [1, 700])
def test_order_is_preserved_across_batches(tmp_path: Path, n: int) -> None:
    texts = [
        ("Zephyr Shoes lost my package, awful" if i % 2 else "thanks, great boots!")
        for i in range(n)
    ]
    proc = run(["--batch-size", "16"], tmp_path, stdin="\n".join(texts) + "\n")
    assert proc.returncode == 0, proc.stderr
    rows = check_contract(proc.stdout, n)
    assert [r["unhappy"] for r in rows] == [bool(i % 2) for i in range(n)]


def test_without_a_config_file_uses_default_classifier_settings(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "listener", "classify"],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    check_contract(proc.stdout, 1)


@pytest.mark.parametrize(
    "args",
    [
        ["missing.csv"],
        ["bad.csv", "--text-column", "nope"],
        ["bad.jsonl"],
    ],
)
def test_bad_input_fails_before_the_model_loads(tmp_path: Path, args: list[str]) -> None:
    """The input is checked first: no model load (no cache files, no minutes) for a typo."""
    import os

    (tmp_path / "bad.csv").write_text("id,text\n1,hello\n")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "listener", "classify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "cache").exists()
    assert "Preparing" not in proc.stderr
