"""Server-rendered pages: sign-in, the queue, the case page, the report (the dashboard is
:mod:`listener.web.dashboard`, the alerts page :mod:`listener.web.alerts`).

Handlers stay thin: they read the request, call a use-case or a query, and
render a template (autoescaped; user text is never marked safe) or redirect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from listener import auth
from listener.auth import Principal
from listener.errors import ListenerError
from listener.web import actions, queries
from listener.web.security import csrf_token, current_user, lead, writer

if TYPE_CHECKING:
    from listener.app import App

router = APIRouter(include_in_schema=False)

TEMPLATES = Path(__file__).parent / "templates"
CaseId = Annotated[int, PathParam(ge=1, le=2_147_483_647)]
MentionId = Annotated[int, PathParam(ge=1, le=2_147_483_647)]
User = Annotated[Principal, Depends(current_user)]
Writer = Annotated[Principal, Depends(writer)]
Lead = Annotated[Principal, Depends(lead)]


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ts"] = fmt_ts
    env.filters["ago"] = fmt_ago
    env.filters["reach"] = fmt_reach
    env.filters["duration"] = fmt_duration
    env.filters["pct"] = fmt_pct
    env.filters["safe_url"] = safe_url
    return env


# ---------------------------------------------------------------------------
# formatting (pure)


def safe_url(value: str | None) -> str:
    """``value`` when it is an http(s) URL, else "" (no javascript:, data:, … links)."""
    if not value:
        return ""
    v = value.strip()
    return v if urlsplit(v).scheme.lower() in ("http", "https") else ""


def fmt_ts(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_duration(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    s = abs(int(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m"
    elif s < 86400:
        text = f"{s // 3600}h {s % 3600 // 60}m"
    else:
        text = f"{s // 86400}d {s % 86400 // 3600}h"
    return text


def fmt_ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return ""
    now = now or datetime.now(UTC)
    return fmt_duration((now - value).total_seconds()) + " ago"


def fmt_reach(n: int | None) -> str:
    if n is None:
        return "?"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1000:
        return f"{n / 1000:.0f}k" if n >= 10_000 else f"{n / 1000:.1f}k"
    return str(n)


def fmt_pct(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x * 100:.0f}%" if x <= 1 else f"{x:.0f}%"


def sla_text(seconds: int | None) -> str:
    if seconds is None:
        return "no SLA"
    return ("due in " if seconds >= 0 else "overdue ") + fmt_duration(seconds)


ENV = _env()
ENV.globals["sla_text"] = sla_text


# ---------------------------------------------------------------------------
# helpers


def _app(request: Request) -> App:
    return request.app.state.listener  # type: ignore[no-any-return]


def flash(request: Request, kind: str, message: str) -> None:
    messages = list(request.session.get("flash", []))[-4:]
    messages.append([kind, message[:500]])
    request.session["flash"] = messages


def safe_next(target: str | None, request: Request | None = None, default: str = "/") -> str:
    """Only same-site paths are followed after sign-in or a form (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        if request is None or parts.netloc != request.url.netloc:
            return default
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    user = getattr(request.state, "principal", None)
    messages = request.session.pop("flash", []) if "flash" in request.session else []
    html = ENV.get_template(name).render(
        request=request,
        user=user,
        csrf=csrf_token(request),
        messages=messages,
        path=request.url.path,
        now=datetime.now(UTC),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def error_page(request: Request, code: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=code, code=code, message=message)


def back_to_case(case_id: int) -> RedirectResponse:
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _int_or_none(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# sign-in


@router.get("/")
def home(request: Request, user: User) -> RedirectResponse:
    return RedirectResponse("/dashboard" if user.role == "marketing" else "/queue", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=safe_next(next, default=""))


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Any:
    try:
        principal = auth.authenticate(_app(request), username, password)
    except auth.InvalidCredentials as exc:
        return render(
            request,
            "login.html",
            status_code=401,
            next=safe_next(next, default=""),
            error=str(exc),
            username=username,
        )
    request.session.clear()  # new session on sign-in (no fixation)
    request.session["uid"] = principal.id
    csrf_token(request)
    default = "/dashboard" if principal.role == "marketing" else "/queue"
    return RedirectResponse(safe_next(next, default=default), status_code=303)


@router.post("/logout")
def logout(request: Request) -> RedirectResponse:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# ---------------------------------------------------------------------------
# queue


@router.get("/queue")
def queue(
    request: Request,
    user: User,
    status: str | None = None,
    source: str | None = None,
    category: str | None = None,
    assignee: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HTMLResponse:
    f = queries.QueueFilter(
        status=status or None,
        source=source or None,
        category=category or None,
        assignee=assignee or None,
        q=q or None,
        page=page,
        per_page=per_page,
    )
    app = _app(request)
    data = queries.queue_page(app, f)
    facets = queries.queue_facets(app, request.app.state.cache)
    params = {
        k: v
        for k, v in {
            "status": status,
            "source": source,
            "category": category,
            "assignee": assignee,
            "q": q,
        }.items()
        if v
    }
    return render(
        request, "queue.html", data=data, facets=facets, f=f, qs=urlencode(params), params=params
    )


@router.post("/queue/bulk")
async def bulk(request: Request, user: Writer) -> RedirectResponse:
    form = await request.form()
    action = str(form.get("action") or "")
    ids = [i for i in (_int_or_none(str(v)) for v in form.getlist("ids")) if i is not None]
    app = _app(request)
    if not ids:
        flash(request, "error", "select cases first")
    elif action == "assign":
        assignee = str(form.get("assignee") or "").strip()
        if not assignee:
            flash(request, "error", "choose whom to assign the cases to")
        else:
            _bulk(
                request,
                ids,
                lambda cid: actions.assign(app, cid, user, assignee),
                f"assigned to {assignee}",
            )
    elif action == "dismiss":
        _bulk(
            request,
            ids,
            lambda cid: actions.reject(app, cid, user, "dismissed from queue"),
            "dismissed",
        )
    else:
        flash(request, "error", "unknown bulk action")
    back = safe_next(str(form.get("next") or ""), request, default="/queue")
    return RedirectResponse(back, status_code=303)


def _bulk(request: Request, ids: list[int], fn: Any, done: str) -> None:
    ok, failed = 0, []
    for cid in ids[:500]:
        try:
            fn(cid)
            ok += 1
        except ListenerError as exc:
            failed.append(f"#{cid}: {exc}")
    if ok:
        flash(request, "ok", f"{ok} case{'s' if ok != 1 else ''} {done}")
    if failed:
        flash(request, "error", "; ".join(failed[:5]) + (" …" if len(failed) > 5 else ""))


# ---------------------------------------------------------------------------
# case page


def case_context(app: App, case_id: CaseId, viewer: str) -> dict[str, Any]:
    """Everything the case page shows."""
    from listener.cases import case_events, get_case
    from listener.policy import x_weighted_length

    with app.sessions() as session:
        case = get_case(session, case_id)
        events = case_events(session, case_id)
    mentions = list(case.mentions)
    drafts = list(case.drafts)
    current = next(
        (d for d in reversed(drafts) if d.status in ("current", "approved", "sent")),
        drafts[-1] if drafts else None,
    )
    classifications = queries.latest_classifications(app, [mt.id for mt in mentions])
    corrections = queries.latest_corrections(app, [mt.id for mt in mentions])
    others = queries.touch_viewer(app, case_id, viewer)
    warnings: list[str] = []
    length = None
    limit = None
    if current is not None:
        from listener.outbox import allowed_domains, channel_limit, guard_violations

        limit = channel_limit(current.channel)
        weighted = current.channel == "x_reply"
        length = x_weighted_length(current.text) if weighted else len(current.text)
        if current.status == "current":
            warnings = guard_violations(
                current.text,
                current.channel,
                limit=limit,
                author_handle=case.author.handle if case.author else None,
                brand_handles=app.settings.brand.handles,
                allowed_domains=allowed_domains(app.settings),
            )
    try:
        detail = actions.case_detail(app, case_id)
    except actions.Unavailable:
        detail = {}
    return {
        "case": case,
        "mentions": mentions,
        "classifications": classifications,
        "corrections": corrections,
        "drafts": drafts,
        "draft": current,
        "draft_length": length,
        "limit": limit,
        "warnings": warnings,
        "offers": list(case.offers),
        "catalogue": detail.get("catalogue") or [],
        "budget": detail.get("budget"),
        "detail": detail,
        "events": events,
        "history": queries.author_history(app, case_id),
        "conversation": queries.conversation(app, case_id),
        "viewers": others,
        "sla_seconds": int((case.sla_due_at - datetime.now(UTC)).total_seconds())
        if case.sla_due_at
        else None,
        "categories": _categories(app),
    }


def _categories(app: App) -> list[str]:
    try:
        from listener.triage import CATEGORY_SEVERITY

        return sorted(CATEGORY_SEVERITY)
    except ImportError:  # pragma: no cover
        return []


@router.get("/cases/{case_id}")
def case_page(case_id: CaseId, request: Request, user: User) -> HTMLResponse:
    ctx = case_context(_app(request), case_id, user.username)
    return render(request, "case.html", **ctx)


@router.post("/cases/{case_id}/presence")
def presence(case_id: CaseId, request: Request, user: User) -> dict[str, Any]:
    return {"viewers": queries.touch_viewer(_app(request), case_id, user.username)}


@router.post("/cases/{case_id}/claim")
def claim(
    case_id: CaseId,
    request: Request,
    user: Writer,
    force: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Any:
    actions.claim(_app(request), case_id, user, force=bool(force) and user.is_lead)
    flash(request, "ok", f"you claimed case #{case_id}")
    return RedirectResponse(safe_next(next, request, default=f"/cases/{case_id}"), status_code=303)


@router.post("/cases/{case_id}/release")
def release(case_id: CaseId, request: Request, user: Writer) -> Any:
    actions.release(_app(request), case_id, user)
    flash(request, "ok", f"case #{case_id} released")
    return back_to_case(case_id)


@router.post("/cases/{case_id}/assign")
def assign(
    case_id: CaseId, request: Request, user: Lead, assignee: Annotated[str, Form(max_length=200)]
) -> Any:
    actions.assign(_app(request), case_id, user, assignee)
    flash(request, "ok", f"case #{case_id} assigned to {assignee}")
    return back_to_case(case_id)


@router.post("/cases/{case_id}/draft")
def draft(
    case_id: CaseId,
    request: Request,
    user: Writer,
    text: Annotated[str, Form(max_length=20000)],
    subject: Annotated[str, Form(max_length=500)] = "",
) -> Any:
    actions.edit_draft(
        _app(request), case_id, user, text.replace("\r\n", "\n"), subject=subject or None
    )
    flash(request, "ok", "draft saved")
    return back_to_case(case_id)


@router.post("/cases/{case_id}/offer")
def offer(
    case_id: CaseId,
    request: Request,
    user: Writer,
    offer_key: Annotated[str, Form(max_length=100)] = "",
) -> Any:
    actions.select_offer(_app(request), case_id, user, offer_key or None)
    flash(request, "ok", f"offer: {offer_key}" if offer_key else "no offer")
    return back_to_case(case_id)


@router.post("/cases/{case_id}/approve")
def approve(case_id: CaseId, request: Request, user: Writer) -> Any:
    actions.approve(_app(request), case_id, user)
    flash(request, "ok", f"case #{case_id} approved")
    return back_to_case(case_id)


@router.post("/cases/{case_id}/reject")
def reject(
    case_id: CaseId,
    request: Request,
    user: Writer,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Any:
    actions.reject(_app(request), case_id, user, reason or "rejected")
    flash(request, "ok", f"case #{case_id} rejected")
    return back_to_case(case_id)


SNOOZE_CHOICES = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
}


@router.post("/cases/{case_id}/snooze")
def snooze(
    case_id: CaseId, request: Request, user: Writer, for_: Annotated[str, Form(alias="for")] = "4h"
) -> Any:
    delta = SNOOZE_CHOICES.get(for_)
    if delta is None:
        raise ListenerError(f"snooze for one of: {', '.join(SNOOZE_CHOICES)}")
    actions.snooze(_app(request), case_id, user, datetime.now(UTC) + delta)
    flash(request, "ok", f"case #{case_id} snoozed for {for_}")
    return back_to_case(case_id)


@router.post("/cases/{case_id}/resolve")
def resolve(
    case_id: CaseId,
    request: Request,
    user: Writer,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Any:
    actions.resolve(_app(request), case_id, user, note or None)
    flash(request, "ok", f"case #{case_id} resolved")
    return back_to_case(case_id)


@router.post("/cases/{case_id}/sent")
def mark_sent(
    case_id: CaseId, request: Request, user: Writer, url: Annotated[str, Form(max_length=2000)] = ""
) -> Any:
    actions.mark_sent(_app(request), case_id, user, url or None)
    flash(request, "ok", f"case #{case_id} marked as sent")
    return back_to_case(case_id)


@router.post("/mentions/{mention_id}/correct")
def correct(
    mention_id: MentionId,
    request: Request,
    user: Writer,
    unhappy: Annotated[str, Form(max_length=10)] = "",
    category: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Any:
    flag = {"yes": True, "no": False}.get(unhappy)
    if flag is None and not category:
        raise ListenerError("say whether the post is unhappy, or pick a category")
    actions.correct_label(_app(request), mention_id, user, unhappy=flag, category=category or None)
    flash(request, "ok", "thanks — the correction feeds the next training run")
    return RedirectResponse(safe_next(next, request, default="/queue"), status_code=303)


# ---------------------------------------------------------------------------
# report (the dashboard, drill-down and exports are in listener.web.dashboard)

WINDOWS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}


@router.get("/report")
def report(
    request: Request, user: User, window: Annotated[str, Query(max_length=4)] = "7d"
) -> HTMLResponse:
    days = WINDOWS.get(window, 7)
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    try:
        data = actions.team_report(_app(request), since, until)
        missing = None
    except actions.Unavailable as exc:
        data, missing = {}, str(exc)
    return render(
        request,
        "report.html",
        data=data,
        window=window,
        windows=list(WINDOWS),
        since=since,
        until=until,
        missing=missing,
    )
