"""Reading texts to classify from CSV, JSONL or plain-text input (``listener classify``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from listener.errors import ListenerError

Format = Literal["csv", "tsv", "jsonl", "text"]


class InputError(ListenerError):
    """The input file cannot be read as the chosen format."""


def guess_format(path: str | None) -> Format:
    if not path or path == "-":
        return "text"
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".tsv":
        return "tsv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "text"


def iter_texts(stream: IO[str], fmt: Format, text_column: str = "text") -> Iterator[str]:
    """Yield one text per input record, in order."""
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(stream, delimiter="," if fmt == "csv" else "\t")
        if reader.fieldnames is None:
            return
        if text_column not in reader.fieldnames:
            raise InputError(
                f"no column {text_column!r} in the input (columns: {', '.join(reader.fieldnames)});"
                " choose one with --text-column"
            )
        for row in reader:
            yield row.get(text_column) or ""
    elif fmt == "jsonl":
        for n, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"line {n}: invalid JSON ({exc.msg})") from None
            if isinstance(obj, str):
                yield obj
                continue
            if not isinstance(obj, dict) or text_column not in obj:
                raise InputError(f"line {n}: no field {text_column!r}")
            value = obj[text_column]
            yield "" if value is None else str(value)
    else:
        text = stream.read()
        if text.endswith("\n"):
            text = text[:-1]
        if not text:
            return
        yield from (line.rstrip("\r") for line in text.split("\n"))


def open_input(path: str | None) -> IO[str]:
    import sys

    if not path or path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="")
    try:
        return open(path, encoding="utf-8-sig", errors="replace", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
