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
from listener.cases import actions
from listener.cases.labels import correct_label
from listener.cases.presence import others_viewing, touch_viewer
from listener.cases.queue import QueueFilter, neighbours, next_case, queue_page
from listener.cases.report import TABLE_COLUMNS, table_rows, team_report
from listener.cases.view import case_view
from listener.cases.work import Actor
from listener.clock import utcnow
from listener.errors import ListenerError, StaleDraft
from listener.web import queries
from listener.web.errors import status_for
from listener.web.security import (
    client_address,
    csrf_token,
    current_user,
    end_session,
    lead,
    start_session,
    writer,
)

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


def flash(request: Request, kind: str, message: str, *, undo: str | None = None) -> None:
    """A message for the next page; ``undo``: a same-site path that undoes the action (POST)."""
    messages = list(request.session.get("flash", []))[-4:]
    messages.append([kind, message[:500], undo] if undo else [kind, message[:500]])
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
        principal = auth.authenticate(
            _app(request), username, password, address=client_address(request)
        )
    except auth.InvalidCredentials as exc:
        throttled = isinstance(exc, auth.LoginThrottled)
        return render(
            request,
            "login.html",
            status_code=429 if throttled else 401,
            next=safe_next(next, default=""),
            error=str(exc),
            username=username,
        )
    start_session(request, principal)  # a new session on sign-in (no fixation)
    default = "/dashboard" if principal.role == "marketing" else "/queue"
    return RedirectResponse(safe_next(next, default=default), status_code=303)


@router.post("/logout")
def logout(request: Request) -> RedirectResponse:
    end_session(request)
    return RedirectResponse("/login", status_code=303)


# ---------------------------------------------------------------------------
# queue

QUEUE_PARAMS = ("status", "source", "category", "assignee", "q")


def _queue_filter(
    user: Principal, params: dict[str, str], page: int = 1, per_page: int = 50
) -> QueueFilter:
    return QueueFilter(
        status=params.get("status") or None,
        source=params.get("source") or None,
        category=params.get("category") or None,
        assignee=params.get("assignee") or None,
        q=params.get("q") or None,
        viewer=user.username,
        page=page,
        per_page=per_page,
    )


def _queue_params(request: Request) -> dict[str, str]:
    """The queue filter in a request's query string (kept in links to and between cases)."""
    return {k: v[:200] for k in QUEUE_PARAMS if (v := request.query_params.get(k) or "").strip()}


def _actor(user: Principal) -> Actor:
    return Actor(user.username, user.role)


@router.get("/queue")
def queue(
    request: Request,
    user: User,
    status: Annotated[str | None, Query(max_length=20)] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HTMLResponse:
    params = _queue_params(request)
    f = _queue_filter(user, params, page, per_page)
    app = _app(request)
    data = queue_page(app, f, masked=_masked(user), prefix=app.settings.recovery.coupon_prefix)
    facets = queries.queue_facets(app, request.app.state.cache)
    return render(
        request, "queue.html", data=data, facets=facets, f=f, qs=urlencode(params), params=params
    )


def _masked(user: Principal) -> bool:
    return user.role == "marketing"


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
                lambda cid: actions.assign(app, cid, user.username, assignee),
                f"assigned to {assignee}",
            )
    elif action == "dismiss":
        _bulk(
            request,
            ids,
            lambda cid: actions.reject(app, cid, user.username, "dismissed from queue"),
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


def _categories(app: App) -> list[str]:
    return [c.name for c in app.settings.classifier.categories]


def case_page_response(
    request: Request,
    case_id: int,
    user: Principal,
    *,
    status_code: int = 200,
    unsaved: dict[str, Any] | None = None,
    problem: str | None = None,
    current: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The case page; ``unsaved`` is the actor's own reply text, kept when an action on it
    was refused (with ``problem`` and, for a newer version, the ``current`` one beside it)."""
    app = _app(request)
    view = case_view(app, case_id, viewer=_actor(user))
    params = _queue_params(request)
    prev_id, next_id = neighbours(app, case_id, _queue_filter(user, params))
    if user.can_write:
        viewers = touch_viewer(app, case_id, user.username)
    else:
        viewers = others_viewing(app, case_id, user.username)
    return render(
        request,
        "case.html",
        status_code=status_code,
        v=view,
        viewers=viewers,
        prev_id=prev_id,
        next_id=next_id,
        qs=urlencode(params),
        unsaved=unsaved,
        problem=problem,
        current=current,
        categories=_categories(app),
        snooze_choices=list(SNOOZE_CHOICES),
    )


@router.get("/cases/{case_id}")
def case_page(case_id: CaseId, request: Request, user: User) -> HTMLResponse:
    return case_page_response(request, case_id, user)


@router.post("/cases/{case_id}/presence")
def presence(case_id: CaseId, request: Request, user: Writer) -> dict[str, Any]:
    return {"viewers": touch_viewer(_app(request), case_id, user.username)}


def _to_case(case_id: int, qs: str = "") -> RedirectResponse:
    return RedirectResponse(f"/cases/{case_id}" + (f"?{qs}" if qs else ""), status_code=303)


def _onward(request: Request, user: Principal, case_id: int, done: str) -> RedirectResponse:
    """After approve, reject, resolve or snooze: the next case to work, or the queue."""
    following = next_case(_app(request), user.username, after=case_id)
    if following is None:
        flash(request, "ok", f"{done} · the queue is empty")
        return RedirectResponse("/queue", status_code=303)
    flash(request, "ok", f"{done} · next: case #{following}")
    return RedirectResponse(f"/cases/{following}", status_code=303)


@router.post("/cases/{case_id}/claim")
def claim(
    case_id: CaseId,
    request: Request,
    user: Writer,
    force: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Any:
    actions.claim(_app(request), case_id, user.username, force=bool(force) and user.is_lead)
    flash(request, "ok", f"you claimed case #{case_id}")
    return RedirectResponse(safe_next(next, request, default=f"/cases/{case_id}"), status_code=303)


@router.post("/cases/{case_id}/release")
def release(case_id: CaseId, request: Request, user: Writer) -> Any:
    actions.release(_app(request), case_id, user.username)
    flash(request, "ok", f"case #{case_id} released")
    return _to_case(case_id)


@router.post("/cases/{case_id}/assign")
def assign(
    case_id: CaseId, request: Request, user: Lead, assignee: Annotated[str, Form(max_length=200)]
) -> Any:
    actions.assign(_app(request), case_id, user.username, assignee.strip())
    flash(request, "ok", f"case #{case_id} assigned to {assignee.strip()}")
    return _to_case(case_id)


def _reply_form(text: str, subject: str) -> dict[str, Any]:
    return {"text": text.replace("\r\n", "\n"), "subject": subject or None}


def _refused(
    request: Request, case_id: int, user: Principal, exc: ListenerError, mine: dict[str, Any]
) -> HTMLResponse:
    """The case page again, the actor's text kept in the editor, saying why."""
    current = exc.current() if isinstance(exc, StaleDraft) else None
    return case_page_response(
        request,
        case_id,
        user,
        status_code=status_for(exc),
        unsaved=mine,
        problem=str(exc),
        current=current,
    )


@router.post("/cases/{case_id}/draft")
def draft(
    case_id: CaseId,
    request: Request,
    user: Writer,
    text: Annotated[str, Form(max_length=20000)],
    subject: Annotated[str, Form(max_length=500)] = "",
    draft_version: Annotated[int | None, Form(ge=0, le=1_000_000)] = None,
) -> Any:
    mine = _reply_form(text, subject)
    try:
        done = actions.edit_draft(
            _app(request),
            case_id,
            user.username,
            mine["text"],
            subject=mine["subject"],
            draft_version=draft_version,
        )
    except ListenerError as exc:
        return _refused(request, case_id, user, exc, mine)
    flash(request, "ok", f"draft saved (version {done['draft_version']})")
    return _to_case(case_id)


@router.post("/cases/{case_id}/offer")
def offer(
    case_id: CaseId,
    request: Request,
    user: Writer,
    offer_key: Annotated[str, Form(max_length=100)] = "",
    draft_version: Annotated[int | None, Form(ge=0, le=1_000_000)] = None,
) -> Any:
    actions.select_offer(
        _app(request), case_id, user.username, offer_key or None, draft_version=draft_version
    )
    flash(request, "ok", f"offer: {offer_key}" if offer_key else "no offer")
    return _to_case(case_id)


@router.post("/cases/{case_id}/approve")
def approve(
    case_id: CaseId,
    request: Request,
    user: Writer,
    text: Annotated[str | None, Form(max_length=20000)] = None,
    subject: Annotated[str, Form(max_length=500)] = "",
    draft_version: Annotated[int | None, Form(ge=0, le=1_000_000)] = None,
) -> Any:
    """Approve the reply as the page shows it: the editor's text (saved first if edited)
    at the version the page was loaded with; a case is approved from its page only."""
    if draft_version is None or text is None:
        raise ListenerError(
            f"open case #{case_id} to approve it: the reply you approve must be the one you read"
        )
    mine = _reply_form(text, subject)
    try:
        actions.approve(
            _app(request),
            case_id,
            user.username,
            draft_version=draft_version,
            text=mine["text"],
            subject=mine["subject"],
        )
    except ListenerError as exc:
        return _refused(request, case_id, user, exc, mine)
    return _onward(request, user, case_id, f"case #{case_id} approved")


@router.post("/cases/{case_id}/reject")
def reject(
    case_id: CaseId,
    request: Request,
    user: Writer,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Any:
    actions.reject(_app(request), case_id, user.username, reason.strip() or "rejected")
    flash(request, "ok", f"case #{case_id} rejected", undo=f"/cases/{case_id}/reopen")
    following = next_case(_app(request), user.username, after=case_id)
    return RedirectResponse(
        f"/cases/{following}" if following is not None else "/queue", status_code=303
    )


@router.post("/cases/{case_id}/reopen")
def reopen(case_id: CaseId, request: Request, user: Writer) -> Any:
    actions.reopen(_app(request), case_id, user.username)
    flash(request, "ok", f"case #{case_id} reopened")
    return _to_case(case_id)


# -- one customer across sources (listener.cases.linking) ---------------------------------

SuggestionId = Annotated[int, PathParam(ge=1, le=2_147_483_647)]


@router.post("/cases/{case_id}/merge")
def merge(
    case_id: CaseId,
    request: Request,
    user: Writer,
    other: Annotated[int, Form(ge=1, le=2_147_483_647)],
) -> Any:
    """ "Same person": the other case's posts join this one."""
    from listener.cases.linking import merge_cases

    merge_cases(_app(request), case_id, other, user.username)
    flash(request, "ok", f"case #{other} merged into case #{case_id}: one customer")
    return _to_case(case_id)


@router.post("/links/{suggestion_id}/accept")
def accept_link(suggestion_id: SuggestionId, request: Request, user: Writer) -> Any:
    from listener.cases.linking import accept_suggestion

    done = accept_suggestion(_app(request), suggestion_id, user.username)
    flash(request, "ok", f"suggestion accepted: one customer, case #{done['id']}")
    return _to_case(int(done["id"]))


@router.post("/links/{suggestion_id}/reject")
def reject_link(
    suggestion_id: SuggestionId,
    request: Request,
    user: Writer,
    case: Annotated[int | None, Form(ge=1, le=2_147_483_647)] = None,
) -> Any:
    from listener.cases.linking import reject_suggestion

    done = reject_suggestion(_app(request), suggestion_id, user.username)
    flash(request, "ok", f"suggestion {suggestion_id} rejected: not the same customer")
    return _to_case(case or int(done["case_id"]))


SNOOZE_CHOICES = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
}


@router.post("/cases/{case_id}/snooze")
def snooze(
    case_id: CaseId,
    request: Request,
    user: Writer,
    for_: Annotated[str, Form(alias="for", max_length=10)] = "4h",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Any:
    delta = SNOOZE_CHOICES.get(for_)
    if delta is None:
        raise ListenerError(f"snooze for one of: {', '.join(SNOOZE_CHOICES)}")
    until = utcnow() + delta
    actions.snooze(_app(request), case_id, user.username, until, note=note)
    return _onward(request, user, case_id, f"case #{case_id} snoozed until {fmt_ts(until)}")


@router.post("/cases/{case_id}/wake")
def wake(case_id: CaseId, request: Request, user: Writer) -> Any:
    actions.snooze(_app(request), case_id, user.username, None)
    flash(request, "ok", f"case #{case_id} is back in the queue")
    return _to_case(case_id)


@router.post("/cases/{case_id}/resolve")
def resolve(
    case_id: CaseId,
    request: Request,
    user: Writer,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Any:
    actions.resolve(_app(request), case_id, user.username, note.strip() or None)
    return _onward(request, user, case_id, f"case #{case_id} resolved")


@router.post("/cases/{case_id}/sent")
def mark_sent(
    case_id: CaseId, request: Request, user: Writer, url: Annotated[str, Form(max_length=2000)] = ""
) -> Any:
    actions.mark_sent(_app(request), case_id, user.username, url or None)
    flash(request, "ok", f"case #{case_id} marked as sent")
    return _to_case(case_id)


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
    correct_label(_app(request), mention_id, user.username, unhappy=flag, category=category or None)
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
    until = utcnow()
    since = until - timedelta(days=days)
    app = _app(request)
    data = team_report(app, since, until)
    currency = data["currency"]
    return render(
        request,
        "report.html",
        data=data,
        window=window,
        windows=list(WINDOWS),
        since=since,
        until=until,
        columns=[heading for heading, _, _ in TABLE_COLUMNS],
        by_agent=table_rows(data["by_agent"], "agent", currency),
        by_category=table_rows(data["by_category"], "category", currency),
    )
