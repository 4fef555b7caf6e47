"""Generate the configuration reference (docs/configuration.md) from the settings model.

The reference is built from the pydantic models themselves — every key, its
type, default and help text — and a test fails when the committed page lags
behind the code (``listener config --reference > docs/configuration.md``).
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

HEADER = """# Configuration reference

Listener reads one YAML file (`config.yaml`, or `listener --config PATH`). Every key
below is validated at start-up: an unknown key, a wrong type or a missing secret
stops Listener with one line naming the file and the key.

* Secrets are never written in the file: write `${ENV_VAR}` (or `${ENV_VAR:-default}`)
  and set the variable. Secret values are shown as `**********` by `listener config`.
* Durations are written like `30s`, `15m`, `1h30m`, `2d` (or a number of seconds).
* Relative paths are resolved against the folder of the config file.
* `LISTENER_DATABASE_URL` overrides `database.url`.

This page is generated from the code (`listener config --reference`); a test
fails when it is out of date.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is SecretStr:
        return "secret"
    if origin is typing.Annotated:
        inner = args[0]
        if getattr(inner, "__name__", "") == "timedelta":
            return "duration"
        return _type_name(inner)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        suffix = " or null" if type(None) in args else ""
        return " | ".join(names) + suffix
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (list, tuple, set):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return ""
    elif field.default is PydanticUndefined:
        return "*required*"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} built-in entries"
    if hasattr(value, "total_seconds"):
        from listener.durations import format_duration

        return f"`{format_duration(value).replace(' ', '')}`"
    if isinstance(value, SecretStr):
        return "`**********`"
    if value is None:
        return ""
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        if typing.get_origin(candidate) in (list,):
            inner = typing.get_args(candidate)
            if inner and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
                return inner[0]
    return None


def _section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    rows: list[str] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key = field.alias or name
        path = f"{prefix}{key}"
        sub = _model_of(field.annotation)
        is_list = typing.get_origin(field.annotation) is list
        if sub is not None:
            nested.append((f"{path}[]." if is_list else f"{path}.", sub))
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{path}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
    if rows:
        title = prefix.rstrip(".") or "top level"
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        out.append(f"\n## `{title}`\n")
        if doc:
            out.append(doc + "\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        out.extend(rows)
    for sub_prefix, sub_model in nested:
        _section(sub_model, sub_prefix, out)


def _source_types(out: list[str]) -> None:
    """One row per source type: what it reads, its keys, and where replies go."""
    from listener.collectors import COLLECTOR_TYPES

    out.append("\n## Source types\n")
    out.append(
        "`sources[].type` is one of these. *Needs* is at least one of the keys listed; a "
        "key another type uses is refused. Replies take the channel shown (a source's "
        "`options.channel` overrides it; a JSONL post's `platform` picks that platform's).\n"
    )
    out.append("| type | reads | needs | keys | replies on |\n|---|---|---|---|---|")
    for name, spec in COLLECTOR_TYPES.items():
        summary = spec.summary.replace("|", "\\|")
        needs = " or ".join(f"`{k}`" for k in spec.needs)
        keys = ", ".join(f"`{k}`" for k in spec.keys)
        out.append(f"| `{name}` | {summary} | {needs} | {keys} | `{spec.channel}` |")
    for name, spec in COLLECTOR_TYPES.items():
        if not spec.options:
            continue
        out.append(f"\n`{name}` options (`sources[].options`):\n")
        out.extend(f"* `{opt}`: {help_}" for opt, help_ in spec.options)


def config_reference() -> str:
    from listener.config import Settings

    out = [HEADER.rstrip()]
    _section(Settings, "", out)
    _source_types(out)
    return "\n".join(out) + "\n"
