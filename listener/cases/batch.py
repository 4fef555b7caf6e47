"""A batch's reads, looked up once: what triage asks of the database for each post.

The set-based storing path (``polling.store_in_bulk``) triages a batch post by
post through the pipeline's one triage hook, so every rule stays in one place.
The reads those rules make for each post — the customer's linked accounts
(:func:`listener.cases.linking.customer_ids`), their open case in the repeat
window (the pipeline's ``_open_case_for``), their earlier cases
(:func:`listener.cases.offering.earlier_cases`), a case's posts and link keys
(:func:`listener.cases.linking.suggest_links`) — are fetched here for the whole
batch in a few statements, and those same functions consult this object before
they query.  Whatever it does not know (an author outside the batch, a window
wider than the one fetched) they still read from the database, so an answer is
always the one the query would give.

It is installed on the batch's session (:func:`reading`) and removed after the
batch; the cases triage opens or changes meanwhile are told to it
(:meth:`BatchReads.saw`), which keeps it equal to the database the queries
would see inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, inspect, select, text, tuple_
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.attributes import set_committed_value

from listener import models as m
from listener.cases.status import WORKABLE, CaseStatus
from listener.clock import utcnow
from listener.db import insert_rows, update_rows
from listener.understanding import Understanding

if TYPE_CHECKING:
    from listener.readahead import Ahead

_KEY = "listener.batch_reads"
#: ids per IN list (well under SQLite's and PostgreSQL's bound-parameter limits)
_CHUNK = 500
#: a case in these states is not the customer's open case (``_open_case_for``)
_NOT_OPEN = frozenset({CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.MERGED})


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class BatchReads:
    """The batch's customers, their cases that may be open, their recent cases, and the
    posts and link keys of the cases the batch opened (see the module docs)."""

    def __init__(
        self,
        session: Session,
        authors: Iterable[m.Author],
        *,
        open_since: datetime,
        created_since: datetime,
    ) -> None:
        self.open_since = open_since
        self.created_since = created_since
        # link candidates from before the batch, as the evidence check sees them (their
        # posts loaded once; dropped when a post joins one, or a part updates authors)
        self._sides: dict[int, Any] = {}
        self._group: dict[int, list[int]] = {}
        self._cases: dict[int, dict[int, m.Case]] = {}
        self._created: dict[int, set[int]] = {}
        self.add_authors(session, authors)
        # the posts and link keys of the cases opened in this batch (none in the database yet)
        self._posts: dict[int, dict[int, m.Mention]] = {}
        # the posts this batch added to any case (not in the database until the flush)
        self._joined: dict[int, dict[int, m.Mention]] = {}
        self._keys: dict[int, set[tuple[str, str]]] = {}
        # what each post says (listener.understanding), read once for triage and the draft
        self._understood: dict[tuple[int, str | None], Understanding] = {}
        # the readings sent ahead to another process (listener.readahead)
        self.ahead: Ahead | None = None
        # link keys: the index entries the batch's cases may look up, and their cases
        self._lookups: set[tuple[str, str]] = set()
        self._linked: dict[tuple[str, str], set[int]] = {}
        self._link_cases: dict[int, m.Case] = {}
        # the link suggestions this batch made between cases it opened
        self._suggested: set[tuple[int, int]] = set()
        # the audit events triage and drafting recorded (record_event), in order
        self.events: list[dict[str, Any]] = []
        # the link keys of the cases opened here, not inserted yet (add_link_keys)
        self.link_keys: list[dict[str, Any]] = []
        # the case ids triage gave posts (mention id → case id), not written yet (attach)
        self.case_ids: dict[int, int] = {}
        # cases from before the batch that posts joined: their link keys and their first
        # post's time, read once (a blog's posts join one long-running case one by one)
        self._old_keys: dict[int, set[tuple[str, str]]] = {}
        self._first_at: dict[int, datetime] = {}

    def add_authors(self, session: Session, authors: Iterable[m.Author]) -> None:
        """Look up what triage asks of ``authors`` that this object does not know yet: their
        linked accounts, the cases that may be open for any of them (not closed, a post since
        ``open_since``) and their cases created since ``created_since``.

        A poll stored in parts (``polling.classify_part``) keeps one object for all its
        parts, in one transaction: each part adds its authors, and the cases earlier parts
        opened or changed stay known (:meth:`saw`), so a later part reads them from here."""
        self._sides.clear()  # a part's upsert may have changed an author's details
        batch = {a.id: a for a in authors if a.id not in self._group}
        if not batch:
            return
        # customers: every account of each batch author's person
        linked = sorted({a.customer_id for a in batch.values() if a.customer_id is not None})
        members: dict[int, set[int]] = {}
        for chunk in _chunks(linked):
            linked_rows = session.execute(
                select(m.Author.id, m.Author.customer_id).where(m.Author.customer_id.in_(chunk))
            )
            for author_id, customer in linked_rows:
                if customer is not None:
                    members.setdefault(customer, set()).add(author_id)
        for a in batch.values():
            if a.customer_id is None:
                self._group[a.id] = [a.id]
            else:
                self._group[a.id] = sorted({a.id, *members.get(a.customer_id, ())})
        # only the accounts not looked up before (a case of a known one is known, or was
        # told to saw()); _cases and _created always have the same accounts
        everyone = sorted({i for a in batch for i in self._group[a]} - self._cases.keys())
        # the cases that may be someone's open case: not closed, a post in the window
        for i in everyone:
            self._cases[i] = {}
            self._created[i] = set()
        for chunk in _chunks(everyone):
            for case in session.scalars(
                select(m.Case).where(
                    m.Case.author_id.in_(chunk),
                    m.Case.status.not_in(tuple(_NOT_OPEN)),
                    m.Case.last_mention_at >= self.open_since,
                )
            ):
                self._cases[case.author_id][case.id] = case
        # earlier cases: the ids of each author's cases created in the caps' period
        for chunk in _chunks(everyone):
            created_rows = session.execute(
                select(m.Case.id, m.Case.author_id).where(
                    m.Case.author_id.in_(chunk), m.Case.created_at >= self.created_since
                )
            )
            for case_id, author_id in created_rows:
                self._created[author_id].add(case_id)

    # -- what triage tells it -------------------------------------------------------

    def saw(self, case: m.Case, mention: m.Mention | None = None, *, opened: bool = False) -> None:
        """``case`` was opened (``opened``) or changed by this batch; ``mention`` joined it."""
        cases = self._cases.get(case.author_id)
        if cases is not None:
            cases[case.id] = case
        created = self._created.get(case.author_id)
        if (
            created is not None
            and case.created_at is not None
            and case.created_at >= self.created_since
        ):
            created.add(case.id)
        if opened:
            self._posts[case.id] = {}
            self._keys[case.id] = set()
        posts = self._posts.get(case.id)
        if posts is not None and mention is not None:
            posts[mention.id] = mention
        if mention is not None:
            self._joined.setdefault(case.id, {})[mention.id] = mention
            self._sides.pop(case.id, None)
            first = self._first_at.get(case.id)
            if first is not None and mention.published_at < first:
                self._first_at[case.id] = mention.published_at

    def side(self, case_id: int) -> Any:
        """A link candidate's evidence side (:func:`listener.cases.linking._side`) as
        kept by :meth:`keep_side`; None: not kept, or changed since."""
        return self._sides.get(case_id)

    def keep_side(self, case_id: int, side: Any) -> None:
        self._sides[case_id] = side

    def first_post_at(self, case_id: int) -> datetime | None:
        """When the first post of a case from before the batch was published, as read
        once (:meth:`remember_first`) and kept up to date with the posts that joined it
        since (None: not read yet)."""
        return self._first_at.get(case_id)

    def remember_first(self, case_id: int, at: datetime) -> None:
        self._first_at[case_id] = at

    def old_keys(self, case_id: int) -> set[tuple[str, str]] | None:
        """The link keys of a case from before the batch, as read once and extended with
        the ones this batch added (None: not read yet)."""
        keys = self._old_keys.get(case_id)
        return None if keys is None else set(keys)

    def remember_keys(self, case_id: int, keys: Iterable[tuple[str, str]]) -> None:
        self._old_keys[case_id] = set(keys)

    def indexed(self, case_id: int, keys: Iterable[tuple[str, str]], case: m.Case) -> None:
        """``keys`` were stored for ``case`` by this batch."""
        keys = set(keys)
        if case_id in self._keys:
            self._keys[case_id] |= keys
        self._link_cases[case_id] = case
        for key in keys:
            self._linked.setdefault(key, set()).add(case_id)

    def fetch_link_keys(self, session: Session, lookups: Iterable[tuple[str, str]]) -> None:
        """The ``link_keys`` entries equal to ``lookups`` (the keys the batch's cases may
        look up, :func:`listener.cases.linking.lookup_keys`) and their cases."""
        pairs = sorted(set(lookups))
        for chunk in _chunks(pairs):
            rows = session.execute(
                select(m.LinkKey.case_id, m.LinkKey.kind, m.LinkKey.value).where(
                    tuple_(m.LinkKey.kind, m.LinkKey.value).in_(chunk)
                )
            )
            for case_id, kind, value in rows:
                self._linked.setdefault((kind, value), set()).add(case_id)
        wanted = sorted({i for ids in self._linked.values() for i in ids} - set(self._link_cases))
        for chunk in _chunks(wanted):
            for case in session.scalars(select(m.Case).where(m.Case.id.in_(chunk))):
                self._link_cases[case.id] = case
        self._lookups |= set(pairs)

    def read(self, mention: m.Mention, category: str | None, understood: Understanding) -> None:
        """Triage read ``mention`` (as :func:`listener.cases.offering.understand_mention`)."""
        self._understood[(mention.id, category)] = understood

    # -- what the triage functions ask -----------------------------------------------

    def customer_ids(self, author: m.Author) -> list[int] | None:
        """:func:`listener.cases.linking.customer_ids` (None: not a batch author)."""
        group = self._group.get(author.id)
        return None if group is None else list(group)

    def open_case(self, author_ids: Sequence[int], since: datetime) -> tuple[bool, m.Case | None]:
        """``_open_case_for``: (known, the newest case not closed with a post since ``since``)."""
        if since < self.open_since or any(i not in self._cases for i in author_ids):
            return False, None
        best: m.Case | None = None
        for i in author_ids:
            for case in self._cases[i].values():
                if case.status in _NOT_OPEN or case.last_mention_at is None:
                    continue
                if case.last_mention_at < since:
                    continue
                if best is None or case.id > best.id:
                    best = case
        return True, best

    def earlier_cases(self, author_id: int, case_id: int, since: datetime) -> int | None:
        """:func:`listener.cases.offering.earlier_cases` (None: not known here)."""
        created = self._created.get(author_id)
        if created is None or since != self.created_since:
            return None
        return len(created - {case_id})

    def understood(self, mention: m.Mention, category: str | None) -> Understanding | None:
        """What triage read ``mention`` to say (None: not read in this batch)."""
        return self._understood.get((mention.id, category))

    def link_candidates(
        self,
        case_id: int,
        wanted: Iterable[tuple[str, str]],
        *,
        since: datetime,
        group: Sequence[int],
        limit: int,
    ) -> list[int] | None:
        """:func:`listener.cases.linking.suggest_links`' candidates: workable cases of other
        people with a post since ``since`` indexed under one of ``wanted`` (None: a key
        the batch did not fetch)."""
        wanted = set(wanted)
        if not wanted <= self._lookups:
            return None
        ids: set[int] = set()
        for key in wanted:
            for other in self._linked.get(key, ()):
                case = self._link_cases.get(other)
                if case is None:
                    return None
                if (
                    other != case_id
                    and case.status in WORKABLE
                    and case.last_mention_at is not None
                    and case.last_mention_at >= since
                    and case.author_id not in group
                ):
                    ids.add(other)
        return sorted(ids)[:limit]

    def posts_of(self, case_id: int) -> list[m.Mention] | None:
        """The posts of a case this batch opened, in id order (None: another case)."""
        posts = self._posts.get(case_id)
        return None if posts is None else [posts[i] for i in sorted(posts)]

    def opened_cases(self, ids: Sequence[int]) -> list[m.Case] | None:
        """The cases ``ids``, when this batch opened every one of them (None: not all)."""
        if not all(i in self._posts and i in self._link_cases for i in ids):
            return None
        return [self._link_cases[i] for i in ids]

    def suggest(self, pair: tuple[int, int]) -> bool:
        """Whether the pair is new to this batch's link suggestions (and remember it)."""
        if pair in self._suggested:
            return False
        self._suggested.add(pair)
        return True

    def joined(self, case_id: int) -> list[m.Mention]:
        """The posts this batch added to the case (opened here or not)."""
        return list(self._joined.get(case_id, {}).values())

    def keys_of(self, case_id: int) -> set[tuple[str, str]] | None:
        """The link keys stored for a case this batch opened (None: another case)."""
        keys = self._keys.get(case_id)
        return None if keys is None else set(keys)

    def opened_here(self, case_id: int) -> bool:
        """Whether this batch opened the case (no other transaction can see it yet)."""
        return case_id in self._posts


def batch_of(session: Session) -> BatchReads | None:
    """The reads of the batch ``session`` is storing, if it stores one set-based."""
    reads = session.info.get(_KEY)
    return reads if isinstance(reads, BatchReads) else None


_IDS = "listener.reserved_ids"
#: ids drawn from a PostgreSQL sequence at a time by :func:`reserve_id`
_ID_BLOCK = 64


def _new_ids(session: Session, table: Any, count: int, after: int = 0) -> list[int] | None:
    """Ids the database would give the next ``count`` rows of ``table``, in order, none at
    or below ``after`` (None: this database numbers its own rows)."""
    conn = session.connection()
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # a rowid table without AUTOINCREMENT numbers a row max(id) + 1; this transaction
        # holds SQLite's write lock, so nobody else inserts in between
        top = max(conn.execute(select(func.max(table.c.id))).scalar() or 0, after)
        return list(range(top + 1, top + 1 + count))
    if dialect == "postgresql":
        # the values the column's default would draw from the same sequence
        rows = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": count},
        )
        return sorted(int(v) for (v,) in rows)
    return None


def reserve_id(session: Session, model: type[m.Base]) -> int | None:
    """The id for one new row of ``model`` that is added to the session now and inserted
    with the next flush, together with the others (None: insert it to learn its id).

    On SQLite the next id above both the table's rows and the ids this session reserved
    (a row the database numbers itself is flushed before any reserved after it); on
    PostgreSQL the next value of the table's own sequence, drawn in blocks."""
    table: Any = model.__table__
    state: dict[str, list[int]] = session.info.setdefault(_IDS, {})
    if session.get_bind().dialect.name == "postgresql":
        block = state.setdefault(table.name, [])
        if not block:
            block.extend(reversed(_new_ids(session, table, _ID_BLOCK) or []))
        return block.pop() if block else None
    ids = reserve_ids(session, model, 1)
    return ids[0] if ids else None


def add_numbered(session: Session, row: m.Base) -> None:
    """Add a new ``row`` with its id set now (:func:`reserve_id`), to be inserted with the
    next flush together with the rest; where the database must number it, flush now."""
    ident = reserve_id(session, type(row))
    session.add(row)
    if ident is None:
        session.flush()
    else:
        row.id = ident  # type: ignore[attr-defined]


def reserve_ids(session: Session, model: type[m.Base], count: int) -> list[int] | None:
    """:func:`reserve_id` for ``count`` rows at once, in order."""
    table: Any = model.__table__
    if session.get_bind().dialect.name != "sqlite":
        return _new_ids(session, table, count)
    state: dict[str, list[int]] = session.info.setdefault(_IDS, {})
    if _FLUSHES not in session.info:
        session.info[_FLUSHES] = 0
        event.listen(session, "after_flush", _count_flush)
    flushes = session.info[_FLUSHES]
    # [last id reserved, flushes then]: the table is read again only after a flush (a row
    # numbered by the database since then may stand above the last reserved)
    last = state.get(table.name)
    if last is not None and last[1] == flushes:
        ids = list(range(last[0] + 1, last[0] + 1 + count))
    else:
        ids = _new_ids(session, table, count, after=last[0] if last is not None else 0) or []
    if ids:
        state[table.name] = [ids[-1], flushes]
    return ids


_FLUSHES = "listener.flushes"


def _count_flush(session: Session, _context: Any) -> None:
    session.info[_FLUSHES] = session.info.get(_FLUSHES, 0) + 1


def _number_events(session: Session, _context: Any, _instances: Any) -> None:
    """Before a flush: number the pending events as the database would, in the order they
    were added, so the flush inserts them together (no RETURNING, one statement)."""
    pending = [o for o in session.new if isinstance(o, m.Event) and o.id is None]
    if not pending:
        return
    pending.sort(key=lambda o: inspect(o).insert_order)
    ids = _new_ids(session, m.Event.__table__, len(pending))
    if ids is None:
        return
    for row, ident in zip(pending, ids, strict=True):
        row.id = ident


_EVENT_COLUMNS = ("actor", "kind", "case_id", "mention_id", "source_id", "at", "data")


def record_event(session: Session, **values: Any) -> None:
    """Add an audit event (:class:`listener.models.Event`'s columns as keywords).

    While a set-based batch is stored (:func:`reading`) it is kept as a plain row and
    inserted with the batch's others, in the order recorded, when the batch's triage is
    done: nothing reads the audit log while a batch is stored, and thousands of events
    then cost one ``executemany`` instead of an ORM object and a flush each.  Otherwise
    it is added to the session as usual."""
    reads = batch_of(session)
    if reads is None:
        session.add(m.Event(**values))
        return
    unknown = set(values) - set(_EVENT_COLUMNS)
    if unknown:
        raise TypeError(f"Event has no column {sorted(unknown)[0]!r}")
    reads.events.append(values)


def add_link_keys(session: Session, case_id: int, keys: Sequence[tuple[str, str]]) -> None:
    """Index a case opened in this transaction under ``keys`` (none of which it has yet).

    While a set-based batch is stored they are plain rows, inserted together after the
    cases they name (:func:`write_pending`): a batch opens thousands of cases with a few
    keys each, and an ORM object per key cost its share of every flush.  The batch's
    link reads (:meth:`BatchReads.indexed`) know them meanwhile."""
    reads = batch_of(session)
    if reads is None:
        session.add_all(m.LinkKey(case_id=case_id, kind=k, value=v) for k, v in keys)
        return
    reads.link_keys.extend({"case_id": case_id, "kind": k, "value": v} for k, v in keys)


def first_post_of(session: Session, case_id: int) -> datetime | None:
    """When the first post of case ``case_id`` was published (None: it has none).  In a
    batch, read once per case and kept current as posts join it (:meth:`BatchReads.saw`)."""
    reads = batch_of(session)
    first = reads.first_post_at(case_id) if reads is not None else None
    if first is None:
        first = session.scalar(
            select(func.min(m.Mention.published_at)).where(m.Mention.case_id == case_id)
        )
        if reads is not None and first is not None:
            reads.remember_first(case_id, first)
    return first


def attach(session: Session, mention: m.Mention, case_id: int) -> None:
    """``mention`` joins the case ``case_id``.

    While a set-based batch is stored (:func:`reading`) the new case id is the post's
    committed value and a plain row kept aside, written in one statement for the batch's
    posts (:func:`write_case_ids`): with every flush, and before any ORM query that would
    have flushed it, so what SQL sees is what the ORM's own flush of the change showed
    (a batch attaches thousands of posts, and the flush's bookkeeping per changed object
    was a tenth of its storing time).  Otherwise the attribute is set as usual."""
    reads = batch_of(session)
    if reads is None:
        mention.case_id = case_id
        return
    set_committed_value(mention, "case_id", case_id)
    reads.case_ids[mention.id] = case_id


def write_case_ids(session: Session) -> None:
    """Write the case ids :func:`attach` kept aside (their cases are in the database)."""
    reads = batch_of(session)
    if reads is None or not reads.case_ids:
        return
    rows, reads.case_ids = reads.case_ids, {}
    update_rows(session, m.Mention.__table__, "case_id", rows)


def _after_flush(session: Session, _context: Any) -> None:
    write_case_ids(session)  # every case a kept id names is in the database now


def _before_query(state: ORMExecuteState) -> None:
    """Before an ORM statement that autoflushes: the kept case ids, as the autoflush of
    the changed posts would have written them."""
    session = state.session
    reads = batch_of(session)
    if reads is None or not reads.case_ids or not session.autoflush:
        return
    if not state.is_orm_statement or (state.is_select and not state.load_options._autoflush):
        return
    session.flush()  # the cases they name (the flush writes the ids too)
    write_case_ids(session)


def write_pending(session: Session) -> None:
    """Insert the batch's link keys kept as rows (after flushing the cases they name), and
    write the posts' kept case ids, so that SQL sees them: called before any query of
    ``link_keys`` in a batch and when its triage is done."""
    reads = batch_of(session)
    if reads is None or not (reads.link_keys or reads.case_ids):
        return
    rows, reads.link_keys = reads.link_keys, []
    session.flush()
    write_case_ids(session)
    insert_rows(session, m.LinkKey.__table__, rows)


def _insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    defaults: dict[str, Any] = dict.fromkeys(_EVENT_COLUMNS)
    full = [{**defaults, **row} for row in rows]
    for row in full:  # the model's defaults
        if row["data"] is None:
            row["data"] = {}
        if row["at"] is None:
            row["at"] = utcnow()
    insert_rows(session, m.Event.__table__, full)


@contextmanager
def reading(session: Session, reads: BatchReads) -> Iterator[BatchReads]:
    """Install ``reads`` on ``session`` for the batch (removed after it, whatever happens).

    Meanwhile the session's flushes number new events before inserting them
    (:func:`_number_events`): the audit log's rows go out in bulk, not one by one; the
    events recorded with :func:`record_event` are inserted when the block ends without
    an error (after everything they name is flushed)."""
    session.info[_KEY] = reads
    event.listen(session, "before_flush", _number_events)
    event.listen(session, "after_flush_postexec", _after_flush)
    event.listen(session, "do_orm_execute", _before_query)
    try:
        yield reads
        write_pending(session)
        session.flush()
        _insert_events(session, reads.events)
    finally:
        reads.events = []
        reads.link_keys = []
        reads.case_ids = {}
        event.remove(session, "before_flush", _number_events)
        event.remove(session, "after_flush_postexec", _after_flush)
        event.remove(session, "do_orm_execute", _before_query)
        session.info.pop(_KEY, None)
