"""Personal details for replies, pulled out of a post: pure functions, no I/O.

* :func:`extract_order` — the order reference the customer quoted
  (``order #ZS-48213``), so the reply can name it.
* :func:`extract_products` — what they bought, in their words
  (``loafers``, ``trail runners``, ``boots``).
* :func:`check_templates` — ``listener templates check``: every reply
  template rendered against sample contexts, checked against channel limits.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from listener.config import Settings

_ORDER = re.compile(
    r"\b(?:order|ord|purchase)\s*(?:number|no\.?|num|id)?\s*[:#]?\s*"
    r"(?P<ref>#?[A-Z]{0,4}-?\d[\dA-Z\-]{3,20})\b"
    r"|(?P<bare>#(?:[A-Z]{1,4}-)?\d{4,12})\b",
    re.IGNORECASE,
)

#: multi-word products first, so "trail runners" wins over "runners"
PRODUCT_WORDS: tuple[str, ...] = (
    "trail runners",
    "running shoes",
    "hiking boots",
    "rain boots",
    "ankle boots",
    "chelsea boots",
    "dress shoes",
    "school shoes",
    "work boots",
    "snow boots",
    "high heels",
    "flip flops",
    "ballet flats",
    "loafers",
    "sneakers",
    "trainers",
    "runners",
    "boots",
    "sandals",
    "heels",
    "flats",
    "slippers",
    "clogs",
    "mules",
    "oxfords",
    "brogues",
    "pumps",
    "wedges",
    "espadrilles",
    "moccasins",
    "insoles",
    "laces",
    "socks",
    "shoes",
)
_PRODUCTS = re.compile(
    r"\b(?:" + "|".join(re.escape(w).replace(r"\ ", r"[\s\-]+") for w in PRODUCT_WORDS) + r")\b",
    re.IGNORECASE,
)


def extract_order(text: str) -> str | None:
    """``order #ZS-48213`` for a post that quotes one, else ``None``."""
    for m in _ORDER.finditer(text or ""):
        ref = m.group("ref") or m.group("bare")
        if not ref or not any(ch.isdigit() for ch in ref):
            continue
        ref = ref.upper().rstrip("-")
        if not ref.startswith("#"):
            ref = "#" + ref
        return f"order {ref}"
    return None


def extract_products(text: str, limit: int = 2) -> list[str]:
    """The products a post names, in the customer's words, lower-case, most specific first."""
    found: list[str] = []
    for m in _PRODUCTS.finditer(text or ""):
        word = " ".join(m.group(0).lower().replace("-", " ").split())
        if word == "shoes" and found:
            continue  # "Zephyr Shoes loafers": the brand name is not the product
        if word not in found and not any(word in f for f in found):
            found.append(word)
    specific = [w for w in found if w != "shoes"]
    return (specific or found)[:limit]


def brand_free_products(text: str, brand_terms: list[str], limit: int = 2) -> list[str]:
    """:func:`extract_products` after removing the brand's own name ("Zephyr Shoes")."""
    cleaned = re.sub(r"[@#]\w+", " ", text or "")  # handles and hashtags are not products
    for term in sorted(brand_terms, key=len, reverse=True):
        if term.strip():
            cleaned = re.sub(re.escape(term), " ", cleaned, flags=re.IGNORECASE)
    return extract_products(cleaned, limit)


# ---------------------------------------------------------------------------
# `listener templates check`: every template against sample contexts

#: the longest names a template must cope with (X handles are at most 15 characters)
LONG_HANDLE = "abcdefghijklmno"
LONG_NAME = "Maximilianaoctavia Konstantinopolous-Featherstonehaugh"
SAMPLE_POSTS: tuple[str, ...] = (
    "My chelsea boots from Zephyr Shoes still haven't arrived, order #ZS-4821399. So annoyed.",
    "Still waiting on Zephyr Shoes. Really disappointed.",
)
SAMPLE_CIRCUMSTANCES: tuple[tuple[str, ...], ...] = (
    (),
    ("bereavement",),
    ("event_deadline",),
    ("illness",),
    ("child",),
)


def _finish(text: str) -> tuple[str, str | None]:
    """The same clean-up :func:`listener.drafting.render` applies (subject split off)."""
    subject = None
    text = text.lstrip()
    if text.startswith("Subject:"):
        first, _, text = text.partition("\n")
        subject = first.removeprefix("Subject:").strip()
    text = re.sub(r"[ \t]+\n", "\n", text).strip()
    return re.sub(r"\n{3,}", "\n\n", text), subject


def check_templates(settings: Settings) -> tuple[int, list[str]]:
    """Render every reply template against sample contexts; returns (renders, problems).

    Samples: long names and handles, every category, no offer and every
    catalogue offer (with a full-length coupon code), every circumstance,
    posts with and without an order number and product.  A problem is an
    undefined variable or other render error, an email without a subject, or
    a reply the sending guard would refuse (channel length — X weighted,
    @handle included — links, @mentions).
    """
    from datetime import UTC, datetime, timedelta

    from jinja2 import TemplateError as JinjaTemplateError

    from listener.drafting import CHANNEL_LIMITS, draft_context, make_environment
    from listener.offers import describe, new_coupon_code
    from listener.outbox import allowed_domains, guard_violations

    folder = str(settings.resolve_path(settings.recovery.templates_dir))
    env = make_environment(folder)
    names = sorted(
        n for n in env.list_templates() if n.startswith("replies/") and n.endswith(".j2")
    )
    if not names:
        return 0, [f"{folder}: no templates under replies/"]
    categories = [c.name for c in settings.classifier.categories]
    code = new_coupon_code(settings.recovery.coupon_prefix)

    def offer_ctx(spec: Any) -> dict[str, Any]:
        return {
            "key": spec.key,
            "kind": spec.kind,
            "description": describe(spec.description, code),
            "code": code,
            "physical": spec.physical,
            "coupon": spec.coupon,
        }

    # no offer, and the longest-worded offer of each shape (physical, coupon, other)
    offers: list[dict[str, Any] | None] = [None]
    for shape in ("physical", "coupon", "other"):
        specs = [
            o
            for o in settings.recovery.offers
            if (
                o.physical
                if shape == "physical"
                else o.coupon
                if shape == "coupon"
                else not (o.physical or o.coupon)
            )
        ]
        if specs:
            offers.append(offer_ctx(max(specs, key=lambda o: len(describe(o.description, code)))))
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    problems: dict[str, str] = {}
    renders = 0
    domains = allowed_domains(settings)
    stems: dict[str, set[str]] = {}
    for name in names:
        _, channel, filename = name.split("/", 2)
        stems.setdefault(channel, set()).add(filename.split(".", 1)[0])
    contexts: dict[tuple[Any, ...], dict[str, Any]] = {}

    def context(
        channel: str,
        display: str | None,
        handle: str,
        category: str,
        offer: dict[str, Any] | None,
        circ: tuple[str, ...],
        post: str,
    ) -> dict[str, Any]:
        key = (channel, display, handle, category, offer and offer["key"], circ, post)
        if key not in contexts:
            contexts[key] = draft_context(
                brand_name=settings.brand.name,
                brand_voice=settings.brand.voice,
                brand_handle=settings.brand.handles[0] if settings.brand.handles else None,
                handle=handle,
                display_name=display,
                channel=channel,
                category=category,
                circumstances=list(circ),
                post_text=post,
                published_at=now - timedelta(hours=3),
                now=now,
                agent_name=settings.recovery.agent_name,
                signature=settings.recovery.signature,
                offer=offer,
                brand_terms=settings.brand.match_terms,
            )
        return contexts[key]

    for name in names:
        _, channel, filename = name.split("/", 2)
        stem = filename.split(".", 1)[0]
        if stem in categories:
            cats = [stem]
        else:  # a fallback answers every category without its own template
            cats = [c for c in categories if c not in stems[channel] and c != "praise"]
        try:
            template = env.get_template(name)
        except JinjaTemplateError as exc:
            problems[name] = f"{name}: {exc}"
            continue
        praise = stem == "praise"
        for display in (LONG_NAME, None):
            for category in cats:
                for offer in [None] if praise else offers:
                    for circ in [()] if praise else SAMPLE_CIRCUMSTANCES:
                        for post in SAMPLE_POSTS:
                            ctx = context(
                                channel, display, LONG_HANDLE, category, offer, circ, post
                            )
                            renders += 1
                            where = (
                                f"{name} [{category}, offer={offer and offer['key']}, "
                                f"circumstances={list(circ)}, name={display!r}]"
                            )
                            try:
                                text, subject = _finish(template.render(**ctx))
                            except JinjaTemplateError as exc:
                                problems.setdefault(name, f"{where}: {type(exc).__name__}: {exc}")
                                continue
                            if channel == "email" and not subject:
                                problems.setdefault(name, f"{where}: email without a Subject")
                            bad = guard_violations(
                                text,
                                channel,
                                limit=CHANNEL_LIMITS.get(channel),
                                author_handle=LONG_HANDLE,
                                brand_handles=settings.brand.handles,
                                allowed_domains=domains,
                            )
                            if bad:
                                problems.setdefault(name, f"{where}: {'; '.join(bad)}")
    return renders, sorted(problems.values())
