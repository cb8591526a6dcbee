"""The outbox's queries: which public ``Create`` rows an actor's outbox lists (those
whose object is served now), how many, and the current rows of the offers they carry.
What the outbox lists and why is told in :mod:`node.published`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement, TextClause

from node.catalogue.store import WITHDRAWN
from node.governance.store.rows import State
from node.storage.tables import (
    PUBLIC_ACTIVITY,
    object_id_of,
    offers,
    outbox_activities,
    proposals,
)
from node.urls import Urls

# The one activity type the outbox lists (see node.published).
LISTED_TYPE = "Create"
PAGE_SIZE = 20

# Rows read at first while a page looks for its items: a page and a bit, as nearly
# every public Create is listed (those of withdrawn offers are the exception). A walk
# that meets many withdrawn offers reads twice as many rows each time, up to the most.
BATCH = PAGE_SIZE + 5
MOST_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Source:
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


def suffix(longer: str, shorter: str) -> str:
    if not longer.startswith(shorter):
        raise ValueError(f"{longer} does not extend {shorter}")
    return longer[len(shorter) :]


def sources(urls: Urls) -> tuple[Source, ...]:
    """Every kind of object the node serves to anyone, as each id's own route decides
    (node/web/offers.py, node/web/proposals.py)."""
    live = (offers.c.local == 1, offers.c.status != WITHDRAWN)
    return (
        Source(offers, "", live),
        Source(
            offers,
            suffix(urls.offer_note("k"), urls.offer("k")),
            (*live, offers.c.source.is_not(None)),
        ),
        Source(proposals, "", ()),
        Source(
            proposals,
            suffix(urls.proposal_outcome("k"), urls.proposal("k")),
            (proposals.c.state == State.CLOSED,),
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
    for source in sources(urls):
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


def served(conn: Connection, urls: Urls, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are ids of objects served now."""
    wanted = set(ids)
    found: set[str] = set()
    for source in sources(urls):
        bases = {i.removesuffix(source.suffix) for i in wanted if i.endswith(source.suffix)}
        if bases:
            query = select(source.object_ids()).where(source.table.c.uri.in_(bases), *source.where)
            found.update(conn.execute(query).scalars())
    return found & wanted


def walk(
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
    if conn.dialect.name == "postgresql":
        # With the default cost of a random page (4, for spinning disks) PostgreSQL walks
        # the primary key backwards and filters out every row that is not a public
        # Create (150 ms past 140,000 of them in bench/outbox.py), rather than read the
        # partial index that holds only those (0.7 ms). 1.1, the usual value for SSDs,
        # for this read only.
        conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
    key = outbox_activities.c.id
    kept: list[Any] = []
    batch = BATCH
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
        now_served = served(conn, urls, [str(r.object_id) for r in rows if r.object_id])
        kept.extend(r for r in rows if r.object_id in now_served)
        if len(rows) < batch:
            break
        batch = min(batch * 2, MOST_BATCH)
        if newest_first:
            before = rows[-1].id
        else:
            after = rows[-1].id
    return kept[:wanted]


def live_offer_rows(conn: Connection, uris: Iterable[str]) -> list[Any]:
    """The co-op's own offers among ``uris`` that are served now (not withdrawn), with
    their stored document and form input."""
    return list(
        conn.execute(
            select(offers.c.uri, offers.c.document, offers.c.source, offers.c.updated).where(
                offers.c.uri.in_(set(uris)), offers.c.local == 1, offers.c.status != WITHDRAWN
            )
        ).all()
    )
