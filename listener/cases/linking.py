"""One customer across sources: link their accounts, merge their cases, suggest links.

Pure: :func:`keys_of` finds strong evidence in a post (order numbers, e-mail
addresses, other accounts named or linked); :func:`evidence` says what two
cases share, if they are close enough in time.  Suggestions are shown with
their evidence and never merged silently: an agent accepts or rejects them.

The use-cases (one each, shared by the CLI, the web pages and the API):

* :func:`merge_cases` — "same person": the other case's posts join this one,
  the two authors become one customer (``authors.customer_id``) so their next
  posts join the same open case, and the other case is closed as ``merged``;
  one ``case.merged`` event on this case and one ``case.merged_into`` on the
  other.  Runs in the case unit of work (actor, permission, claim, state);
  two agents merging the same cases at once: one wins, the other gets a 409;
* :func:`accept_suggestion` / :func:`reject_suggestion`;
* :func:`suggest_links` — called by the pipeline when a case opens: finds
  workable cases of other authors within ``linking.window`` sharing evidence
  (indexed prefilter, then the pure check) and stores the suggestions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from listener import models as m
from listener.cases.batch import (
    add_link_keys,
    add_numbered,
    batch_of,
    first_post_of,
    record_event,
    write_pending,
)
from listener.cases.status import (
    LIVE_OFFERS,
    WORKABLE,
    Action,
    CaseStatus,
    DraftStatus,
    OfferStatus,
)
from listener.clock import utcnow
from listener.errors import Conflict, ListenerError, NotFound

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

SYSTEM_ACTOR = "listener"


class SuggestionStatus:
    SUGGESTED = "suggested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


# ---------------------------------------------------------------------------
# the pure part: evidence

# "order #88231", "order number 123-4567890-1234567", "booking ref: AB12345", "#88231"
_ORDER = re.compile(
    r"(?:\b(?:order|ord|booking|reservation|confirmation|ticket|case|ref(?:erence)?|invoice)"
    r"(?:\s*(?:no\.?|num(?:ber)?|id|code|ref))?\s*[:#]?\s*#?\s*([A-Z0-9][A-Z0-9-]{3,30}[A-Z0-9])"
    r"|(?<![\w&])#(\d{4,20})\b)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,200}\.[A-Za-z]{2,24})\b")
# @maya@mastodon.social, @maya_k
_ACCOUNT = re.compile(r"(?<![\w@/])@([A-Za-z0-9_.]{2,30}(?:@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)?)")
# x.com/maya_k, twitter.com/maya_k, bsky.app/profile/maya.bsky.social, mastodon.social/@maya
_PROFILE = re.compile(
    r"\b(?:(?:x|twitter)\.com/([A-Za-z0-9_]{2,30})"
    r"|bsky\.app/profile/([A-Za-z0-9.\-]{3,100})"
    r"|([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)/@([A-Za-z0-9_]{2,30}))",
    re.IGNORECASE,
)


_FOUR_DIGITS = re.compile(r"\d\D*\d\D*\d\D*\d")


def _order_value(raw: str) -> str | None:
    value = raw.upper().replace("-", "")
    return value if sum(c.isdigit() for c in value) >= 4 else None


def keys_of(text: str) -> frozenset[tuple[str, str]]:
    """Strong evidence in a post: ``("order", "88231")``, ``("email", "a@b.com")``,
    ``("account", "maya@mastodon.social")`` (another account named or linked).

    Kept for the last few thousand short texts: a batch asks for each of its posts twice
    (the keys it may look up, then the keys of the case the post opens or joins)."""
    text = text or ""
    return _kept_keys_of(text) if len(text) <= _KEPT_CHARS else _keys_of(text)


#: texts up to this long have their keys kept (a few MB at most for the cache)
_KEPT_CHARS = 1000


def _keys_of(text: str) -> frozenset[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    # each kind's pattern only where it can match (most posts name none): an order number
    # has four digits or more, an address or account an "@", a profile link a "/"
    if _FOUR_DIGITS.search(text):
        for found in _ORDER.finditer(text):
            value = _order_value(found.group(1) or found.group(2))
            if value:
                out.add(("order", value))
    if "@" in text:
        out |= {("email", e.lower()) for e in _EMAIL.findall(text)}
        for found in _ACCOUNT.finditer(text):  # not inside an e-mail address (the lookbehind)
            out.add(("account", found.group(1).rstrip(".").lower()))
    if "/" in text:
        for found in _PROFILE.finditer(text):
            x, bsky, instance, local = found.groups()
            if x:
                out.add(("account", x.lower()))
            elif bsky:
                out.add(("account", bsky.lower()))
            elif instance and local:
                out.add(("account", f"{local}@{instance}".lower()))
                out.add(("account", local.lower()))
    return frozenset(out)


_kept_keys_of = lru_cache(maxsize=4096)(_keys_of)


@dataclass(frozen=True)
class Side:
    """One case, as the evidence check sees it."""

    case_id: int
    platform: str
    handle: str
    email: str | None
    texts: tuple[str, ...]  #: its posts (and the author's profile link)
    times: tuple[datetime, ...]


@dataclass(frozen=True)
class Evidence:
    kind: str  #: order | email | account
    value: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value, "detail": self.detail}


def _handles(side: Side) -> set[str]:
    handle = side.handle.strip().lstrip("@").lower()
    return {handle} if len(handle) >= 2 else set()


def evidence(
    a: Side, b: Side, *, window: timedelta, own: Iterable[str] = (), own_domains: Iterable[str] = ()
) -> list[Evidence]:
    """What ``a`` and ``b`` share that only one person would (none: not within
    ``window`` of each other).  ``own``: the brand's handles and ``own_domains``
    its domains, which every customer names and so prove nothing."""
    if a.case_id == b.case_id:
        return []
    if not a.times or not b.times:
        return []
    gap = min(abs(x - y) for x in a.times for y in b.times)
    if gap > window:
        return []
    mine = {h.strip().lstrip("@").lower() for h in own}
    domains = {d.lower() for d in own_domains if d}
    ka = set().union(*(keys_of(t) for t in a.texts)) if a.texts else set()
    kb = set().union(*(keys_of(t) for t in b.texts)) if b.texts else set()
    if a.email:
        ka.add(("email", a.email.lower()))
    if b.email:
        kb.add(("email", b.email.lower()))
    out: list[Evidence] = []
    for kind, value in sorted(ka & kb):
        if kind == "order":
            out.append(Evidence("order", value, f"order {value} in both"))
        elif kind == "email" and not any(
            value.endswith("@" + d) or value.endswith("." + d) for d in domains
        ):
            out.append(Evidence("email", value, f"the e-mail address {value} in both"))
    for this, that in ((a, b), (b, a)):
        named = {v for k, v in (ka if this is a else kb) if k == "account"} - mine
        for handle in sorted(named & (_handles(that) - mine)):
            out.append(
                Evidence(
                    "account",
                    handle,
                    f"case {this.case_id} names the {that.platform} account {handle}",
                )
            )
    return out


# ---------------------------------------------------------------------------
# customers (linked author accounts)


def customer_ids(session: Session, author: m.Author) -> list[int]:
    """Every author account of the person ``author`` is (just it, when not linked)."""
    if author.customer_id is None:
        return [author.id]
    reads = batch_of(session)
    known = reads.customer_ids(author) if reads is not None else None
    if known is not None:
        return known
    ids = list(
        session.scalars(select(m.Author.id).where(m.Author.customer_id == author.customer_id))
    )
    return sorted({author.id, *ids})


def link_authors(session: Session, author_ids: Iterable[int]) -> list[int]:
    """Make the accounts one customer (and everyone already linked to any of them)."""
    ids = set(author_ids)
    rows = list(session.scalars(select(m.Author).where(m.Author.id.in_(ids))))
    groups = {r.customer_id for r in rows if r.customer_id is not None}
    if groups:
        rows += list(
            session.scalars(
                select(m.Author).where(m.Author.customer_id.in_(groups), m.Author.id.not_in(ids))
            )
        )
    everyone = {r.id for r in rows}
    target = min(everyone | groups)
    for r in rows:
        r.customer_id = target
    return sorted(everyone)


# ---------------------------------------------------------------------------
# suggestions


def profile_texts(raw: Any) -> list[str]:
    """What a post's raw payload says about its author's other accounts: a Mastodon bio
    and profile fields ("X: x.com/maya_k"), a Bluesky post's links."""
    if not isinstance(raw, dict):
        return []
    out: list[str] = []
    account = raw.get("account")
    if isinstance(account, dict):
        if isinstance(account.get("note"), str):
            out.append(account["note"][:2000])
        for f in account.get("fields") or []:
            if isinstance(f, dict) and isinstance(f.get("value"), str):
                out.append(f["value"][:500])
    record = raw.get("record")
    if isinstance(record, dict):
        out += [str(link)[:500] for link in (record.get("links") or [])[:20]]
    return out


def _side(case: m.Case, mentions: Sequence[m.Mention] | None = None) -> Side:
    mentions = case.mentions if mentions is None else mentions
    texts = [x.full_text or x.text for x in mentions]
    for x in mentions[:20]:
        texts += profile_texts(x.raw)
    author = case.author
    if author is not None and author.url:
        texts.append(author.url)
    return Side(
        case_id=case.id,
        platform=author.platform if author else "",
        handle=author.handle if author else "",
        email=author.email if author else None,
        texts=tuple(texts),
        times=tuple(x.published_at for x in mentions),
    )


def _own(settings: Settings) -> tuple[list[str], list[str]]:
    brand = settings.brand
    own = [*brand.handles, *(h for hs in brand.accounts.values() for h in hs)]
    domains = [t.lower() for t in brand.match_terms if "." in t and " " not in t]
    if brand.website:
        host = re.sub(r"^https?://(www\.)?", "", brand.website).split("/", 1)[0]
        domains.append(host.lower())
    return own, domains


#: at most this many keys of each kind per case (hostile posts list thousands of numbers)
MAX_KEYS_PER_KIND = 16
#: evidence kinds stored per case, and what each one is looked up against in other cases
_LOOKUP: dict[str, str] = {"order": "order", "email": "email", "account": "self", "self": "account"}


def case_keys(
    side: Side, own: Iterable[str] = (), own_domains: Iterable[str] = ()
) -> set[tuple[str, str]]:
    """The keys a case is indexed by: its evidence, and its author's own handle (``self``),
    without the brand's handles and addresses (everyone names those)."""
    keys: set[tuple[str, str]] = set()
    for text in side.texts:
        keys |= keys_of(text)
    if side.email:
        keys.add(("email", side.email.lower()))
    keys |= {("self", h) for h in _handles(side)}
    return bounded_keys(keys, own, own_domains)


def bounded_keys(
    keys: Iterable[tuple[str, str]], own: Iterable[str] = (), own_domains: Iterable[str] = ()
) -> set[tuple[str, str]]:
    """``keys`` without the brand's own, at most :data:`MAX_KEYS_PER_KIND` of each kind
    (the first in order: so the bound of a union is the bound of the bounded parts')."""
    mine = {h.strip().lstrip("@").lower() for h in own}
    domains = {d.lower() for d in own_domains if d}
    kept = sorted(
        (k, v[:320])
        for k, v in keys
        if not (k in ("account", "self") and v in mine)
        and not (k == "email" and any(v.endswith("@" + d) or v.endswith("." + d) for d in domains))
    )
    # a post stuffed with numbers or handles is not more evidence: a bounded set per kind
    per_kind: dict[str, int] = {}
    out: set[tuple[str, str]] = set()
    for k, v in kept:
        per_kind[k] = per_kind.get(k, 0) + 1
        if per_kind[k] <= MAX_KEYS_PER_KIND:
            out.add((k, v))
    return out


def index_case(
    session: Session,
    case_id: int,
    keys: Iterable[tuple[str, str]],
    *,
    have: set[tuple[str, str]] | None = None,
    fresh: bool = False,
) -> list[tuple[str, str]]:
    """Store the case's keys (those it has not got yet); returns the ones added.

    ``have``: the keys the case is known to have (not read again); ``fresh``: the case
    was opened in this transaction, so no other can have indexed it (no savepoint)."""
    if have is None:
        write_pending(session)
        have = {
            (kind, value)
            for kind, value in session.execute(
                select(m.LinkKey.kind, m.LinkKey.value).where(m.LinkKey.case_id == case_id)
            )
        }
    missing = sorted(set(keys) - have)
    if not missing:
        return []
    if fresh:
        add_link_keys(session, case_id, missing)
        return missing
    write_pending(session)
    try:
        with session.begin_nested():
            session.add_all(m.LinkKey(case_id=case_id, kind=k, value=v) for k, v in missing)
            session.flush()
    except IntegrityError:  # another transaction indexed some of them: add the rest
        for kind, value in missing:
            try:
                with session.begin_nested():
                    session.add(m.LinkKey(case_id=case_id, kind=kind, value=value))
                    session.flush()
            except IntegrityError:
                continue
    return missing


def lookup_keys(
    settings: Settings, posts: Iterable[m.Mention], authors: Iterable[m.Author]
) -> set[tuple[str, str]]:
    """Every index entry :func:`suggest_links` may look up for a case made of some of
    ``posts`` by one of ``authors`` (a superset: each post's and each author's keys,
    looked up as :data:`_LOOKUP` says; the pipeline's batch fetches them at once)."""
    own, domains = _own(settings)
    keys: set[tuple[str, str]] = set()
    for x in posts:
        texts = (x.full_text or x.text, *profile_texts(x.raw))
        keys |= case_keys(Side(0, "", "", None, texts, ()), own, domains)
    for a in authors:
        texts = (a.url,) if a.url else ()
        keys |= case_keys(Side(0, a.platform, a.handle, a.email, texts, ()), own, domains)
    return {(_LOOKUP[k], v) for k, v in keys if k in _LOOKUP}


def suggest_links(
    session: Session,
    settings: Settings,
    case: m.Case,
    now: datetime,
    limit: int = 50,
    *,
    post: m.Mention | None = None,
) -> list[m.LinkSuggestion]:
    """Index ``case``'s evidence and store suggestions: workable cases of other people
    within the window that share strong evidence with it (never merged: an agent decides).

    Equal keys are found through the ``link_keys`` index; the pure :func:`evidence`
    then confirms each candidate.  ``post``: the post that just joined the case (its
    other posts are indexed already, so only this one is read for keys, and the case's
    posts are loaded only when a candidate is to be confirmed)."""
    window = settings.linking.window
    if not settings.linking.suggest:
        return []
    # the pipeline's batch (listener.cases.batch) knows the posts and keys of the cases it
    # opened, and the index entries its posts may look up: no flush for reads it answers
    reads = batch_of(session)
    if reads is None:
        session.flush()
    known = reads.posts_of(case.id) if reads is not None else None
    own, domains = _own(settings)
    author = case.author
    mine: Side | None = None
    if known is None and post is not None:
        # a post joined a case from before: the case's keys are the ones indexed already
        # and this post's, bounded again (a long-running case is not read post by post
        # for every new one)
        # (a batch reads them once per case: it keeps them, and the first post's time)
        kept = reads.old_keys(case.id) if reads is not None else None
        if kept is None:
            write_pending(session)
            have = {
                (kind, value)
                for kind, value in session.execute(
                    select(m.LinkKey.kind, m.LinkKey.value).where(m.LinkKey.case_id == case.id)
                )
            }
        else:
            have = kept
        texts = [post.full_text or post.text or "", *profile_texts(post.raw)]
        if author is not None and author.url:
            texts.append(author.url)
        joined = Side(
            case_id=case.id,
            platform=author.platform if author else "",
            handle=author.handle if author else "",
            email=author.email if author else None,
            texts=tuple(texts),
            times=(post.published_at,),
        )
        keys = bounded_keys(have | case_keys(joined), own, domains)
        added = index_case(session, case.id, keys, have=have)
        first = first_post_of(session, case.id)
        if reads is not None:
            reads.remember_keys(case.id, have | set(added))
        earliest = min(first, post.published_at) if first is not None else post.published_at
    else:
        if known is not None:
            posts = known
        else:
            posts = list(session.scalars(select(m.Mention).where(m.Mention.case_id == case.id)))
        if not posts:
            return []
        mine = _side(case, posts)
        keys = case_keys(mine, own, domains)
        earliest = min(mine.times)
        if reads is not None and known is not None:
            added = index_case(
                session,
                case.id,
                keys,
                have=reads.keys_of(case.id),
                fresh=reads.opened_here(case.id),
            )
        else:
            added = index_case(session, case.id, keys)
    if reads is not None:
        reads.indexed(case.id, added, case)
    wanted = [(_LOOKUP[k], v) for k, v in keys if k in _LOOKUP]
    if not wanted:
        return []
    group = customer_ids(session, author) if author is not None else [case.author_id]
    since = earliest - window
    ids = (
        reads.link_candidates(case.id, wanted, since=since, group=group, limit=limit)
        if reads is not None
        else None
    )
    if ids is None and reads is not None:
        # keys the batch did not look up (a case from before it, indexed then): fetched
        # now, and known to the batch's later posts
        write_pending(session)
        reads.fetch_link_keys(session, wanted)
        ids = reads.link_candidates(case.id, wanted, since=since, group=group, limit=limit)
    if ids is None:
        write_pending(session)
        ids = list(
            session.scalars(
                select(m.LinkKey.case_id)
                .join(m.Case, m.Case.id == m.LinkKey.case_id)
                .where(
                    or_(*(and_(m.LinkKey.kind == k, m.LinkKey.value == v) for k, v in wanted)),
                    m.LinkKey.case_id != case.id,
                    m.Case.status.in_(WORKABLE),
                    m.Case.last_mention_at >= since,
                    m.Case.author_id.not_in(group),
                )
                .distinct()
                .limit(limit)
            )
        )
    if not ids:
        return []
    if mine is None:  # a candidate to confirm: now the case's posts are needed
        posts = list(session.scalars(select(m.Mention).where(m.Mention.case_id == case.id)))
        mine = _side(case, posts)
    # cases the batch opened: their posts are known, and no other transaction can see them
    opened = reads.opened_cases(ids) if reads is not None and known is not None else None
    sides: list[Side] = []
    if opened is not None and reads is not None:
        sides = [_side(other, reads.posts_of(other.id)) for other in opened]
    else:
        # cases from before: their posts loaded once a batch (kept until one changes)
        known_sides: dict[int, Side | None] = (
            {i: reads.side(i) for i in ids} if reads is not None else {}
        )
        wanted_ids = [i for i in ids if known_sides.get(i) is None]
        if wanted_ids:
            for other in (
                session.scalars(
                    select(m.Case)
                    .where(m.Case.id.in_(wanted_ids))
                    .options(selectinload(m.Case.mentions))
                )
                .unique()
                .all()
            ):
                known_sides[other.id] = side = _side(other)
                if reads is not None:
                    reads.keep_side(other.id, side)
        sides = [x for _, x in sorted(known_sides.items()) if x is not None]
    made: list[m.LinkSuggestion] = []
    for other_side in sides:
        found = evidence(mine, other_side, window=window, own=own, own_domains=domains)
        if not found:
            continue
        lo, hi = sorted((case.id, other_side.case_id))
        row = m.LinkSuggestion(
            case_id=lo,
            other_case_id=hi,
            evidence=[e.as_dict() for e in found[:10]],
            status=SuggestionStatus.SUGGESTED,
            created_at=now,
        )
        if opened is not None and reads is not None:
            # both opened by this batch: the pair cannot be stored yet, but by this batch
            if not reads.suggest((lo, hi)):
                continue
            add_numbered(session, row)  # inserted with the batch
        else:
            exists = session.scalars(
                select(m.LinkSuggestion.id).where(
                    m.LinkSuggestion.case_id == lo, m.LinkSuggestion.other_case_id == hi
                )
            ).first()
            if exists is not None:
                continue
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
            except IntegrityError:  # suggested at the same moment by another poll
                continue
        record_event(
            session,
            actor=SYSTEM_ACTOR,
            kind="link.suggested",
            case_id=case.id,
            at=now,
            data={
                "suggestion_id": row.id,
                "other_case_id": other_side.case_id,
                "evidence": row.evidence,
            },
        )
        made.append(row)
    return made


def suggestion_dict(row: m.LinkSuggestion, case_id: int | None = None) -> dict[str, Any]:
    other = row.other_case_id if case_id == row.case_id else row.case_id
    return {
        "id": row.id,
        "case_id": row.case_id,
        "other_case_id": row.other_case_id,
        "other": other if case_id is not None else None,
        "evidence": list(row.evidence or []),
        "status": row.status,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
    }


def suggestions_for(
    session: Session, case_id: int | None = None, *, status: str | None = SuggestionStatus.SUGGESTED
) -> list[dict[str, Any]]:
    """Link suggestions (of one case, or all), with each other case's author and platform."""
    stmt = select(m.LinkSuggestion).order_by(m.LinkSuggestion.id)
    if case_id is not None:
        stmt = stmt.where(
            or_(m.LinkSuggestion.case_id == case_id, m.LinkSuggestion.other_case_id == case_id)
        )
    if status is not None:
        stmt = stmt.where(m.LinkSuggestion.status == status)
    rows = list(session.scalars(stmt.limit(500)))
    ids = {r.case_id for r in rows} | {r.other_case_id for r in rows}
    who: dict[int, tuple[str, str, str]] = {}
    if ids:
        for cid, handle, platform, status_ in session.execute(
            select(m.Case.id, m.Author.handle, m.Author.platform, m.Case.status)
            .join(m.Author, m.Author.id == m.Case.author_id)
            .where(m.Case.id.in_(ids))
        ):
            who[cid] = (handle, platform, status_)
    out = []
    for r in rows:
        d = suggestion_dict(r, case_id)
        for key, cid in (("case", r.case_id), ("other_case", r.other_case_id)):
            handle, platform, st = who.get(cid, ("", "", ""))
            d[f"{key}_author"], d[f"{key}_platform"], d[f"{key}_status"] = handle, platform, st
        out.append(d)
    return out


# ---------------------------------------------------------------------------
# merging


def _live(session: Session, case_id: int) -> m.Case:
    """The case, or the one it was merged into (following the chain)."""
    seen: set[int] = set()
    case = session.get(m.Case, case_id)
    while case is not None and case.merged_into_id is not None and case.id not in seen:
        seen.add(case.id)
        case = session.get(m.Case, case.merged_into_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def merge_cases(
    app: App,
    case_id: int,
    other_id: int,
    by: str,
    *,
    role: str | None = None,
    suggestion_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """ "Same person": ``other_id``'s posts join ``case_id`` (see the module docs)."""
    from listener.cases.work import add_event, case_work, check_claim, lock_case

    if case_id == other_id:
        raise ListenerError(f"case {case_id} cannot be merged into itself")
    with case_work(
        app, case_id, by, Action.MERGE, role=role, now=now, lock_first=(other_id,)
    ) as work:
        session, case, actor = work.session, work.case, work.actor
        other = lock_case(session, other_id)
        if other.status not in WORKABLE:
            into = f" into case {other.merged_into_id}" if other.merged_into_id else ""
            raise Conflict(f"case {other.id} is {other.status}{into}: it cannot be merged")
        check_claim(other, actor)
        suggestion = None
        if suggestion_id is not None:
            suggestion = session.get(m.LinkSuggestion, suggestion_id)
            if suggestion is None:
                raise NotFound(f"no link suggestion {suggestion_id}")
            if suggestion.status != SuggestionStatus.SUGGESTED:
                raise Conflict(f"link suggestion {suggestion_id} is already {suggestion.status}")
            suggestion.status = SuggestionStatus.ACCEPTED
            suggestion.decided_by, suggestion.decided_at = actor.username, work.now
        carried = [
            (kind, value)
            for kind, value in session.execute(
                select(m.LinkKey.kind, m.LinkKey.value).where(m.LinkKey.case_id == other.id)
            )
        ]
        index_case(session, case.id, carried)
        moved = [x.id for x in other.mentions]
        for x in list(other.mentions):
            x.case_id = case.id
        authors = link_authors(
            session, {case.author_id, other.author_id, *(x.author_id for x in other.mentions)}
        )
        case.mention_count = (case.mention_count or 0) + (other.mention_count or 0)
        times = [t for t in (case.last_mention_at, other.last_mention_at) if t is not None]
        case.last_mention_at = max(times) if times else case.last_mention_at
        case.unhappy_score = max(case.unhappy_score or 0.0, other.unhappy_score or 0.0)
        case.circumstances = sorted(set(case.circumstances or []) | set(other.circumstances or []))
        case.priority = max(case.priority or 0, other.priority or 0)
        platform = other.author.platform if other.author else "?"
        note = f"same customer as case {other.id} on {platform} (linked by {actor.username})"
        case.reasons = [*(case.reasons or []), note]
        dues = [d for d in (case.sla_due_at, other.sla_due_at) if d is not None]
        case.sla_due_at = min(dues) if dues else None
        for d in other.drafts:
            if d.status == DraftStatus.CURRENT:
                d.status = DraftStatus.SUPERSEDED
        for o in other.offers:
            if o.status in LIVE_OFFERS:
                o.status, o.updated_at = OfferStatus.DECLINED, work.now
        other.status = CaseStatus.MERGED
        other.merged_into_id = case.id
        other.assignee = other.claimed_at = None
        other.snoozed_until = other.snoozed_by = other.snooze_note = None
        other.updated_at = work.now
        work.record(
            other_case_id=other.id,
            platform=platform,
            posts=moved,
            authors=authors,
            suggestion_id=suggestion_id,
        )
        add_event(
            session,
            other,
            actor.username,
            "case.merged_into",
            work.now,
            into_case_id=case.id,
            posts=moved,
            suggestion_id=suggestion_id,
        )
    return _summary(app, case_id)


def _summary(app: App, case_id: int) -> dict[str, Any]:
    """The queue's JSON object for the case (what every case action returns)."""
    from listener.cases.queue import summary

    with app.sessions() as session:
        item = summary(session, case_id, None)
        if item is None:
            raise NotFound(f"no case {case_id}")
        return item.contract()


def accept_suggestion(
    app: App, suggestion_id: int, by: str, *, role: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Accept a link suggestion: the newer case merges into the older one."""
    with app.sessions() as session:
        row = session.get(m.LinkSuggestion, suggestion_id)
        if row is None:
            raise NotFound(f"no link suggestion {suggestion_id}")
        if row.status != SuggestionStatus.SUGGESTED:
            raise Conflict(f"link suggestion {suggestion_id} is already {row.status}")
        a, b = _live(session, row.case_id).id, _live(session, row.other_case_id).id
    if a == b:
        raise Conflict(f"link suggestion {suggestion_id}: the cases are one case already")
    keep, other = sorted((a, b))
    return merge_cases(app, keep, other, by, role=role, suggestion_id=suggestion_id, now=now)


def reject_suggestion(
    app: App,
    suggestion_id: int,
    by: str,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Reject a link suggestion (it is not suggested again); one ``link.rejected`` event."""
    from listener.cases.work import resolve_actor
    from listener.permissions import require

    now = now or utcnow()
    with app.sessions() as session, session.begin():
        actor = resolve_actor(session, by, role=role)
        require(actor.role, "merge", actor=actor.username)
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                select(m.LinkSuggestion.id)
                .where(m.LinkSuggestion.id == suggestion_id)
                .with_for_update()
            ).first()
        row = session.get(m.LinkSuggestion, suggestion_id)
        if row is None:
            raise NotFound(f"no link suggestion {suggestion_id}")
        if row.status != SuggestionStatus.SUGGESTED:
            raise Conflict(f"link suggestion {suggestion_id} is already {row.status}")
        row.status = SuggestionStatus.REJECTED
        row.decided_by, row.decided_at = actor.username, now
        session.add(
            m.Event(
                actor=actor.username,
                kind="link.rejected",
                case_id=row.case_id,
                at=now,
                data={"suggestion_id": row.id, "other_case_id": row.other_case_id},
            )
        )
        session.flush()
        return suggestion_dict(row)


def platforms_of(mentions: Sequence[m.Mention]) -> list[str]:
    """Every platform a case's posts came from, in order of first appearance."""
    seen: dict[str, None] = {}
    for x in mentions:
        platform = x.author.platform if x.author else None
        if platform:
            seen.setdefault(platform, None)
    return list(seen)
