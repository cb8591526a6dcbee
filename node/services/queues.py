"""The delivery and inbox queues as the admin's queues page shows them: how many rows
are in each state, the oldest deliveries waiting, and the latest that went wrong.

The reads are bounded: the counts by state are over the latest :data:`COUNTED_ROWS`
rows of each queue (those still waiting are all counted, through the index of the
rows the workers still have to take), and each list has :data:`LATEST_SHOWN` rows at
most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, desc, func, or_, select
from sqlalchemy.engine import Connection

from node.storage.tables import deliveries, inbox_activities

# Counts by state are over this many of the latest rows of a queue.
COUNTED_ROWS = 10_000
LATEST_SHOWN = 20
DELIVERY_STATES = ("pending", "delivered", "failed", "dropped")
INBOX_STATES = ("pending", "done", "ignored", "failed", "dropped")


@dataclass(frozen=True, slots=True)
class WaitingDelivery:
    host: str
    inbox: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A delivery given up (``failed``) or waiting to be tried again (``pending``)."""

    inbox: str
    state: str
    attempts: int
    next_attempt_at: datetime
    finished_at: datetime | None
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class RefusedActivity:
    """A received activity refused (``dropped``) or given up (``failed``)."""

    actor: str
    type: str
    state: str
    attempts: int
    received_at: datetime
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Queues:
    delivery_counts: dict[str, int]
    inbox_counts: dict[str, int]
    oldest: list[WaitingDelivery]
    failures: list[FailedDelivery]
    refused: list[RefusedActivity]


def _counts(conn: Connection, table: Any, states: tuple[str, ...]) -> dict[str, int]:
    """Rows by state among the latest :data:`COUNTED_ROWS`; the waiting ones all. The
    known ``states`` come first, in their order, then any other found."""
    latest = select(table.c.state).order_by(desc(table.c.id)).limit(COUNTED_ROWS).subquery()
    counted = {
        str(state): int(n)
        for state, n in conn.execute(
            select(latest.c.state, func.count()).group_by(latest.c.state)
        ).all()
    }
    counted["pending"] = int(
        conn.execute(
            select(func.count()).select_from(table).where(table.c.state == "pending")
        ).scalar_one()
    )
    return {
        state: counted.get(state, 0) for state in (*states, *sorted(set(counted) - set(states)))
    }


def _oldest_waiting(conn: Connection) -> list[WaitingDelivery]:
    rows = conn.execute(
        select(
            deliveries.c.host,
            deliveries.c.inbox,
            deliveries.c.attempts,
            deliveries.c.created_at,
            deliveries.c.next_attempt_at,
            deliveries.c.last_error,
        )
        .where(deliveries.c.state == "pending")
        .order_by(deliveries.c.created_at, deliveries.c.id)
        .limit(LATEST_SHOWN)
    )
    return [WaitingDelivery(**r._mapping) for r in rows]


def _latest_failures(conn: Connection) -> list[FailedDelivery]:
    rows = conn.execute(
        select(
            deliveries.c.inbox,
            deliveries.c.state,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.finished_at,
            deliveries.c.last_status,
            deliveries.c.last_error,
        )
        .where(
            or_(
                deliveries.c.state == "failed",
                and_(deliveries.c.state == "pending", deliveries.c.attempts > 0),
            )
        )
        .order_by(desc(deliveries.c.id))
        .limit(LATEST_SHOWN)
    )
    return [FailedDelivery(**r._mapping) for r in rows]


def _latest_refused(conn: Connection) -> list[RefusedActivity]:
    rows = conn.execute(
        select(
            inbox_activities.c.actor,
            inbox_activities.c.type,
            inbox_activities.c.state,
            inbox_activities.c.attempts,
            inbox_activities.c.received_at,
            inbox_activities.c.last_error,
        )
        .where(inbox_activities.c.state.in_(("failed", "dropped")))
        .order_by(desc(inbox_activities.c.id))
        .limit(LATEST_SHOWN)
    )
    return [RefusedActivity(**r._mapping) for r in rows]


def read_queues(conn: Connection) -> Queues:
    """Both queues, read in one unit of work."""
    oldest = _oldest_waiting(conn)
    failures = _latest_failures(conn)
    refused = _latest_refused(conn)
    return Queues(
        delivery_counts=_counts(conn, deliveries, DELIVERY_STATES),
        inbox_counts=_counts(conn, inbox_activities, INBOX_STATES),
        oldest=oldest,
        failures=failures,
        refused=refused,
    )
