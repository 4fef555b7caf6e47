"""Configuration of the classifier (the ``classifier:`` block of config.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CategorySpec(BaseModel):
    """One problem category: a name, what it means, and a few example posts."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short identifier, e.g. 'lost_or_late_delivery'.")
    description: str = Field(default="", description="What posts in this category are about.")
    examples: list[str] = Field(default_factory=list, description="A few example posts.")
    keywords: list[str] = Field(
        default_factory=list,
        description="Words or phrases that signal this category (used by the lexicon model "
        "and as a prior by the transformer model).",
    )


def _c(name: str, description: str, keywords: list[str], examples: list[str]) -> CategorySpec:
    return CategorySpec(name=name, description=description, keywords=keywords, examples=examples)


DEFAULT_CATEGORIES: list[CategorySpec] = [
    _c(
        "lost_or_late_delivery",
        "The order or package has not arrived, is lost, late, delayed or stuck in transit.",
        [
            "lost",
            "never arrived",
            "hasn't arrived",
            "has not arrived",
            "not arrived",
            "late",
            "delayed",
            "delay",
            "tracking",
            "where is my order",
            "where's my order",
            "package",
            "parcel",
            "shipping",
            "delivery",
            "delivered",
            "courier",
            "stuck in transit",
            "still waiting",
        ],
        [
            "My package was supposed to arrive Monday and tracking hasn't moved in a week.",
            "Ordered two weeks ago and still nothing. Where is my order?",
        ],
    ),
    _c(
        "damaged_or_defective",
        "The item arrived broken or damaged, or stopped working; poor quality.",
        [
            "broken",
            "damaged",
            "defective",
            "fell apart",
            "falling apart",
            "ripped",
            "torn",
            "cracked",
            "stopped working",
            "doesn't work",
            "does not work",
            "faulty",
            "sole came off",
            "quality",
            "stitching",
            "scratched",
            "dented",
        ],
        [
            "The sole came off after two days of wearing them.",
            "Box arrived crushed and the mug inside was shattered.",
        ],
    ),
    _c(
        "wrong_size_or_fit",
        "Wrong size, fit, colour or item received; sizing runs small or large.",
        [
            "size",
            "sizing",
            "fit",
            "too small",
            "too big",
            "too large",
            "too tight",
            "runs small",
            "runs large",
            "wrong item",
            "wrong color",
            "wrong colour",
            "wrong size",
        ],
        [
            "These run two sizes small, nothing like the size chart.",
            "Ordered a medium in blue, got a large in green.",
        ],
    ),
    _c(
        "returns_and_refunds",
        "Trouble returning an item or getting money back.",
        [
            "refund",
            "return",
            "returned",
            "money back",
            "reimburse",
            "exchange",
            "store credit",
            "return label",
            "rma",
        ],
        [
            "Sent the return back a month ago and still no refund.",
            "Why is it so hard to get a return label?",
        ],
    ),
    _c(
        "billing",
        "Charged twice or wrongly, payment, price or promo code problems.",
        [
            "charged",
            "charge",
            "double charged",
            "billing",
            "bill",
            "invoice",
            "payment",
            "card",
            "overcharged",
            "promo code",
            "coupon",
            "price",
            "fee",
        ],
        [
            "I was charged twice for the same order.",
            "Your promo code didn't apply and I paid full price.",
        ],
    ),
    _c(
        "rude_or_slow_service",
        "Rude, unhelpful or slow customer service; long hold times; no answer.",
        [
            "rude",
            "unhelpful",
            "customer service",
            "support",
            "on hold",
            "hold for",
            "no response",
            "no reply",
            "ignored",
            "hung up",
            "agent",
            "representative",
            "nobody answers",
            "chat",
        ],
        [
            "Forty minutes on hold and then the agent hung up on me.",
            "Emailed support three times, no reply.",
        ],
    ),
    _c(
        "website_or_app",
        "The website, app, checkout or account is broken or confusing.",
        [
            "website",
            "site",
            "app",
            "checkout",
            "login",
            "log in",
            "password",
            "account",
            "crash",
            "crashes",
            "error",
            "bug",
            "page",
            "cart",
        ],
        ["Checkout keeps erroring out on the app.", "Can't log in to my account since the update."],
    ),
    _c(
        "order_change",
        "Wants to change, cancel or update an order or its address.",
        [
            "cancel",
            "cancellation",
            "change my order",
            "change the address",
            "update my order",
            "modify",
            "wrong address",
            "address",
        ],
        [
            "I need to change the shipping address on my order.",
            "Tried to cancel within an hour and was told it's too late.",
        ],
    ),
    _c(
        "praise",
        "A happy customer: thanks, compliments, love for the brand or a person.",
        [
            "love",
            "thank you",
            "thanks",
            "amazing",
            "awesome",
            "great",
            "best",
            "wonderful",
            "fantastic",
            "delighted",
            "recommend",
            "impressed",
            "kudos",
            "shout out",
            "shoutout",
        ],
        [
            "Shout out to the loyalty team, they overnighted a replacement for my wedding!",
            "Best customer service I've ever had.",
        ],
    ),
    _c("other", "Anything else.", [], []),
]


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
        "head.npz, meta.json); default: the committed classifiers/weights/minilm-vader-v1.",
    )
    models_dir: str = Field(
        default="var/models",
        description="Where `listener train` writes versioned heads and the ACTIVE pointer "
        "(never over the committed weights). Relative paths are relative to the working directory.",
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
        description="Run transformer Linear layers as int8 (dynamic quantization, CPU only): "
        "about 3x faster; quality is measured in docs/model-card.md.",
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
        default_factory=lambda: [c.model_copy(deep=True) for c in DEFAULT_CATEGORIES],
        description="Problem categories (name, description, examples, keywords).",
    )
    fallback_category: str = Field(
        default="other", description="Category used when nothing matches well."
    )

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
        names = [c.name for c in self.categories]
        if len(set(names)) != len(names):
            raise ValueError("category names must be unique")
        if self.fallback_category not in names:
            raise ValueError(
                f"fallback_category {self.fallback_category!r} is not one of the categories"
            )
        return self
