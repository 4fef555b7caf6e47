"""The JSON API (/api/v1): the same use-cases as the pages, for scripts and integrations.

Authenticate with ``Authorization: Bearer <token>`` (``listener users token NAME``);
a browser session works too (unsafe methods then need the ``X-CSRF-Token``
header).  Errors are ``{"detail": "...", "error": "<ListenerError class>"}`` with
401, 403, 404, 409 or 422; a 409 ``StaleDraft`` also carries ``current``, the
reply as it is now (``draft_version``, ``text``, ``subject``).  The OpenAPI
description is at ``/api/v1/openapi.json``, browsable at ``/api/docs``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from listener.auth import Principal
from listener.cases import actions
from listener.cases.labels import correct_label
from listener.cases.queue import QueueFilter, queue_page
from listener.cases.report import team_report
from listener.cases.view import case_view
from listener.cases.work import Actor
from listener.clock import utcnow
from listener.errors import ListenerError
from listener.web.security import current_user

bearer = HTTPBearer(auto_error=False, description="An API token from `listener users token`.")


def _no_nul(v: str | None) -> str | None:
    if v is not None and "\x00" in v:
        raise ValueError("text must not contain NUL characters")
    return v


def api_user(
    request: Request,
    _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Principal:
    """The token's (or session's) user; 401 otherwise."""
    if "%00" in request.url.query or "\x00" in request.url.query:
        raise ListenerError("the query must not contain NUL characters")
    return current_user(request)


router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Depends(api_user)])

CaseId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The case id.")]
MentionId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The mention id.")]
Short = Annotated[str, Field(max_length=200), AfterValidator(_no_nul)]
Long = Annotated[str, Field(max_length=20_000), AfterValidator(_no_nul)]
OptShort = Annotated[str | None, Field(default=None, max_length=200), AfterValidator(_no_nul)]
OptLong = Annotated[str | None, Field(default=None, max_length=2000), AfterValidator(_no_nul)]
QStr = Annotated[str | None, Query(max_length=200)]


class _Open(BaseModel):
    """A use-case result: these fields, and whatever else the use-case reports."""

    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------------------
# response models


class Me(BaseModel):
    id: int
    username: str
    role: str
    can_write: bool
    is_lead: bool


class QueueItem(BaseModel):
    id: int
    status: str
    priority: int
    reasons: list[str]
    category: str | None
    assignee: str | None
    sla_due_at: datetime | None
    sla_seconds: int | None = Field(description="Seconds to the first-response target.")
    mentions: int
    unhappy_score: float | None
    author: str | None
    author_name: str | None
    followers: int | None
    source: str | None
    text: str | None = Field(description="The first post (its first 300 characters).")
    url: str | None
    draft: str | None
    draft_version: int | None = Field(description="The reply's current version.")
    offer: dict[str, Any] | None = Field(description="The offer the reply carries, or null.")
    kind: str | None = Field(
        default=None, description="complaint, question, praise, resolved, other."
    )
    gesture: str = Field(
        default="none",
        description="none, apology_and_help, goodwill, make_whole or personal.",
    )
    post_ids: list[str] = Field(default_factory=list, description="The source's ids of its posts.")
    snoozed_until: datetime | None
    snooze_note: str | None
    back_from_snooze: bool = Field(description="Snoozed, and back in the queue now.")
    viewers: list[str] = Field(description="Who else has the case open.")


class QueuePage(BaseModel):
    items: list[QueueItem]
    total: int
    page: int
    per_page: int
    pages: int


class ActionResult(_Open):
    """What a case action returned (the case's new state)."""


class CaseDetail(_Open):
    """Everything about one case (posts, drafts, offers, events…)."""


class EventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: str
    mention_id: int | None
    data: dict[str, Any]
    text: str = Field(description="The event as a sentence.")


class SeriesPoint(BaseModel):
    key: str
    counts: dict[str, int]
    total: int


class TopAuthor(BaseModel):
    handle: str
    display_name: str | None
    platform: str
    followers: int | None
    n: int


class Dashboard(BaseModel):
    bucket: str
    since: datetime
    until: datetime
    total: int
    volume: list[SeriesPoint]
    by_source: list[SeriesPoint]
    by_category: list[SeriesPoint]
    top_authors: list[TopAuthor]


class MentionOut(BaseModel):
    id: int
    published_at: datetime
    source: str
    author: str
    followers: int | None
    label: str | None
    unhappy_score: float | None
    category: str | None
    case_id: int | None
    url: str | None
    text: str


class MentionPage(BaseModel):
    items: list[MentionOut]
    total: int
    page: int


class Report(_Open):
    """The team report: first-response time, SLA met, recovery rate and cost."""


class Correction(_Open):
    mention_id: int


# ---------------------------------------------------------------------------
# request bodies


class _Body(BaseModel):
    """A request body: unknown fields are refused (422), never ignored."""

    model_config = ConfigDict(extra="forbid")


class ClaimIn(_Body):
    force: bool = Field(default=False, description="Take it from another agent (leads only).")


class AssignIn(_Body):
    assignee: Short


Version = Annotated[int | None, Field(default=None, ge=0, le=1_000_000)]
SEEN = "The reply version you saw (0: none); 409 with the current reply when it is newer."


class DraftIn(_Body):
    text: Long
    subject: OptLong = None
    draft_version: Version = Field(default=None, description=SEEN)


class OfferIn(_Body):
    offer_key: OptShort = Field(default=None, description="None: no offer.")
    draft_version: Version = Field(default=None, description=SEEN)


class ApproveIn(_Body):
    draft_version: Version = Field(default=None, description=SEEN)


class MergeIn(_Body):
    other_case_id: int = Field(
        ge=1, le=2_147_483_647, description="The case of the same customer to merge in."
    )


class RejectIn(_Body):
    reason: OptLong = None


class SnoozeIn(_Body):
    until: datetime | None = Field(
        description="Wake the case at this time (UTC if no offset); null or a past time: now."
    )
    note: OptLong = Field(default=None, description="Why; shown when the case comes back.")


class ResolveIn(_Body):
    note: OptLong = None


class SentIn(_Body):
    url: OptLong = Field(default=None, description="Where the reply was posted.")
    note: OptLong = Field(default=None, description="How it was delivered, without a link.")


class CorrectionIn(_Body):
    unhappy: bool | None = None
    category: OptShort = None


def _app(request: Request) -> Any:
    return request.app.state.listener


# ---------------------------------------------------------------------------
# endpoints


@router.get("/me", response_model=Me)
def me(user: Annotated[Principal, Depends(api_user)]) -> Me:
    return Me(
        id=user.id,
        username=user.username,
        role=user.role,
        can_write=user.can_write,
        is_lead=user.is_lead,
    )


User = Annotated[Principal, Depends(api_user)]


def _actor(user: Principal) -> Actor:
    return Actor(user.username, user.role)


@router.get("/queue", response_model=QueuePage)
def queue(
    request: Request,
    user: User,
    status: Annotated[str | None, Query(max_length=20)] = None,
    source: QStr = None,
    category: QStr = None,
    assignee: QStr = None,
    q: QStr = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """The cases to work, most urgent first, with why and the SLA countdown.

    ``status``: one status, or a view — ``snoozed``, ``waiting`` (needs your
    approval as a lead), ``sending`` (approved, not sent yet), ``all``.
    """
    f = QueueFilter(
        status=status or None,
        source=source or None,
        category=category or None,
        assignee=assignee or None,
        q=q or None,
        viewer=user.username,
        page=page,
        per_page=per_page,
    )
    app = _app(request)
    data = queue_page(
        app, f, masked=user.role == "marketing", prefix=app.settings.recovery.coupon_prefix
    )
    return {**asdict(data), "items": [asdict(i) for i in data.items]}


@router.get("/cases/{case_id}", response_model=CaseDetail)
def case(request: Request, case_id: CaseId, user: User) -> Any:
    """Everything about one case; ``draft_version`` is the reply's current version (send it
    back with approve and edits), ``can`` what you may do now."""
    return case_view(_app(request), case_id, viewer=_actor(user))


@router.get("/cases/{case_id}/events", response_model=list[EventOut])
def events(request: Request, case_id: CaseId, user: User) -> Any:
    """The audit trail, oldest first, each event also as a sentence."""
    return case_view(_app(request), case_id, viewer=_actor(user))["events"]


@router.post("/cases/{case_id}/claim", response_model=ActionResult)
def claim(request: Request, case_id: CaseId, user: User, body: ClaimIn | None = None) -> Any:
    """Claim the case (409 when someone else has it)."""
    return actions.claim(_app(request), case_id, user.username, force=bool(body and body.force))


@router.post("/cases/{case_id}/release", response_model=ActionResult)
def release(request: Request, case_id: CaseId, user: User) -> Any:
    """Give the case back (its holder, or a lead)."""
    return actions.release(_app(request), case_id, user.username)


@router.post("/cases/{case_id}/assign", response_model=ActionResult)
def assign(request: Request, case_id: CaseId, body: AssignIn, user: User) -> Any:
    """Assign the case to an active agent or lead (leads and admins)."""
    return actions.assign(_app(request), case_id, user.username, body.assignee)


@router.put("/cases/{case_id}/draft", response_model=ActionResult)
def draft(request: Request, case_id: CaseId, body: DraftIn, user: User) -> Any:
    """Save a new version of the reply (409 when ``draft_version`` is not the current one)."""
    return actions.edit_draft(
        _app(request),
        case_id,
        user.username,
        body.text,
        subject=body.subject,
        draft_version=body.draft_version,
    )


@router.put("/cases/{case_id}/offer", response_model=ActionResult)
def offer(request: Request, case_id: CaseId, body: OfferIn, user: User) -> Any:
    """Choose the offer (or none); a machine-written reply is rewritten with it."""
    return actions.select_offer(
        _app(request), case_id, user.username, body.offer_key, draft_version=body.draft_version
    )


@router.post("/cases/{case_id}/approve", response_model=ActionResult)
def approve(request: Request, case_id: CaseId, user: User, body: ApproveIn | None = None) -> Any:
    """Approve the reply and offer for sending: 409 when ``draft_version`` is given and the
    reply is newer (``current`` holds it), 403 above your tier, 422 on a sending rule."""
    return actions.approve(
        _app(request), case_id, user.username, draft_version=body.draft_version if body else None
    )


@router.post("/cases/{case_id}/reject", response_model=ActionResult)
def reject(request: Request, case_id: CaseId, body: RejectIn, user: User) -> Any:
    """Close the case without a reply (reopen undoes it)."""
    return actions.reject(_app(request), case_id, user.username, body.reason or "rejected")


@router.post("/cases/{case_id}/merge", response_model=ActionResult)
def merge(request: Request, case_id: CaseId, body: MergeIn, user: User) -> Any:
    """Same person: the other case's posts join this one (409 when either case cannot)."""
    from listener.cases.linking import merge_cases

    return merge_cases(_app(request), case_id, body.other_case_id, user.username)


SuggestionId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The link suggestion id.")]


@router.get("/cases/{case_id}/link-suggestions")
def link_suggestions(request: Request, case_id: CaseId, user: User) -> Any:
    """Cases that may be the same customer's, with the evidence (pending ones)."""
    from listener.cases.audit import mask
    from listener.cases.linking import suggestions_for

    app = _app(request)
    with app.sessions() as session:
        rows = suggestions_for(session, case_id)
    # read-only viewers never see customers' e-mail addresses (evidence may hold one)
    return mask(rows, app.settings.recovery.coupon_prefix) if user.role == "marketing" else rows


@router.post("/link-suggestions/{suggestion_id}/accept", response_model=ActionResult)
def accept_link(request: Request, suggestion_id: SuggestionId, user: User) -> Any:
    """Accept a link suggestion: the newer case merges into the older one."""
    from listener.cases.linking import accept_suggestion

    return accept_suggestion(_app(request), suggestion_id, user.username)


@router.post("/link-suggestions/{suggestion_id}/reject")
def reject_link(request: Request, suggestion_id: SuggestionId, user: User) -> Any:
    """Reject a link suggestion (it is not suggested again)."""
    from listener.cases.linking import reject_suggestion

    return reject_suggestion(_app(request), suggestion_id, user.username)


@router.post("/cases/{case_id}/reopen", response_model=ActionResult)
def reopen(request: Request, case_id: CaseId, user: User) -> Any:
    """Undo a rejection."""
    return actions.reopen(_app(request), case_id, user.username)


@router.post("/cases/{case_id}/snooze", response_model=ActionResult)
def snooze(request: Request, case_id: CaseId, body: SnoozeIn, user: User) -> Any:
    """Take the case out of the queue until ``until`` (its holder, or a lead)."""
    until = body.until
    if until is not None and until.tzinfo is None:
        from datetime import UTC

        until = until.replace(tzinfo=UTC)
    return actions.snooze(_app(request), case_id, user.username, until, note=body.note)


@router.post("/cases/{case_id}/resolve", response_model=ActionResult)
def resolve(request: Request, case_id: CaseId, body: ResolveIn, user: User) -> Any:
    """Close the case (its holder, or a lead)."""
    return actions.resolve(_app(request), case_id, user.username, body.note)


@router.post("/cases/{case_id}/sent", response_model=ActionResult)
def mark_sent(request: Request, case_id: CaseId, body: SentIn, user: User) -> Any:
    """Record that the approved reply was posted by hand (manual channels only; its holder
    or a lead)."""
    return actions.mark_sent(_app(request), case_id, user.username, body.url, note=body.note)


@router.post("/mentions/{mention_id}/correction", response_model=Correction)
def correction(request: Request, mention_id: MentionId, body: CorrectionIn, user: User) -> Any:
    """Correct a post's label; it feeds the learning loop."""
    if body.unhappy is None and not body.category:
        raise ListenerError("give unhappy, category, or both")
    return correct_label(
        _app(request), mention_id, user.username, unhappy=body.unhappy, category=body.category
    )


Window = Annotated[str, Query(pattern="^(1d|7d|30d|90d)$")]


@router.get("/report", response_model=Report)
def report(request: Request, window: Window = "7d") -> Any:
    """First-response time, SLA met %, recovery rate and cost over the window, overall,
    per agent and per category."""
    days = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}[window]
    until = utcnow()
    return team_report(_app(request), until - timedelta(days=days), until)
