"""The transactional outbox: a published activity and its deliveries, written together.

:func:`publish` runs inside the unit of work that makes the change the activity
announces (a follow accepted, an offer published), so nothing is announced without being
saved, nor saved without being queued. The delivery worker then takes due rows in
batches (:func:`claim`); a claim expires, so rows held by a worker that died are taken
again by another, and the receiver's de-duplication by activity id makes a resend
harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from federation.delivery import NOT_OUTAGES
from federation.inbox import host_of
from federation.origins import origin_of
from node.services.domains import DomainPolicy
from node.storage.tables import (
    PUBLIC_ACTIVITY,
    deliveries,
    domains,
    object_id_of,
    outbox_activities,
)

# How long a worker may hold claimed deliveries before another worker may take them:
# longer than a batch of sends can take (each send has a deadline well under it).
CLAIM_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    inbox: str
    host: str
    attempts: int
    activity_id: str
    actor_id: int
    body: str
    server: str
    """The origin of the inbox (scheme, host and port): the server that receives it, as
    signature schemes are learned (a host's policy is by ``host``). Worked out once, at
    the claim: a round asks for it several times per delivery."""


def publish(
    conn: Connection,
    activity: dict[str, Any],
    *,
    actor_id: int,
    inboxes: Iterable[str],
    now: datetime,
    policy: DomainPolicy | None = None,
    public: bool = False,
    ordering_key: str | None = None,
) -> int:
    """Store ``activity`` and one delivery per distinct inbox; returns how many were queued.

    Inboxes on domains the policy refuses are not queued at all. Deliveries with the
    same ``ordering_key`` (an object's id, say) reach each inbox one at a time, in the
    order they were published.
    """
    activity_pk = conn.execute(
        insert(outbox_activities)
        .values(
            activity_id=activity["id"],
            actor_id=actor_id,
            type=str(activity.get("type", ""))[:64],
            body=json.dumps(activity, ensure_ascii=False, separators=(",", ":")),
            public=int(public),
            created_at=now,
        )
        .returning(outbox_activities.c.id)
    ).scalar_one()
    rows = []
    for inbox in dict.fromkeys(inboxes):
        host = host_of(inbox)
        if not host or (policy is not None and policy.refusal(host) is not None):
            continue
        rows.append(
            {
                "activity_pk": activity_pk,
                "inbox": inbox,
                "host": host,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
                "ordering_key": ordering_key,
            }
        )
    if rows:
        conn.execute(insert(deliveries), rows)
    return len(rows)


_before = deliveries.alias("earlier")
_EARLIER = and_(
    _before.c.ordering_key == deliveries.c.ordering_key,
    _before.c.state == "pending",
    _before.c.id < deliveries.c.id,
    _before.c.inbox == deliveries.c.inbox,
)


def unlist(conn: Connection, *, actor_id: int, object_ids: Iterable[str]) -> int:
    """The actor's public ``Create`` rows of ``object_ids`` leave its outbox collection
    (``public = 0``): a withdrawn offer's stay stored, but the collection's pages no
    longer read past them (node.published). Returns how many rows changed."""
    result = conn.execute(
        update(outbox_activities)
        .where(
            outbox_activities.c.actor_id == actor_id,
            PUBLIC_ACTIVITY,
            outbox_activities.c.type == "Create",
            object_id_of(outbox_activities.c.body).in_(list(object_ids)),
        )
        .values(public=0)
    )
    return int(result.rowcount or 0)


def claim(conn: Connection, *, now: datetime, limit: int = 500) -> list[Delivery]:
    """Take up to ``limit`` due deliveries (PostgreSQL: skipping rows other workers hold).
    Each activity's body is read once, however many of its deliveries are taken: the
    deliveries of one activity share one string."""
    due = (
        select(
            deliveries.c.id,
            deliveries.c.inbox,
            deliveries.c.host,
            deliveries.c.attempts,
            deliveries.c.activity_pk,
        )
        .where(
            deliveries.c.state == "pending",
            deliveries.c.next_attempt_at <= now,
            or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until < now),
            # In order: not while an older delivery of the same key to the same inbox
            # waits (claimed, backing off or due).
            or_(deliveries.c.ordering_key.is_(None), ~exists().where(_EARLIER)),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(of=deliveries, skip_locked=True)
    rows = conn.execute(due).all()
    if not rows:
        return []
    activities = {
        a.id: a
        for a in conn.execute(
            select(
                outbox_activities.c.id,
                outbox_activities.c.activity_id,
                outbox_activities.c.actor_id,
                outbox_activities.c.body,
            ).where(outbox_activities.c.id.in_(sorted({r.activity_pk for r in rows})))
        )
    }
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_([r.id for r in rows]))
        .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
    )
    claimed = []
    servers: dict[str, str] = {}  # "scheme://host:port" as written -> its origin
    for delivery_id, inbox, host, attempts, activity_pk in rows:
        activity = activities[activity_pk]
        # An inbox's origin depends only on what comes before its path: worked out once
        # per server written alike, not once per delivery (a batch has thousands).
        end = inbox.find("/", 8)
        written = inbox[:end] if end > 0 else inbox
        server = servers.get(written)
        if server is None:
            server = origin_of(written if end > 0 and written.isascii() else inbox)
            servers[written] = server
        claimed.append(
            Delivery(
                id=delivery_id,
                inbox=inbox,
                host=host,
                attempts=attempts,
                activity_id=activity.activity_id,
                actor_id=activity.actor_id,
                body=activity.body,
                server=server or host,
            )
        )
    return claimed


def finish(
    conn: Connection,
    ids: list[int],
    *,
    state: str,
    now: datetime,
    status: int | None = None,
    error: str | None = None,
) -> None:
    """Mark deliveries delivered, failed (given up) or dropped, many at once."""
    if ids:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids))
            .values(
                state=state,
                attempts=deliveries.c.attempts + 1,
                finished_at=now,
                claimed_until=None,
                last_status=status,
                last_error=error[:2000] if error else None,
            )
        )


def retry(
    conn: Connection,
    delivery_id: int,
    *,
    at: datetime,
    status: int | None,
    error: str,
) -> None:
    retry_many(conn, [delivery_id], at=at, status=status, error=error)


def retry_many(
    conn: Connection,
    ids: list[int],
    *,
    at: datetime,
    status: int | None,
    error: str,
) -> None:
    """Schedule deliveries that failed alike for another attempt at ``at``, many at once."""
    if ids:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids))
            .values(
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=at,
                claimed_until=None,
                last_status=status,
                last_error=error[:2000],
            )
        )


def postpone_host(conn: Connection, host: str, *, until: datetime) -> None:
    """Push a host's due deliveries back (an unavailable domain is probed, not hammered)."""
    conn.execute(
        update(deliveries)
        .where(
            deliveries.c.host == host,
            deliveries.c.state == "pending",
            deliveries.c.next_attempt_at < until,
        )
        .values(next_attempt_at=until, claimed_until=None)
    )


def release_host(conn: Connection, host: str, *, now: datetime) -> None:
    """A domain is back: its postponed deliveries are due now."""
    conn.execute(
        update(deliveries)
        .where(
            deliveries.c.host == host,
            deliveries.c.state == "pending",
            deliveries.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )


def queue_summary(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all()
    return {state: int(count) for state, count in rows}


def failing_hosts(conn: Connection, *, limit: int = 50) -> list[dict[str, Any]]:
    """Hosts with deliveries still pending after failures, worst first, with the latest
    reason. A peer whose only answers are :data:`NOT_OUTAGES` (busy, not yet trusting
    us) is waiting, not failing, as the delivery worker judges domains."""
    failed = and_(
        deliveries.c.state == "pending",
        deliveries.c.attempts > 0,
        or_(deliveries.c.last_status.is_(None), deliveries.c.last_status.not_in(NOT_OUTAGES)),
    )
    grouped = (
        select(
            deliveries.c.host,
            func.count().label("pending"),
            func.max(deliveries.c.attempts).label("attempts"),
            func.min(deliveries.c.next_attempt_at).label("next_attempt_at"),
        )
        .where(failed)
        .group_by(deliveries.c.host)
        .order_by(func.count().desc())
        .limit(limit)
        .subquery("failing")
    )
    # The domain's record has the reason of its latest failed attempt; failing rows of a
    # host the worker has not yet recorded give their newest reason.
    recorded = (
        select(domains.c.last_error).where(domains.c.host == grouped.c.host).scalar_subquery()
    )
    newest_row = (
        select(deliveries.c.last_error)
        .where(failed, deliveries.c.host == grouped.c.host)
        .order_by(deliveries.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(grouped, func.coalesce(recorded, newest_row).label("last_error")).order_by(
        grouped.c.pending.desc()
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def waiting_by_host(conn: Connection, *, counted: int, limit: int) -> dict[str, int]:
    """How many deliveries wait for each host, the most first: through the index of the
    waiting rows, at most ``counted`` of them."""
    queued = (
        select(deliveries.c.host).where(deliveries.c.state == "pending").limit(counted).subquery()
    )
    rows = conn.execute(
        select(queued.c.host, func.count())
        .group_by(queued.c.host)
        .order_by(func.count().desc())
        .limit(limit)
    )
    return {str(host): int(n) for host, n in rows}
