"""Personal details for replies, pulled out of a post: pure functions, no I/O.

* :func:`extract_order` — the order reference the customer quoted
  (``order #ZS-48213``), so the reply can name it.
* :func:`extract_products` — what they bought, in their words
  (``loafers``, ``trail runners``, ``boots``).
"""

from __future__ import annotations

import re

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
