"""``listener templates check``: every reply template rendered against sample contexts.

A problem is an undefined variable or other render error, an email without a
subject, or a reply the sending rules (:mod:`listener.cases.sending`, the
guard approval and the outbox run) would refuse.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import TYPE_CHECKING, Any

from listener.cases.sending import Reply, Rules, violations

if TYPE_CHECKING:
    from listener.config import Settings

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

    from listener.drafting import draft_context, fits_channel, make_environment
    from listener.offers import describe, new_coupon_code

    custom = settings.resolve_path(settings.recovery.templates_dir)
    folder = str(custom) if custom else "the packaged templates"
    env = make_environment(str(custom) if custom else None)
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
    rules = Rules.from_settings(settings)
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
                                # as drafting does: the first of the shorter versions that fits
                                for attempt in chain([ctx], ctx.get("shorter", [])):
                                    text, subject = _finish(template.render(**attempt))
                                    if fits_channel(channel, text):
                                        break
                            except JinjaTemplateError as exc:
                                problems.setdefault(name, f"{where}: {type(exc).__name__}: {exc}")
                                continue
                            if channel == "email" and not subject:
                                problems.setdefault(name, f"{where}: email without a Subject")
                            bad = violations(
                                Reply(
                                    text=text,
                                    channel=channel,
                                    author_handle=LONG_HANDLE,
                                    recipient="customer@example.com",
                                    in_reply_to="1",
                                ),
                                rules,
                            )
                            if bad:
                                problems.setdefault(name, f"{where}: {'; '.join(bad)}")
    return renders, sorted(problems.values())
