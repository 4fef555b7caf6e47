"""Follow the conversation: the brand's answers, and the customer's next posts.

:func:`decide` is pure: given what is known about a new post and the case it
may belong to, it says what the post is to that case, with reasons:

* ``brand_answer`` / ``brand_post``: one of the brand's own accounts posted
  (``brand.handles``, ``brand.accounts``) — an answer in a case's thread, or
  the brand's own post; never a complaint, never a case;
* ``join``: the customer wrote again before we answered (a reply in the
  thread, or the same customer soon after): it joins the case and an
  unedited draft is written again to answer it;
* ``recovered``: after our reply the customer says it is sorted ("all good
  now, thanks") or is plainly happy;
* ``still_unhappy``: after our reply the customer is still unhappy: a sent or
  resolved case comes back to the queue with the reason;
* ``acknowledged``: after our reply, neither ("DM sent", "ok");
* ``new``: not a follow-up of any case.

:func:`find_case` (reads) and :func:`apply` (writes) are the use-case's I/O,
called by the pipeline's one hook (``_triage_mention``); nothing here imports
the pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from listener import models as m
from listener.cases.batch import record_event
from listener.cases.status import CaseStatus, DraftStatus, OfferStatus, unclaimed_status

if TYPE_CHECKING:
    from listener.config import Settings

SYSTEM_ACTOR = "listener"


class Follow(StrEnum):
    """What a post is to a case (see the module docs)."""

    BRAND_ANSWER = "brand_answer"
    BRAND_POST = "brand_post"
    JOIN = "join"
    RECOVERED = "recovered"
    STILL_UNHAPPY = "still_unhappy"
    ACKNOWLEDGED = "acknowledged"
    NEW = "new"


#: a case in these states may be joined by a reply in its thread (rejected and
#: merged cases never: a fresh complaint there gets a fresh look)
THREAD_JOINABLE: frozenset[str] = frozenset(
    {
        CaseStatus.NEW,
        CaseStatus.DRAFTED,
        CaseStatus.CLAIMED,
        CaseStatus.APPROVED,
        CaseStatus.SENT,
        CaseStatus.RESOLVED,
    }
)
#: closed cases a still unhappy customer brings back to the queue
COMES_BACK_FROM: frozenset[str] = frozenset({CaseStatus.SENT, CaseStatus.RESOLVED})

# "all good now, thanks", "it's sorted", "problem solved", "works now", "already fixed"
_RESOLVED = re.compile(
    r"\b(?:all (?:good|sorted|fixed|set|working)(?: now)?"
    r"|(?:it'?s|it is|that'?s|is|all|now|been|got it|already|finally) (?:all )?"
    r"(?:sorted|fixed|resolved|working|solved)"
    r"|(?:problem|issue)(?:'s| is| has been)? (?:solved|resolved|fixed|sorted)"
    r"|works? (?:fine |again |perfectly )?now|working (?:again|now|fine)"
    r"|(?:just |finally )?(?:arrived|got here|turned up)(?: today| now)?[,.!]"
    r"|(?:i'?ve |i have )?got (?:my|the) (?:package|parcel|order|refund|money)"
    r"|came back on|back (?:up|on) (?:and|now)|(?:i'?m|i am) happy with"
    r"|managed to|finally got (?:someone|it|through)|sorted it|fixed it|got it sorted"
    r"|(?:that|this) (?:helped|worked)|it'?s fine)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:not|never|isn'?t|wasn'?t|hasn'?t|haven'?t|didn'?t|doesn'?t|no longer|still|"
    r"when|until|once|if|hope|wish)\s+(?:\w+\s+){0,2}$",
    re.IGNORECASE,
)
_THANKS = re.compile(
    r"\b(?:thanks?|thank you|thankx|thx|ty|cheers|appreciated?|great help|much obliged)\b",
    re.IGNORECASE,
)


def says_resolved(text: str) -> bool:
    """Whether the post says the problem is sorted ("all good now, thanks").

    A phrase after a negation ("still not working now", "never arrived.") does
    not count.
    """
    text = (text or "").replace("\u2019", "'")
    for found in _RESOLVED.finditer(text):
        before = text[max(0, found.start() - 40) : found.start()]
        if not _NEGATED.search(before):
            return True
    return False


_BUT = re.compile(
    r"\b(?:but|still|however|yet|won'?t|wont|can'?t|cant|not|no|never|again|please|"
    r"suck|useless|worst|morons?|in advance|will (?:do|try|check|take|dm|send|look|call)|"
    r"look(?:ing)? forward|fingers crossed|dm'?d?|direct message|call me|get back|update)\b|\?",
    re.IGNORECASE,
)


def thanks(text: str) -> bool:
    """A plain thank-you ("Great, thank you"), not a sarcastic or a "thanks, but…" one."""
    return bool(_THANKS.search(text or "")) and not _BUT.search(text or "")


@dataclass(frozen=True)
class PostFacts:
    """What the decision needs of the new post."""

    published_at: datetime
    unhappy: bool
    label: str  #: the model's (negative | neutral | positive)
    text: str
    by_brand: bool = False  #: one of the brand's own accounts wrote it
    same_customer: bool = True  #: the case's customer (or a linked account of theirs)
    in_thread: bool = False  #: it replies in the case's thread
    resolved: bool | None = None  #: says it is sorted (None: ask :func:`says_resolved`)
    happy: bool = False  #: the reading of the post (listener.understanding) says praise


@dataclass(frozen=True)
class CaseFacts:
    """What the decision needs of the case the post may belong to."""

    case_id: int
    status: str
    replied_at: datetime | None  #: our first reply (sent, or the brand's own answer seen)
    last_mention_at: datetime | None


@dataclass(frozen=True)
class Followup:
    """The decision, with the reasons an agent reads."""

    kind: Follow
    case_id: int | None = None
    reasons: list[str] = field(default_factory=list)
    refresh_draft: bool = False  #: write an unedited draft again to answer this post
    back_to_queue: bool = False  #: a sent/resolved case comes back to the queue
    recovered: bool | None = None  #: the case's new ``recovered`` (None: unchanged)
    #: the customer says it is sorted before we answered: no gesture, low priority, and
    #: the refreshed draft is a short "glad it's sorted"
    sorted_before_reply: bool = False
    #: the post itself says it is sorted or that they are happy: not a model's positive
    #: label, nor a bare thanks
    says_sorted: bool = False

    @property
    def joins(self) -> bool:
        """The post joins the case (the brand's answers never do: they are not the customer's)."""
        return self.case_id is not None and self.kind not in (
            Follow.NEW,
            Follow.BRAND_POST,
            Follow.BRAND_ANSWER,
        )


def _excerpt(text: str, n: int = 80) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: n - 1].rstrip() + "…"


def decide(
    post: PostFacts,
    case: CaseFacts | None,
    *,
    repeat_window: timedelta,
    thread_window: timedelta,
) -> Followup:
    """What ``post`` is to ``case`` (see the module docs)."""
    if post.by_brand:
        if case is not None and post.in_thread:
            return Followup(
                Follow.BRAND_ANSWER, case.case_id, ["the brand answered in the case's thread"]
            )
        return Followup(Follow.BRAND_POST, None, ["the brand's own post"])
    if case is None:
        return Followup(Follow.NEW, None, ["no case to follow"])
    if not post.same_customer:
        return Followup(Follow.NEW, None, ["someone else in the thread: their own case"])
    last = case.last_mention_at or post.published_at
    if post.in_thread:
        if case.status not in THREAD_JOINABLE:
            return Followup(Follow.NEW, None, [f"the case in this thread is {case.status}"])
        if post.published_at - last > thread_window:
            return Followup(Follow.NEW, None, ["the thread's case is too old to join"])
        how = "replied in the thread"
    else:
        if case.status in (CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.MERGED):
            return Followup(Follow.NEW, None, [f"the customer's last case is {case.status}"])
        if post.published_at - last > repeat_window:
            return Followup(Follow.NEW, None, ["the customer's last case is too old to join"])
        how = "posted again"
    replied = case.replied_at is not None and post.published_at >= case.replied_at
    resolved = says_resolved(post.text) if post.resolved is None else post.resolved
    if not replied:
        reasons = [f"the customer {how} before our reply"]
        happy = not post.unhappy and (resolved or post.happy)
        if happy:
            reasons = [
                f"the customer {how} before our reply: "
                + ("they say it is sorted" if resolved else "they are happy now")
            ]
        return Followup(
            Follow.JOIN, case.case_id, reasons, refresh_draft=True, sorted_before_reply=happy
        )
    if not post.unhappy and (
        resolved or post.happy or post.label == "positive" or thanks(post.text)
    ):
        why = (
            "they say it is sorted"
            if resolved
            else "they are happy now"
            if post.label == "positive" or post.happy
            else "they thank us"
        )
        return Followup(
            Follow.RECOVERED,
            case.case_id,
            [f"the customer {how} after our reply: {why}"],
            recovered=True,
            # a bare thanks is not "sorted" ("Thank you! Put in a request, waiting for reply")
            says_sorted=bool(resolved or post.happy),
        )
    if post.unhappy:
        reasons = [f"still unhappy after our reply: “{_excerpt(post.text)}”"]
        return Followup(
            Follow.STILL_UNHAPPY,
            case.case_id,
            reasons,
            back_to_queue=case.status in COMES_BACK_FROM,
            refresh_draft=case.status not in COMES_BACK_FROM,
            recovered=False,
        )
    return Followup(
        Follow.ACKNOWLEDGED, case.case_id, [f"the customer {how} after our reply (neutral)"]
    )


# ---------------------------------------------------------------------------
# the use-case's reads


@dataclass
class Found:
    """The case a post may follow, and how it was found."""

    case: m.Case | None
    in_thread: bool
    by_brand: bool


def _thread_case(
    session: Session, mention: m.Mention, customer: Sequence[int], hops: int = 3
) -> m.Case | None:
    """The case the post replies into: its parent's (up to ``hops`` posts up the thread),
    the one our sent reply belongs to, or one in the same conversation."""
    platform = mention.author.platform if mention.author else None
    parent_id = mention.in_reply_to_id
    for _ in range(hops):
        if not parent_id:
            break
        sent = session.scalars(
            select(m.OutboxMessage.case_id).where(m.OutboxMessage.external_id == parent_id)
        ).first()
        if sent is not None:
            case = session.get(m.Case, sent)
            if case is not None and case.author_id in customer:
                return case
        parent = session.scalars(
            select(m.Mention)
            .join(m.Author, m.Author.id == m.Mention.author_id)
            .where(m.Mention.external_id == parent_id, m.Author.platform == platform)
            .limit(1)
        ).first()
        if parent is None:
            break
        if parent.case_id is not None:
            case = session.get(m.Case, parent.case_id)
            if case is not None and case.author_id in customer:
                return case
        parent_id = parent.in_reply_to_id
    if mention.conversation_id:
        return session.scalars(
            select(m.Case)
            .join(m.Mention, m.Mention.case_id == m.Case.id)
            .where(
                m.Mention.conversation_id == mention.conversation_id,
                m.Mention.id != mention.id,
                m.Case.author_id.in_(customer),
            )
            .order_by(m.Case.id.desc())
            .limit(1)
        ).first()
    return None


def _brand_thread_case(session: Session, mention: m.Mention) -> m.Case | None:
    """The case whose post (or thread) the brand's post answers."""
    platform = mention.author.platform if mention.author else None
    if mention.in_reply_to_id:
        parent = session.scalars(
            select(m.Mention)
            .join(m.Author, m.Author.id == m.Mention.author_id)
            .where(m.Mention.external_id == mention.in_reply_to_id, m.Author.platform == platform)
            .limit(1)
        ).first()
        if parent is not None and parent.case_id is not None:
            return session.get(m.Case, parent.case_id)
    if mention.conversation_id:
        return session.scalars(
            select(m.Case)
            .join(m.Mention, m.Mention.case_id == m.Case.id)
            .where(m.Mention.conversation_id == mention.conversation_id)
            .order_by(m.Case.id.desc())
            .limit(1)
        ).first()
    return None


def find_case(
    session: Session,
    settings: Settings,
    mention: m.Mention,
    author: m.Author,
    customer: Sequence[int],
    recent: m.Case | None,
) -> Found:
    """The case ``mention`` may follow: by the thread first, else ``recent`` (the
    customer's open case in the repeat window, which the caller looked up)."""
    if settings.brand.is_own(author.platform, author.handle):
        return Found(_brand_thread_case(session, mention), True, True)
    threaded = _thread_case(session, mention, customer)
    if threaded is not None:
        return Found(threaded, True, False)
    return Found(recent, False, False)


def facts_of(case: m.Case) -> CaseFacts:
    return CaseFacts(case.id, case.status, case.first_response_at, case.last_mention_at)


# ---------------------------------------------------------------------------
# the use-case's writes


def record_brand_answer(
    session: Session, decision: Followup, mention: m.Mention, now: datetime
) -> None:
    """The brand answered in a case's thread: the case has a reply (recorded once)."""
    if decision.kind is not Follow.BRAND_ANSWER or decision.case_id is None:
        return
    case = session.get_one(m.Case, decision.case_id)
    handle = mention.author.handle if mention.author else None
    _brand_answered(session, case, mention, now, {"handle": handle})


def record_reply_seen(session: Session, case: m.Case, mention: m.Mention, now: datetime) -> None:
    """The customer replied to one of the brand's posts (the answered post's author is ours):
    the case has had a reply, even one sent outside Listener (recorded once)."""
    if case.first_response_at is not None and case.first_response_at <= mention.published_at:
        return
    _brand_answered(session, case, mention, now, {"seen_in": "the customer's reply to it"})


def _brand_answered(
    session: Session, case: m.Case, mention: m.Mention, now: datetime, data: dict[str, Any]
) -> None:
    """The case's first response is the earliest answer seen; one ``case.brand_answered``."""
    if case.first_response_at is None or mention.published_at < case.first_response_at:
        case.first_response_at = mention.published_at
    record_event(
        session,
        actor=SYSTEM_ACTOR,
        kind="case.brand_answered",
        case_id=case.id,
        mention_id=mention.id,
        at=now,
        data=data,
    )


def apply(
    session: Session,
    settings: Settings,
    case: m.Case,
    mention: m.Mention,
    decision: Followup,
    now: datetime,
    *,
    label: str,
    unhappy: bool,
) -> Redraft:
    """Apply a customer's follow-up to the case it joined (the caller attached the post).

    Records one ``case.followup`` event; brings a sent/resolved case back to the
    queue.  Returns the drafting the case now needs, written by the caller once per
    case and batch (:func:`redraft`): a first draft (it came back with none, or its
    first one is still to be written), the machine's draft re-rendered to answer the
    new post, or nothing.
    """
    from listener.cases.work import current_draft

    before = case.recovered
    if decision.recovered is not None:
        case.recovered = decision.recovered
        case.recovered_at = now if decision.recovered else None
    data: dict[str, Any] = {
        "label": label,
        "unhappy": bool(unhappy),
        "follow": decision.kind.value,
        "reasons": decision.reasons,
        "recovered": case.recovered,
        "before": before,
    }
    needs = Redraft.NONE
    if decision.kind is Follow.RECOVERED and case.status in (
        CaseStatus.NEW,
        CaseStatus.DRAFTED,
        CaseStatus.CLAIMED,
    ):
        # answered from outside Listener (nothing of ours went out), and now they say it is
        # sorted: nothing urgent left; when their words say so (not only the model's label),
        # the reply waiting here thanks them instead of apologising for what is already put
        # right (no gesture; an agent's text and choice stay as they are)
        data["was"] = {"priority": case.priority}
        if decision.says_sorted:
            live = current_draft(case)
            machine_text = live is None or live.created_by == SYSTEM_ACTOR
            data["sorted"] = _sorted_before_reply(case, decision, now, detach=machine_text)
            if live is not None:
                needs = Redraft.REFRESH
            elif case.status == CaseStatus.NEW:
                needs = Redraft.FIRST
        else:
            _nothing_urgent(case, decision)
    if decision.back_to_queue:
        data["was"] = {"status": case.status, "assignee": case.assignee}
        for d in case.drafts:
            if d.status == DraftStatus.CURRENT:
                d.status = DraftStatus.SUPERSEDED
        case.assignee = case.claimed_at = None
        case.snoozed_until = case.snoozed_by = case.snooze_note = None
        case.resolved_at = None
        case.status = unclaimed_status(has_draft=False)
        _reasons_first(case, decision.reasons)
        needs = Redraft.FIRST
    elif decision.refresh_draft and case.status in (
        CaseStatus.NEW,
        CaseStatus.DRAFTED,
        CaseStatus.CLAIMED,
    ):
        if decision.sorted_before_reply:
            live = current_draft(case)
            machine_text = live is None or live.created_by == SYSTEM_ACTOR
            data["sorted"] = _sorted_before_reply(case, decision, now, detach=machine_text)
        if decision.kind is Follow.STILL_UNHAPPY:
            _reasons_first(case, decision.reasons)
        if current_draft(case) is None:
            needs = Redraft.FIRST if case.status == CaseStatus.NEW else Redraft.NONE
        else:
            needs = Redraft.REFRESH
    record_event(
        session,
        actor=SYSTEM_ACTOR,
        kind="case.followup",
        case_id=case.id,
        mention_id=mention.id,
        at=now,
        data=data,
    )
    return needs


class Redraft(StrEnum):
    """The drafting a case needs after triage (see :func:`apply`)."""

    NONE = "none"
    #: write the case's first draft, answering the post
    FIRST = "first"
    #: re-render the machine's current draft to answer the post (an agent's text stays)
    REFRESH = "refresh"

    def then(self, later: Redraft) -> Redraft:
        """What one draft written after both requests must do: a first draft wins."""
        if Redraft.FIRST in (self, later):
            return Redraft.FIRST
        return later if later is not Redraft.NONE else self


def redraft(
    session: Session,
    settings: Settings,
    case: m.Case,
    mention: m.Mention,
    now: datetime,
) -> None:
    """Re-render the machine's draft of ``case`` to answer the customer's follow-up
    ``mention`` (:attr:`Redraft.REFRESH`), recording ``draft.edited`` (or ``draft.failed``)."""
    from listener.cases.offering import rerender_draft

    _, data = rerender_draft(
        session, settings, case, _offer_of(settings, case), SYSTEM_ACTOR, now, reply_to=mention
    )
    if data:
        kind = data.pop("kind")
        data.pop("because", None)
        data["after"] = "the customer's follow-up"
        record_event(session, actor=SYSTEM_ACTOR, kind=kind, case_id=case.id, at=now, data=data)


#: a case whose customer says it is sorted before we answered waits below every open
#: problem: the reply is a short "glad it's sorted", not a rescue
SORTED_PRIORITY = 10


def _sorted_before_reply(
    case: m.Case, decision: Followup, now: datetime, *, detach: bool
) -> dict[str, Any]:
    """The customer sorted it before our reply: no gesture (the machine's attached offer
    goes back to the suggestions while the machine wrote the text; an agent's choice, or
    an agent's text, stays as they left it), the case's kind becomes ``resolved`` and its
    priority drops, with the reason first.  Returns what changed."""
    was = {"priority": case.priority, "kind": case.kind, "gesture": case.gesture}
    detached = []
    for offer in case.offers if detach else ():
        if offer.status == OfferStatus.SELECTED and offer.created_by == SYSTEM_ACTOR:
            offer.status, offer.updated_at = OfferStatus.SUGGESTED, now
            detached.append(offer.offer_key)
    case.kind = "resolved"
    case.gesture = "none"
    case.gesture_reasons = [*decision.reasons, "no gesture: they say it is already sorted"]
    _nothing_urgent(case, decision)
    return {"was": was, "detached": detached}


def _nothing_urgent(case: m.Case, decision: Followup) -> None:
    """The customer says it is sorted: the case waits below every open problem, saying why."""
    case.priority = min(case.priority or 0, SORTED_PRIORITY)
    _reasons_first(case, decision.reasons)


def _reasons_first(case: m.Case, reasons: list[str]) -> None:
    """``reasons`` lead the case's reasons (the older ones follow, none twice)."""
    case.reasons = [*reasons, *(r for r in case.reasons or [] if r not in reasons)]


def _offer_of(settings: Settings, case: m.Case) -> dict[str, Any] | None:
    from listener.cases.offering import chosen_offer, offer_context, spec_for

    offer = chosen_offer(case.offers)
    return None if offer is None else offer_context(spec_for(settings, offer))
