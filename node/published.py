"""What a local actor published for everyone: the items of its outbox, newest first.

The outbox lists one ``Create`` per object the actor published to the public and that
is still public now: an offer's ``Proposal`` and its readable ``Note``, a proposal's
``Question``, the ``Note`` that gives a closed proposal's outcome. That is the shape
Mastodon serves (``Create`` and ``Announce`` only, ``totalItems`` read as the post
count) and the one servers that backfill from outboxes expect; it leaves out

- ``Update``: the ``Create`` embeds the object as it is now, so an ``Update`` would
  add nothing but noise (an open proposal publishes new counts every minute) and would
  inflate the count Mastodon shows as posts;
- ``Delete``: a withdrawn offer's ``Create`` goes with it, so the outbox never
  republishes what the co-op took back (the id still answers ``410`` with a
  ``Tombstone`` for those who knew it);
- anything not addressed to the public (follows and their answers, ballots, subtotals,
  replies to one voter, the answer to an invitation) and any ``Create`` whose object
  is no longer served (a withdrawn offer, an outcome not yet published).

Each item is the ``Create`` as it was delivered (its id, addressing) with the object as
its own id serves it today, so a reader never takes a stale price or count from a page.

An item's position is its row in ``outbox_activities``: pages are cut by row id
(``max_id``/``min_id``, as Mastodon and GoToSocial do), so that activities published or
withdrawn during a walk shift nothing. The size and the pages apply one rule, written
once (:func:`_sources`): the object's id, read from the stored activity, is the id of
an object served now. The body is JSON text that PostgreSQL takes tens of microseconds
to parse, so neither reads every body: the size looks each object served now up in an
index on that id (``ix_outbox_activities_object``), and a page walks the actor's public
``Create`` rows by id (``ix_outbox_activities_public``) and reads only the bodies it
needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement, TextClause

from federation.jsonld import AS_CONTEXT_URL, embedding_coop_terms
from node.catalogue.store import WITHDRAWN
from node.governance import proposing
from node.governance.rules.proposal_input import iso
from node.offers import offering, parse_offer_input, to_note
from node.runtime import Node
from node.storage.tables import (
    PUBLIC_ACTIVITY,
    object_id_of,
    offers,
    outbox_activities,
    proposals,
)
from node.urls import Urls

PAGE_SIZE = 20

# The one activity type the outbox lists (see the module's docstring).
LISTED_TYPE = "Create"

# Rows read at first while a page looks for its items: a page and a bit, as nearly
# every public Create is listed (those of withdrawn offers are the exception). A walk
# that meets many withdrawn offers reads twice as many rows each time, up to the most.
_BATCH = PAGE_SIZE + 5
_MOST_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """Activities newest first, with the ``@context`` they read under; ``newest`` and
    ``oldest`` are the row ids at its ends (the cursors of the pages before and after
    it); ``older`` says whether any listed item is older than this page."""

    items: list[dict[str, Any]]
    context: list[Any]
    newest: int | None
    oldest: int | None
    older: bool


@dataclass(frozen=True, slots=True)
class _Source:
    """Objects served now: rows of ``table`` that meet ``where``, each at its ``uri``
    followed by ``suffix`` (an offer's Note is at the offer's id and "/note")."""

    table: Table
    suffix: str
    where: tuple[ColumnElement[bool], ...]

    def object_ids(self) -> ColumnElement[Any]:
        # Always an expression, even with no suffix: SQLite compares a column with the
        # text affinity of that column, and would then not look the value up in the
        # index on the object id.
        return self.table.c.uri + self.suffix


def _suffix(longer: str, shorter: str) -> str:
    if not longer.startswith(shorter):
        raise ValueError(f"{longer} does not extend {shorter}")
    return longer[len(shorter) :]


def _sources(urls: Urls) -> tuple[_Source, ...]:
    """Every kind of object the node serves to anyone, as each id's own route decides
    (node/web/offers.py, node/web/proposals.py)."""
    live = (offers.c.local == 1, offers.c.status != WITHDRAWN)
    return (
        _Source(offers, "", live),
        _Source(
            offers,
            _suffix(urls.offer_note("k"), urls.offer("k")),
            (*live, offers.c.source.is_not(None)),
        ),
        _Source(proposals, "", ()),
        _Source(
            proposals,
            _suffix(urls.proposal_outcome("k"), urls.proposal("k")),
            (proposals.c.state == proposing.CLOSED,),
        ),
    )


def _public(actor_pk: int) -> tuple[ColumnElement[bool] | TextClause, ...]:
    # The terms of both indexes. ``public = 1`` is written out, not bound: only then
    # may the planner use a partial index.
    return (
        outbox_activities.c.actor_id == actor_pk,
        PUBLIC_ACTIVITY,
        outbox_activities.c.type == LISTED_TYPE,
    )


def count(conn: Connection, urls: Urls, actor_pk: int) -> int:
    """How many items the outbox of the actor ``actor_pk`` lists: for each object
    served now, its public ``Create`` rows of that actor, found in the index."""
    if conn.dialect.name == "postgresql":
        # Thousands of index probes make a high estimate, and PostgreSQL would spend
        # half a second compiling the query (JIT) to save a few milliseconds running it.
        conn.exec_driver_sql("SET LOCAL jit = off")
    total: Any = 0
    for source in _sources(urls):
        creates = (
            select(func.count())
            .select_from(outbox_activities)
            .where(
                *_public(actor_pk), object_id_of(outbox_activities.c.body) == source.object_ids()
            )
            .scalar_subquery()
        )
        per_source = (
            select(func.coalesce(func.sum(creates), 0))
            .select_from(source.table)
            .where(*source.where)
        )
        total = total + per_source.scalar_subquery()
    return int(conn.execute(select(total)).scalar_one())


def _served(conn: Connection, urls: Urls, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are ids of objects served now."""
    wanted = set(ids)
    found: set[str] = set()
    for source in _sources(urls):
        bases = {i.removesuffix(source.suffix) for i in wanted if i.endswith(source.suffix)}
        if bases:
            query = select(source.object_ids()).where(source.table.c.uri.in_(bases), *source.where)
            found.update(conn.execute(query).scalars())
    return found & wanted


def _walk(
    conn: Connection,
    urls: Urls,
    actor_pk: int,
    *,
    after: int | None,
    before: int | None,
    newest_first: bool,
    wanted: int,
) -> list[Any]:
    """Up to ``wanted`` listed rows between the row ids ``after`` and ``before`` (both
    excluded), from one end: the walk reads a batch of the actor's public ``Create``
    rows in order, keeps those whose object is served now, and reads on if it lacks."""
    key = outbox_activities.c.id
    kept: list[Any] = []
    batch = _BATCH
    while len(kept) < wanted:
        query = select(
            key,
            outbox_activities.c.body,
            outbox_activities.c.created_at,
            object_id_of(outbox_activities.c.body).label("object_id"),
        ).where(*_public(actor_pk))
        if after is not None:
            query = query.where(key > after)
        if before is not None:
            query = query.where(key < before)
        query = query.order_by(key.desc() if newest_first else key).limit(batch)
        rows = conn.execute(query).all()
        served = _served(conn, urls, [str(r.object_id) for r in rows if r.object_id])
        kept.extend(r for r in rows if r.object_id in served)
        if len(rows) < batch:
            break
        batch = min(batch * 2, _MOST_BATCH)
        if newest_first:
            before = rows[-1].id
        else:
            after = rows[-1].id
    return kept[:wanted]


def page(
    conn: Connection,
    node: Node,
    actor_pk: int,
    *,
    max_id: int | None = None,
    min_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """Up to ``limit`` items, newest first: those just older than the row ``max_id``,
    or just newer than the row ``min_id``, or the newest of all."""
    urls = node.urls
    if min_id is not None:
        rows = _walk(
            conn, urls, actor_pk, after=min_id, before=None, newest_first=False, wanted=limit
        )
        rows.reverse()
        older = bool(rows) and bool(
            _walk(conn, urls, actor_pk, after=None, before=rows[-1].id, newest_first=True, wanted=1)
        )
    else:
        rows = _walk(
            conn, urls, actor_pk, after=None, before=max_id, newest_first=True, wanted=limit + 1
        )
        older = len(rows) > limit
        rows = rows[:limit]
    items, context = _render(conn, node, rows)
    return Page(
        items=items,
        context=context,
        newest=rows[0].id if rows else None,
        oldest=rows[-1].id if rows else None,
        older=older,
    )


def _render(
    conn: Connection, node: Node, rows: list[Any]
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Each row's ``Create`` with its object as served now, and the page's context."""
    current = _current_objects(conn, node, [str(r.object_id) for r in rows])
    items = []
    contexts: list[Any] = [AS_CONTEXT_URL]
    for row in rows:
        document = current.get(str(row.object_id))
        if document is None:
            continue  # withdrawn between two reads (PostgreSQL reads what is committed)
        stored = json.loads(row.body)
        # A proof or signature over the activity as delivered would not hold over the
        # object as it is now.
        item = {k: v for k, v in stored.items() if k not in ("@context", "proof", "signature")}
        item.setdefault("published", iso(row.created_at))
        item["object"] = {k: v for k, v in document.items() if k != "@context"}
        items.append(item)
        contexts.append(document.get("@context", AS_CONTEXT_URL))
    return items, merge_contexts(contexts)


def merge_contexts(contexts: Iterable[Any]) -> list[Any]:
    """One ``@context`` list holding each entry of ``contexts`` once, in order."""
    merged: list[Any] = []
    for context in contexts:
        for entry in context if isinstance(context, list) else [context]:
            if entry not in merged:
                merged.append(entry)
    return merged


def _current_objects(conn: Connection, node: Node, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents of the public objects ``ids``, as their own ids serve them."""
    urls = node.urls
    note = _suffix(urls.offer_note("k"), urls.offer("k"))
    outcome = _suffix(urls.proposal_outcome("k"), urls.proposal("k"))
    wanted = set(ids)
    bases = wanted | {i.removesuffix(note) for i in ids} | {i.removesuffix(outcome) for i in ids}
    found: dict[str, dict[str, Any]] = {}
    offer_rows = conn.execute(
        select(offers.c.uri, offers.c.document, offers.c.source, offers.c.updated).where(
            offers.c.uri.in_(bases), offers.c.local == 1, offers.c.status != WITHDRAWN
        )
    ).all()
    for row in offer_rows:
        proposal = json.loads(row.document)
        proposal["@context"] = embedding_coop_terms(proposal.get("@context"))
        if row.uri in wanted:
            found[row.uri] = proposal
        if row.uri + note in wanted and row.source is not None:
            found[row.uri + note] = _offer_note(node, row, proposal)
    proposal_rows = conn.execute(select(proposals).where(proposals.c.uri.in_(bases))).mappings()
    for mapping in proposal_rows:
        uri = mapping["uri"]
        if uri in wanted:
            found[uri] = proposing.question(node, mapping)
        if uri + outcome in wanted and mapping["state"] == proposing.CLOSED:
            found[uri + outcome] = proposing.outcome_note(node, mapping)
    return found


def _offer_note(node: Node, row: Any, proposal: dict[str, Any]) -> dict[str, Any]:
    """The readable ``Note`` of one of our offers, as ``/offers/KEY/note`` serves it."""
    handle = node.settings.handle
    return to_note(
        parse_offer_input(json.loads(row.source), now=row.updated),
        id=row.uri + _suffix(node.urls.offer_note("k"), node.urls.offer("k")),
        proposal_id=row.uri,
        actor=node.urls.actor(handle),
        published=offering.parse_time(proposal["published"]),
        updated=row.updated,
        followers=node.urls.followers(handle),
        hashtag_href=node.urls.tag,
    )
