"""Drafting replies from the Jinja2 templates in ``templates/``.

Templates are user-editable, so they render in Jinja2's sandbox with
``StrictUndefined`` (a typo is an error, not an empty string).  Plain-text
channels are not HTML-escaped (the web UI escapes at display time); ``.html``
templates are autoescaped.

Layout: ``templates/replies/<channel>/<category>[.<n>].j2`` with
``default[.<n>].j2`` as the fallback for a channel.  Several numbered
variants of one template are picked from deterministically per case, so
replies do not read as canned.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from listener.cases.sending import CHANNEL_LIMITS, address, fits_channel
from listener.collectors import COLLECTOR_TYPES, default_channel
from listener.errors import TemplateError

if TYPE_CHECKING:
    from listener.config import SourceSettings
    from listener.understanding import Understanding

__all__ = [
    "CHANNEL_LIMITS",
    "DEFAULT_CHANNEL",
    "channel_for",
    "draft_context",
    "fits_channel",
    "render",
]


#: which channel a source type answers on by default (a source's options.channel overrides;
#: the facts live with the source types in listener.collectors.COLLECTOR_TYPES)
DEFAULT_CHANNEL: dict[str, str] = {name: t.channel for name, t in COLLECTOR_TYPES.items()}


def channel_for(cfg: SourceSettings, platform: str | None = None) -> str:
    """The reply channel for a post of ``platform`` from source ``cfg``: the source's
    ``options.channel``, else the platform's own channel (a JSONL file of Mastodon posts
    answers on Mastodon), else the source type's."""
    return str(cfg.options.get("channel") or default_channel(cfg.type, platform))


_TEMPLATE_NAME = re.compile(r"^(?P<stem>[a-z0-9_\-]+?)(?:\.(?P<n>\d+))?\.j2$")


@dataclass(frozen=True)
class RenderedDraft:
    channel: str
    template: str
    variant: int
    text: str
    subject: str | None = None


def template_loader(templates_dir: str | None) -> ChoiceLoader:
    """The brand's folder first (``recovery.templates_dir``, when set), then the templates
    packaged with Listener: a brand's folder may hold only the files it changes."""
    from listener.defaults import packaged_templates

    folders = [templates_dir] if templates_dir else []
    return ChoiceLoader([FileSystemLoader(f) for f in [*folders, str(packaged_templates())]])


@lru_cache(maxsize=16)
def make_environment(templates_dir: str | None = None) -> ImmutableSandboxedEnvironment:
    """A sandboxed Jinja2 environment over ``templates_dir`` (overriding, file by file, the
    packaged templates; ``None``: the packaged ones only), cached per folder."""
    env = ImmutableSandboxedEnvironment(
        loader=template_loader(templates_dir),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "htm", "xml"], default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["first_sentence"] = lambda s: re.split(r"(?<=[.!?])\s", str(s).strip(), maxsplit=1)[
        0
    ]
    return env


#: how long a folder listing is reused: a new template file is seen within this time,
#: and a batch of drafts does not walk the template folders once per draft
LISTING_TTL = 2.0
_listings: dict[int, tuple[float, ImmutableSandboxedEnvironment, list[str]]] = {}


def _template_names(env: ImmutableSandboxedEnvironment) -> list[str]:
    import time

    now = time.monotonic()
    hit = _listings.get(id(env))
    if hit is not None and hit[1] is env and now - hit[0] < LISTING_TTL:
        return hit[2]
    names = env.list_templates()
    _listings[id(env)] = (now, env, names)
    return names


def list_variants(env: ImmutableSandboxedEnvironment, channel: str, stem: str) -> list[str]:
    names = []
    prefix = f"replies/{channel}/"
    for name in (n for n in _template_names(env) if n.startswith(prefix)):
        m = _TEMPLATE_NAME.match(name.rsplit("/", 1)[-1])
        if m and m.group("stem") == stem:
            names.append(name)
    return sorted(names)


def choose_template(
    env: ImmutableSandboxedEnvironment,
    channel: str,
    category: str | None,
    seed: str,
    kind: str | None = None,
) -> tuple[str, int]:
    """The template (and variant index) for a channel and category; stable per ``seed``.

    A post that is not a complaint (``kind``: praise, resolved, question, other) takes
    ``<kind>[.n].j2`` first when the channel has one (praise is answered as praise
    whatever its category); then ``<category>``, then ``default``.
    """
    stems = [kind] if kind and kind != "complaint" else []
    stems += [category] if category else []
    variants: list[str] = []
    for stem in stems:
        variants = list_variants(env, channel, stem)
        if variants:
            break
    if not variants:
        variants = list_variants(env, channel, "default")
    if not variants:
        raise TemplateError(f"no template for channel {channel!r} (replies/{channel}/default.j2)")
    index = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(variants)
    return variants[index], index


_NOT_A_NAME = {
    "the",
    "official",
    "team",
    "mr",
    "mrs",
    "ms",
    "dr",
    "miss",
    "sir",
    "mx",
    "real",
    "its",
    "i",
    "im",
    "just",
    "not",
    "your",
    "my",
    "a",
    "an",
    "shop",
    "store",
    "news",
    "blog",
    "coach",
    "chef",
    "captain",
    "prof",
    "rev",
    "uncle",
    "aunt",
    "auntie",
    "mom",
    "dad",
}


def first_name(display_name: str | None, handle: str) -> str:
    """A plausible first name from the display name, else the handle (with @ for social)."""
    if display_name:
        token = re.split(r"[\s|·•,/]+", display_name.strip())[0] if display_name.strip() else ""
        token = token.strip(".-_'\"")
        plausible = (
            2 <= len(token) <= 20
            and re.fullmatch(r"[^\W\d_]+(?:[-'][^\W\d_]+)?", token) is not None
            and token.lower() not in _NOT_A_NAME
            and not (token.isupper() and len(token) > 3)  # "JOHN" ok-ish, "DEALS" not
        )
        if plausible:
            return token[0].upper() + token[1:]
    return handle


def _plain_name(handle: str) -> str:
    """A handle that cannot be @mentioned, as a name that mentions nobody (``joe @x`` → joe)."""
    words = handle.replace("＠", "@").replace("@", " ").split()
    return words[0] if words else ""


def humanize_ago(then: datetime, now: datetime) -> str:
    delta = now - then
    if delta < timedelta(minutes=2):
        return "just now"
    if delta < timedelta(hours=1):
        return f"{int(delta.total_seconds() // 60)} minutes ago"
    if delta < timedelta(hours=2):
        return "an hour ago"
    if delta < timedelta(days=1):
        return f"{int(delta.total_seconds() // 3600)} hours ago"
    if delta < timedelta(days=2):
        return "yesterday"
    return f"{delta.days} days ago"


def render(
    templates_dir: str | Path | None,
    channel: str,
    category: str | None,
    context: dict[str, Any],
    seed: str,
) -> RenderedDraft:
    """Render the reply for ``channel``/``category`` with ``context``.

    A context from :func:`draft_context` carries shorter versions of its parts
    (``shorter``); the first rendering that fits the channel's length (X weighted)
    is the draft.
    """
    env = make_environment(str(templates_dir) if templates_dir else None)
    kind = context.get("kind") if isinstance(context.get("kind"), str) else None
    name, variant = choose_template(env, channel, category, seed, kind)
    draft = None
    for attempt in chain([context], context.get("shorter", [])):  # shorter ones when needed
        draft = _render_one(env, name, variant, channel, attempt)
        if fits_channel(channel, draft.text):
            return draft
    assert draft is not None
    return draft


def _render_one(
    env: ImmutableSandboxedEnvironment,
    name: str,
    variant: int,
    channel: str,
    context: dict[str, Any],
) -> RenderedDraft:
    try:
        template = env.get_template(name)
        text = template.render(**context)
    except JinjaTemplateError as exc:
        raise TemplateError(f"{name}: {exc}") from exc
    subject = None
    text = text.lstrip()
    if text.startswith("Subject:"):  # email templates start with a "Subject: …" line
        first, _, text = text.partition("\n")
        subject = first.removeprefix("Subject:").strip()
    # empty parts leave runs of spaces and blank paragraphs behind
    text = "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return RenderedDraft(
        channel=channel, template=name, variant=variant, text=text, subject=subject
    )


#: how replies name each problem ("I'm so sorry {{ problem }}")
PROBLEM_PHRASES: dict[str, str] = {
    "delivery": "your order hasn't reached you",
    "damaged_or_defective": "what you received isn't up to standard",
    "wrong_item_or_size": "what you received isn't what you ordered",
    "returns_and_refunds": "your return and refund have been such a hassle",
    "billing": "there's a problem with your bill",
    "account_or_login": "your account has been giving you trouble",
    "app_or_website": "our site got in your way",
    "service_outage": "our service let you down",
    "rude_or_slow_service": "our team let you down",
    "product_or_policy": "we haven't got this right for you",
    "travel_disruption": "your trip has been disrupted",
    "praise": "",
    "other": "things haven't gone right",
}


def draft_context(
    *,
    brand_name: str,
    brand_voice: str,
    brand_handle: str | None,
    handle: str,
    display_name: str | None,
    channel: str,
    category: str | None,
    circumstances: tuple[str, ...] | list[str],
    post_text: str,
    published_at: datetime,
    now: datetime,
    agent_name: str,
    signature: str,
    offer: dict[str, Any] | None = None,
    products: list[str] | None = None,
    order: str | None = None,
    brand_terms: list[str] | None = None,
    address_known: bool = False,
    earlier_cases: int = 0,
    understanding: Understanding | None = None,
    signoff: str = "– {agent_first}",
    gesture: str = "",
    seed: str = "",
) -> dict[str, Any]:
    """Everything a reply template may use (every key is always present).

    ``products`` and ``order`` are taken from ``post_text`` when not given
    (:mod:`listener.personalize`).  ``offer`` is the attached gesture as
    ``{"key", "kind", "description", "code", "physical", "coupon"}``; a
    physical gift with no known address sets ``address_request``.

    The reply's sentences come composed (:mod:`listener.composing`) from what
    the post says (``understanding``, read from ``post_text`` when not given):
    ``greeting``, ``ack``, ``circumstance_sentence``, ``gesture_sentence``,
    ``address_line``, ``question``, ``closing``, ``signoff`` and ``body`` (all of
    them in order); ``shorter`` holds the same context with shorter parts, which
    :func:`render` uses when the channel's length needs it.
    """
    from listener.composing import agent_first, compose
    from listener.personalize import brand_free_products, extract_order
    from listener.understanding import understand

    # address the author the way the channel can (listener.cases.sending): X reads
    # "@priya.s" as the account "priya", someone else, so such a handle gets no @mention
    at_handle = address(channel, handle)
    if products is None:
        products = brand_free_products(post_text, [brand_name, *(brand_terms or [])])
    if order is None:
        order = extract_order(post_text)
    product = products[0] if products else ""
    offer_ctx = None
    if offer is not None:
        offer_ctx = {
            "key": offer.get("key", ""),
            "kind": offer.get("kind", ""),
            "description": offer.get("description", ""),
            "code": offer.get("code") or "",
            "physical": bool(offer.get("physical", False)),
            "coupon": bool(offer.get("coupon", False)),
        }
    if understanding is None:
        understanding = understand(post_text, category=category, brand_terms=brand_terms)
    if circumstances and set(circumstances) != set(understanding.circumstances):
        # the case's circumstances (all its posts', read in context) are what we know
        understanding = replace(understanding, circumstances=tuple(circumstances))
    name = first_name(display_name, at_handle or _plain_name(handle))

    def parts_at(level: int) -> dict[str, Any]:
        parts = compose(
            understanding,
            post=post_text,
            category=category,
            name=name,
            handle=at_handle or _plain_name(handle),
            products=list(products),
            order=order or "",
            offer=offer_ctx,
            address_known=address_known,
            agent=agent_name,
            brand=brand_name,
            signoff=signoff,
            seed=seed or post_text,
            level=level,
            channel=channel,
            brand_handles=tuple(
                t for t in [brand_handle or "", *(brand_terms or [])] if t.startswith("@")
            ),
        )
        return {
            "greeting": parts.greeting,
            "opening": parts.opening,
            "ack": parts.ack,
            "circumstance_sentence": parts.circumstance,
            "gesture_sentence": parts.gesture_sentence,
            "address_line": parts.address_request,
            "question": parts.question,
            "closing": parts.closing,
            "signoff": parts.signoff,
            "body": parts.body(),
        }

    base = {
        "kind": understanding.kind,
        "severity": understanding.severity,
        "specifics": list(understanding.specifics),
        "gesture": gesture,
        "product": product,
        "order": order or "",
        "item": f"your {product}" if product else "your order",
        "offer_text": offer_ctx["description"] if offer_ctx else "",
        "address_request": bool(offer_ctx and offer_ctx["physical"] and not address_known),
        "earlier_cases": earlier_cases,
        "repeat": earlier_cases > 0,
        "brand": brand_name,
        "brand_handle": brand_handle or "",
        "voice": brand_voice,
        "handle": at_handle,
        "name": name,
        "channel": channel,
        "category": category or "other",
        "problem": PROBLEM_PHRASES.get(category or "other", PROBLEM_PHRASES["other"]),
        "circumstances": list(circumstances),
        "post": post_text,
        "posted_ago": humanize_ago(published_at, now),
        "agent": agent_name,
        "agent_first": agent_first(agent_name),
        "signature": signature,
        "offer": offer_ctx,
        "products": list(products),
    }
    return {**base, **parts_at(0), "shorter": Shorter(base, parts_at)}


class Shorter(Sequence[dict[str, Any]]):
    """The context with shorter parts, levels 1–3, each composed the first time it is
    asked for (most replies fit at level 0: their shorter parts are never needed)."""

    def __init__(self, base: dict[str, Any], parts_at: Callable[[int], dict[str, Any]]) -> None:
        self._base, self._parts_at = base, parts_at
        self._done: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return 3

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(3))]
        i = range(3)[index]  # IndexError past the end, as a list would
        if i not in self._done:
            self._done[i] = {**self._base, **self._parts_at(i + 1)}
        return self._done[i]
