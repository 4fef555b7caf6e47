"""Marketing's dashboard: any date range against the previous period, share of voice, top
terms and emerging topics, drill-down to the posts (linked to their originals), CSV, SVG
and PNG exports — and the same data in the JSON API.

Handlers are thin: the numbers come from :mod:`listener.insight` (rollups) and the posts
from :mod:`listener.web.queries`; the charts' geometry from :mod:`listener.web.charts`.

Ranges are whole UTC days: ``window`` (``1d`` today, ``7d``, ``30d``, ``90d`` — up to and
including today) or ``from``/``to`` (``YYYY-MM-DD``, inclusive, at most 400 days).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from listener import insight
from listener.auth import Principal
from listener.clock import utcnow
from listener.errors import ListenerError
from listener.web import charts, queries
from listener.web.security import current_user

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["api"])
User = Annotated[Principal, Depends(current_user)]

WINDOWS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}
MAX_DAYS = 400
CHARTS = ("volume", "sentiment", "sources", "categories", "voice")
DAY = timedelta(days=1)


# ---------------------------------------------------------------------------
# parameters (pure)


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ListenerError(f"{name}: not a date (YYYY-MM-DD): {value!r}") from None


def date_range(
    window: str | None, from_: str | None, to: str | None, now: datetime
) -> tuple[datetime, datetime, str]:
    """[since, until) in whole UTC days, and the window name ('custom' for from/to)."""
    today = now.astimezone(UTC).date()
    if (from_ or to) and window in (None, "", "custom"):
        end = _day(to, "to") if to else today
        start = _day(from_, "from") if from_ else end - timedelta(days=29)
        if start > end:
            raise ListenerError("from: the range starts after it ends")
        if (end - start).days + 1 > MAX_DAYS:
            raise ListenerError(f"the range is longer than {MAX_DAYS} days")
        name = "custom"
    else:
        name = window if window in WINDOWS else "30d"
        end = today
        start = end - timedelta(days=WINDOWS[name] - 1)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    until = datetime(end.year, end.month, end.day, tzinfo=UTC) + DAY
    return since, until, name


def mention_filter(
    window: str | None = "30d",
    source: str | None = None,
    category: str | None = None,
    label: str | None = None,
    author: str | None = None,
    bucket: str | None = None,
    q: str | None = None,
    *,
    from_: str | None = None,
    to: str | None = None,
    terms: tuple[str, ...] = (),
    now: datetime | None = None,
) -> queries.MentionFilter:
    """The posts a chart point (or a search) stands for."""
    since, until, _name = date_range(window, from_, to, now or utcnow())
    if bucket:
        try:
            queries.bucket_range(bucket)
        except ValueError:
            raise ListenerError(f"bad bucket {bucket!r}") from None
    return queries.MentionFilter(
        since=since,
        until=until,
        source=source or None,
        category=category or None,
        label=label or None,
        author=author or None,
        bucket=bucket or None,
        q=q or None,
        terms=terms,
    )


class Params:
    """The dashboard's query string, parsed once per request."""

    def __init__(
        self,
        window: Annotated[str | None, Query(max_length=6)] = None,
        from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
        to: Annotated[str | None, Query(max_length=10)] = None,
        source: Annotated[str | None, Query(max_length=200)] = None,
        category: Annotated[str | None, Query(max_length=100)] = None,
    ) -> None:
        self.since, self.until, self.window = date_range(window, from_, to, utcnow())
        self.from_, self.to = from_ or "", to or ""
        self.source = source or None
        self.category = category or None

    @property
    def period(self) -> insight.Period:
        return insight.Period.of(self.since, self.until, utcnow())

    @property
    def scope(self) -> insight.Scope:
        return insight.Scope(self.source, self.category)

    def link(self, **extra: str | None) -> dict[str, str]:
        """Query parameters that keep this range and these filters."""
        base: dict[str, str | None] = (
            {"from": self.since.date().isoformat(), "to": (self.until - DAY).date().isoformat()}
            if self.window == "custom"
            else {"window": self.window}
        )
        base.update(source=self.source, category=self.category)
        base.update(extra)
        return {k: v for k, v in base.items() if v}


DashParams = Annotated[Params, Depends()]


def _range_of_bucket(key: str, size: str) -> dict[str, str]:
    """Drill-down parameters for one bucket of a volume chart."""
    if size == "hour":
        return {"from": key[:10], "to": key[:10], "bucket": key}
    if size == "week":
        start = date.fromisoformat(key)
        return {"from": key, "to": (start + timedelta(days=6)).isoformat()}
    return {"from": key, "to": key}


def _hrefs(p: Params, data: dict[str, Any]) -> dict[str, charts.Href]:
    """Where each bar of each chart links: the posts behind it (query strings built once
    per bar, not per segment: a 90-day chart has hundreds)."""
    size = data["bucket"]
    scope = urlencode({k: v for k, v in {"source": p.source, "category": p.category}.items() if v})
    prefix: dict[tuple[str, str], str] = {}

    def posts(params: Mapping[str, str | None]) -> str:
        return "/mentions?" + urlencode({k: v for k, v in params.items() if v})

    def volume(row: dict[str, Any], s: str) -> str:
        base = prefix.get(("v", row["key"]))
        if base is None:
            part = urlencode(_range_of_bucket(row["key"], size))
            base = prefix[("v", row["key"])] = "/mentions?" + "&".join(
                x for x in (scope, part) if x
            )
        return f"{base}&label={s}"

    def by(dim: str) -> charts.Href:
        def href(row: dict[str, Any], s: str) -> str:
            base = prefix.get((dim, row["key"]))
            if base is None:
                value = None if dim == "category" and row["key"] == "none" else row["key"]
                base = prefix[(dim, row["key"])] = posts(p.link(**{dim: value}))
            return f"{base}&label={s}"

        return href

    return {
        "volume": volume,
        "sources": by("source"),
        "categories": by("category"),
        "voice": lambda row, s: posts(p.link(brand=row["brand"])),
    }


def _charts(p: Params, data: dict[str, Any]) -> dict[str, charts.Chart]:
    href = _hrefs(p, data)
    return {
        "volume": charts.stacked_columns(data["volume"], href["volume"], previous=True),
        "sentiment": charts.stacked_columns(data["volume"], href["volume"], share=True, height=170),
        "sources": charts.stacked_bars(data["by_source"], href["sources"]),
        "categories": charts.stacked_bars(data["by_category"], href["categories"]),
        "voice": charts.share_bars(data["share_of_voice"]["brands"], href["voice"]),
    }


def _chart_rows(name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    if name in ("volume", "sentiment"):
        return list(data["volume"])
    if name == "sources":
        return list(data["by_source"])
    if name == "categories":
        return list(data["by_category"])
    return [
        {"key": b["brand"], "counts": {}, "total": b["n"], "previous": b["previous"]}
        for b in data["share_of_voice"]["brands"]
    ]


# ---------------------------------------------------------------------------
# pages


def _app(request: Request) -> Any:
    return request.app.state.listener


@router.get("/dashboard")
def dashboard_page(
    request: Request, user: User, p: DashParams, terms: Annotated[str, Query(max_length=1)] = ""
) -> HTMLResponse:
    """The charts come from the rollups; the top terms (read from posts) are filled in by
    ``dashboard.js`` from ``/dashboard/terms.json``, or inline with ``terms=1`` (no script)."""
    from listener.web.pages import render

    app = _app(request)
    period = p.period
    data = insight.dashboard(app, period, p.scope)
    words = cached_terms(request, period, p.scope) if terms == "1" else None
    return render(
        request,
        "dashboard.html",
        data=data,
        words=words,
        p=p,
        windows=list(WINDOWS),
        charts=_charts(p, data),
        facets=queries.queue_facets(app, request.app.state.cache),
        link=p.link(),
        series=charts.SERIES,
        config_sample=app.settings.dashboard.term_sample,
    )


TERMS_TTL = 60.0  #: seconds a range's top terms are reused (they come from a sample anyway)


def cached_terms(request: Request, period: insight.Period, scope: insight.Scope) -> dict[str, Any]:
    """Top terms and emerging topics, kept ``TERMS_TTL`` seconds per range and filter."""
    import time

    cache = request.app.state.cache
    key = ("terms", period, scope)
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < TERMS_TTL:
        return hit[1]  # type: ignore[no-any-return]
    value = insight.terms(_app(request), period, scope)
    if len([k for k in cache if isinstance(k, tuple) and k[:1] == ("terms",)]) > 64:
        for k in [k for k in cache if isinstance(k, tuple) and k[:1] == ("terms",)]:
            cache.pop(k, None)
    cache[key] = (time.monotonic(), value)
    return value


@router.get("/dashboard/terms.json")
def terms_json(request: Request, user: User, p: DashParams) -> dict[str, Any]:
    """Top terms and emerging topics of the range (what the dashboard's terms panel shows)."""
    return cached_terms(request, p.period, p.scope)


@router.get("/dashboard/chart/{name}.{fmt}")
def chart_export(request: Request, user: User, name: str, fmt: str, p: DashParams) -> Response:
    """One chart as a standalone SVG file or its data as CSV."""
    if name not in CHARTS or fmt not in ("svg", "csv"):
        raise ListenerError(f"no chart {name}.{fmt} (charts: {', '.join(CHARTS)}; svg or csv)")
    data = insight.dashboard(_app(request), p.period, p.scope)
    stem = f"{name}-{p.since:%Y%m%d}-{(p.until - DAY):%Y%m%d}"
    if fmt == "csv":
        header, rows = charts.csv_rows(_chart_rows(name, data))
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows([[csv_safe(v) for v in r] for r in rows])
        return Response(
            buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
        )
    chart = _charts(p, data)[name]
    return Response(
        str(charts.svg(chart, name, name, standalone_title=_title(name, p, data))),
        media_type="image/svg+xml",
        headers={
            "Content-Disposition": f'attachment; filename="{stem}.svg"',
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


def _title(name: str, p: Params, data: dict[str, Any]) -> str:
    what = {
        "volume": f"Mentions per {data['bucket']}",
        "sentiment": f"Sentiment share per {data['bucket']}",
        "sources": "Mentions by source",
        "categories": "Mentions by category",
        "voice": "Share of voice",
    }[name]
    scope = " · ".join(x for x in (p.source, p.category) if x)
    return f"{what}, {p.since:%Y-%m-%d} – {(p.until - DAY):%Y-%m-%d}" + (
        f" · {scope}" if scope else ""
    )


class _Filter:
    """The drill-down's query string."""

    def __init__(
        self,
        request: Request,
        window: Annotated[str | None, Query(max_length=6)] = None,
        from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
        to: Annotated[str | None, Query(max_length=10)] = None,
        source: Annotated[str | None, Query(max_length=200)] = None,
        category: Annotated[str | None, Query(max_length=100)] = None,
        label: Annotated[str | None, Query(max_length=20)] = None,
        author: Annotated[str | None, Query(max_length=200)] = None,
        bucket: Annotated[str | None, Query(max_length=13)] = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        brand: Annotated[str | None, Query(max_length=200)] = None,
    ) -> None:
        terms: tuple[str, ...] = ()
        if brand:
            from listener.rollups import brand_terms

            found = [t for n, t, _x in brand_terms(_app(request).settings).brands if n == brand]
            if not found:
                raise ListenerError(f"no brand {brand!r} in share of voice")
            terms = found[0]
        self.brand = brand or None
        self.f = mention_filter(
            window, source, category, label, author, bucket, q, from_=from_, to=to, terms=terms
        )


MFilter = Annotated[_Filter, Depends()]
PER_PAGE = 100


def _for(app: Any, user: Principal, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as ``user`` may see it: marketing gets customers' e-mail addresses and coupon
    codes masked in the post text, as everywhere else (docs/security.md)."""
    if user.role != "marketing":
        return row
    from listener.cases.audit import mask

    return mask(row, prefix=app.settings.recovery.coupon_prefix)


def mention_page(
    app: Any, f: queries.MentionFilter, page: int, user: Principal | None = None
) -> dict[str, Any]:
    """One page of the posts behind a chart point, newest first, and how many there are
    (as ``user`` may see them)."""
    rows = queries.mention_rows(app, f, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    if user is not None:
        rows = [_for(app, user, r) for r in rows]
    return {"items": rows, "total": queries.count_mentions(app, f), "page": page}


@router.get("/mentions")
def mentions(
    request: Request,
    user: User,
    flt: MFilter,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    from listener.web.pages import _categories, render

    app = _app(request)
    f = flt.f
    found = mention_page(app, f, page, user)
    rows, total = found["items"], found["total"]
    params = {k: v for k, v in dict(request.query_params).items() if k != "page"}
    return render(
        request,
        "mentions.html",
        rows=rows,
        total=total,
        f=f,
        brand=flt.brand,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        qs=urlencode(params),
        categories=_categories(app),
    )


CSV_FIELDS = (
    "id",
    "published_at",
    "source",
    "author",
    "followers",
    "label",
    "unhappy_score",
    "category",
    "case_id",
    "url",
    "text",
)


def csv_safe(value: Any) -> str:
    """A cell value that spreadsheets will not run as a formula."""
    text = (
        "" if value is None else (value.isoformat() if isinstance(value, datetime) else str(value))
    )
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        text = "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@router.get("/mentions.csv")
def mentions_csv(request: Request, user: User, flt: MFilter) -> StreamingResponse:
    app = _app(request)
    f = flt.f

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_FIELDS)
        for raw in queries.iter_mention_rows(app, f):
            row = _for(app, user, raw)
            w.writerow([csv_safe(row.get(k)) for k in CSV_FIELDS])
            if buf.tell() > 64_000:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    name = f"mentions-{f.since:%Y%m%d}-{(f.until - DAY):%Y%m%d}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# ---------------------------------------------------------------------------
# JSON API


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class DashboardOut(_Open):
    """The dashboard's numbers: volume per bucket (with the previous period), by source and
    category, share of voice, top authors, totals and changes."""

    bucket: str
    since: datetime
    until: datetime
    total: int
    volume: list[dict[str, Any]]
    by_source: list[dict[str, Any]]
    by_category: list[dict[str, Any]]
    top_authors: list[dict[str, Any]]


class TermsOut(_Open):
    sampled: int
    top: list[dict[str, Any]]
    emerging: list[dict[str, Any]]


class MentionOut(_Open):
    id: int
    published_at: datetime
    source: str
    author: str
    text: str


class MentionPage(BaseModel):
    items: list[MentionOut]
    total: int
    page: int


@api.get("/dashboard", response_model=DashboardOut)
def api_dashboard(request: Request, user: User, p: DashParams) -> Any:
    """Mention volume and sentiment over a range (``window`` or ``from``/``to``) against the
    previous period, by source and category, share of voice and top authors."""
    return insight.dashboard(_app(request), p.period, p.scope)


@api.get("/dashboard/terms", response_model=TermsOut)
def api_terms(request: Request, user: User, p: DashParams) -> Any:
    """Top terms of the range and the topics emerging against the previous period."""
    return insight.terms(_app(request), p.period, p.scope)


@api.get("/mentions", response_model=MentionPage)
def api_mentions(
    request: Request,
    user: User,
    flt: MFilter,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Any:
    """The posts behind a dashboard point, newest first (100 a page)."""
    return mention_page(_app(request), flt.f, page, user)
