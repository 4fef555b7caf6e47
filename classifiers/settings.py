"""Configuration of the classifier (the ``classifier:`` block of config.yaml)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CategorySpec(BaseModel):
    """One problem category: a name, what it means, and a few example posts."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=100, description="Short identifier, e.g. 'delivery'."
    )
    description: str = Field(default="", description="What posts in this category are about.")
    examples: list[str] = Field(default_factory=list, description="A few example posts.")
    keywords: list[str] = Field(
        default_factory=list,
        description="Words or phrases that signal this category (used by the lexicon model "
        "and as a prior by the transformer model).",
    )


#: The packaged default category set (descriptions, examples, keywords), written by us.
DEFAULT_CATEGORIES_FILE = Path(__file__).resolve().parent / "default_categories.yaml"


def user_cache_dir() -> Path:
    """Listener's folder for derived model files in the user's cache directory."""
    import os
    import sys

    root = os.environ.get("XDG_CACHE_HOME")
    if root:
        base = Path(root)
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path.home() / ".cache"
    return base / "listener" / "models"


def load_categories_yaml(path: Path) -> tuple[list[CategorySpec], str, dict[str, str]]:
    """Read a categories YAML: ``categories``, ``fallback_category`` and ``eval_mapping``
    (gold label of an evaluation set → category name; optional)."""
    import yaml

    from listener.errors import ClassifierError

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ClassifierError(f"cannot read categories file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise ClassifierError(f"{path}: expected a mapping with a 'categories' list")
    try:
        specs = [CategorySpec.model_validate(c) for c in data["categories"]]
    except ValueError as exc:
        raise ClassifierError(f"{path}: {exc}") from exc
    fallback = str(data.get("fallback_category", "other"))
    mapping = {str(k): str(v) for k, v in (data.get("eval_mapping") or {}).items()}
    names = {s.name for s in specs}
    bad = sorted(v for v in mapping.values() if v not in names)
    if bad:
        raise ClassifierError(f"{path}: eval_mapping names unknown categories: {', '.join(bad)}")
    return specs, fallback, mapping


@lru_cache(maxsize=1)
def _default_categories() -> tuple[CategorySpec, ...]:
    return tuple(load_categories_yaml(DEFAULT_CATEGORIES_FILE)[0])


def default_categories() -> list[CategorySpec]:
    """A fresh copy of the packaged default categories."""
    return [c.model_copy(deep=True) for c in _default_categories()]


def merge_categories(
    base: Sequence[CategorySpec], extra: Sequence[CategorySpec]
) -> list[CategorySpec]:
    """``base`` with ``extra`` added: a new name is appended, an existing name is replaced."""
    out = list(base)
    index = {c.name: i for i, c in enumerate(out)}
    for c in extra:
        if c.name in index:
            out[index[c.name]] = c
        else:
            index[c.name] = len(out)
            out.append(c)
    return out


class ClassifierSettings(BaseModel):
    """Which model classifies posts, and how."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    kind: Literal["minilm", "lexicon", "hf"] = Field(
        default="minilm",
        description="'minilm' (default: packaged all-MiniLM-L6-v2 with our fine-tuned top layers "
        "and head, offline), 'lexicon' (VADER + keywords, fast, no model files) or 'hf' (any "
        "Hugging Face sequence-classification model named in 'model', loaded offline).",
    )
    threshold: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="unhappy_score at or above which a post is unhappy.",
    )
    weights: str | None = Field(
        default=None,
        description="kind minilm: directory of the base weights (encoder_top.safetensors, "
        "head.npz, meta.json); default: the committed classifiers/weights/minilm-vader-v2.",
    )
    models_dir: str | None = Field(
        default=None,
        description="Where derived model files live: the ONNX export made on first use, cached "
        "training features, and the heads `listener train` writes with their ACTIVE pointer "
        "(never over the committed weights). Default: the user's cache directory "
        "($XDG_CACHE_HOME/listener/models, else ~/.cache/listener/models); relative paths are "
        "relative to the config file's folder.",
    )
    model: str | None = Field(
        default=None,
        description="kind hf: a Hugging Face model id (must already be in the local cache; hub "
        "access is never used) or a local directory, e.g. "
        "'cardiffnlp/twitter-roberta-base-sentiment-latest'.",
    )
    label_map: dict[str, Literal["negative", "neutral", "positive"]] = Field(
        default_factory=dict,
        description="kind hf: model label (as in its config id2label, case-insensitive) -> "
        "negative/neutral/positive. Empty: labels named like those are used as they are.",
    )
    device: str = Field(default="cpu", description="torch device for transformer models.")
    max_length: int = Field(
        default=128, ge=8, le=512, description="Tokens per text (longer texts are truncated)."
    )
    quantize: bool = Field(
        default=True,
        description="Run transformer Linear layers as int8 (CPU only; with ONNX Runtime the "
        "activation scales are fixed, calibrated at export, so a post's score never depends "
        "on its batch): about 3x faster; quality is measured in docs/model-card.md.",
    )
    backend: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="kind minilm: run the encoder with ONNX Runtime (exported on first use into "
        "<models_dir>/onnx; falls back to torch when onnx/onnxruntime are missing) or torch.",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads for inference: torch's thread count, or how many ONNX Runtime "
        "batches run side by side (default: the cores this process may use).",
    )
    correction_weight: float = Field(
        default=8.0, gt=0, description="Sample weight of an agent's correction in `listener train`."
    )
    regression_tolerance: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="`listener train` refuses a new head whose held-back unhappy-F1 is lower than "
        "the current head's by more than this.",
    )
    batch_size: int = Field(default=64, ge=1, le=4096, description="Texts per inference batch.")
    categories: list[CategorySpec] = Field(
        default_factory=default_categories,
        description="Problem categories (name, description, examples, keywords), matched by "
        "meaning. Default: the packaged set for any consumer brand (delivery, "
        "damaged_or_defective, wrong_item_or_size, returns_and_refunds, billing, "
        "account_or_login, app_or_website, service_outage, rude_or_slow_service, "
        "product_or_policy, travel_disruption, praise, other; "
        "classifiers/default_categories.yaml). Setting it replaces the whole set.",
    )
    extra_categories: list[CategorySpec] = Field(
        default_factory=list,
        description="A brand's own categories, added to `categories` without retraining (an "
        "entry whose name is already there replaces that definition).",
    )
    fallback_category: str = Field(
        default="other", description="Category used when nothing matches well."
    )

    @property
    def models_path(self) -> Path:
        """``models_dir``, or the user's cache directory when it is not set."""
        return Path(self.models_dir).expanduser() if self.models_dir else user_cache_dir()

    def resolved(self, base_dir: Path) -> ClassifierSettings:
        """A copy whose relative ``models_dir`` / ``weights`` / local ``model`` paths are
        resolved against ``base_dir`` (the config file's folder)."""
        update: dict[str, str] = {}
        for name in ("models_dir", "weights"):
            value = getattr(self, name)
            if value and not Path(value).expanduser().is_absolute():
                update[name] = str(Path(base_dir) / value)
        if self.model and self.model.startswith((".", "~")):
            update["model"] = str((Path(base_dir) / Path(self.model).expanduser()).resolve())
        return self.model_copy(update=update) if update else self

    @model_validator(mode="after")
    def _check_categories(self) -> ClassifierSettings:
        if self.extra_categories:
            # one effective list for every consumer; extra_categories is folded in
            self.categories = merge_categories(self.categories, self.extra_categories)
            self.extra_categories = []
        names = [c.name for c in self.categories]
        if len(set(names)) != len(names):
            raise ValueError("category names must be unique")
        if self.fallback_category not in names:
            raise ValueError(
                f"fallback_category {self.fallback_category!r} is not one of the categories"
            )
        return self
