"""Retention: rows a peer can make the node write are kept for ``retention_days`` once
they have served, then deleted, oldest first, a bounded batch at a time.

- ``inbox_activities``: an activity the worker finished with (done, ignored, failed,
  dropped), counted from when it finished. A pending activity, retries included, is
  never deleted. Nothing refers to these rows: a ballot keeps its own copy of the notes
  it was cast with and its time of casting (``ballots``), so the count and the audit
  trail do not depend on them. A replay of a deleted activity is refused by its
  signature's age long before the retention ends.
- ``deliveries``: a delivery that ended (delivered, failed, dropped), counted from when
  it ended. The activity itself stays in ``outbox_activities``: it is served at its id.
- ``remote_actors``: the document of an actor the co-op has no dealings with, counted
  from when it was last fetched. Followers, followed actors, members, voters, the
  co-ops of shared proposals and the authors of stored offers are kept: deliveries and
  pages read their documents from here. A forgotten actor is fetched again when needed.

Every batch reads an index built for it (migration 0012), or the inbox's primary key,
and is its own transaction,
so pruning a large backlog never holds the database for long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, TextClause, delete, exists, func, select
from sqlalchemy.engine import Connection

from node.storage.tables import (
    DELIVERIES_FINISHED,
    INBOX_FINISHED,
    ballots,
    deliveries,
    followers,
    following,
    inbox_activities,
    members,
    offers,
    proposal_coops,
    proposal_voters,
    remote_actors,
    remote_proposals,
    subtotals,
)

BATCH = 500

Condition = ColumnElement[bool] | TextClause


@dataclass(frozen=True, slots=True)
class Pruned:
    inbox: int = 0
    deliveries: int = 0
    actors: int = 0

    @property
    def total(self) -> int:
        return self.inbox + self.deliveries + self.actors


def prune(conn: Connection, *, before: datetime, limit: int = BATCH) -> Pruned:
    """Delete up to ``limit`` rows of each table that ended (or were last fetched)
    before ``before``."""
    return Pruned(
        inbox=prune_inbox(conn, before=before, limit=limit),
        deliveries=prune_deliveries(conn, before=before, limit=limit),
        actors=prune_remote_actors(conn, before=before, limit=limit),
    )


def prune_inbox(conn: Connection, *, before: datetime, limit: int = BATCH) -> int:
    """Finished activities, oldest first, on the primary key alone: no index on when they
    finished, which every activity received would pay for."""
    last = _last_received_before(conn, before)
    if last is None:
        return 0
    key = inbox_activities.c.id
    conditions: list[Condition] = [
        key <= last,
        INBOX_FINISHED,
        inbox_activities.c.processed_at < before,
    ]
    return _delete_oldest(conn, inbox_activities, key, conditions, limit)


def _last_received_before(conn: Connection, before: datetime) -> int | None:
    """The id of the last activity received before ``before``, by a binary search of the
    primary key (rows are numbered as they arrive): a few dozen look-ups at most."""
    key, received = inbox_activities.c.id, inbox_activities.c.received_at
    # Apart: together in one query, SQLite scans the table for them.
    low = conn.execute(select(func.min(key))).scalar()
    high = conn.execute(select(func.max(key))).scalar()
    found = None
    while low is not None and high is not None and low <= high:
        middle = (low + high) // 2
        row = conn.execute(
            select(key, received).where(key >= middle).order_by(key).limit(1)
        ).first()
        if row is not None and row.received_at < before:
            found, low = row.id, row.id + 1
        else:
            high = middle - 1
    return found


def prune_deliveries(conn: Connection, *, before: datetime, limit: int = BATCH) -> int:
    finished_at = deliveries.c.finished_at
    conditions: list[Condition] = [DELIVERIES_FINISHED, finished_at < before]
    return _delete_oldest(conn, deliveries, finished_at, conditions, limit)


def prune_remote_actors(conn: Connection, *, before: datetime, limit: int = BATCH) -> int:
    uri = remote_actors.c.uri
    dealt_with = [
        exists().where(followers.c.follower == uri),
        exists().where(following.c.followed == uri),
        exists().where(members.c.actor_uri == uri),
        exists().where(ballots.c.voter == uri),
        exists().where(proposal_voters.c.voter == uri),
        exists().where(proposal_coops.c.coop == uri),
        exists().where(remote_proposals.c.host == uri),
        exists().where(subtotals.c.coop == uri),
        exists().where(offers.c.actor == uri),
    ]
    fetched_at = remote_actors.c.fetched_at
    conditions = [fetched_at < before, *(~d for d in dealt_with)]
    return _delete_oldest(conn, remote_actors, fetched_at, conditions, limit)


def _delete_oldest(
    conn: Connection,
    table: Table,
    order: ColumnElement[Any],
    conditions: Sequence[Condition],
    limit: int,
) -> int:
    oldest = select(table.c.id).where(*conditions).order_by(order).limit(limit)
    ids = conn.execute(oldest).scalars().all()
    if ids:
        conn.execute(delete(table).where(table.c.id.in_(ids)))
    return len(ids)
