"""What the doctor reads from the database (the queues, failing and recent peers, the
co-op's public key) and the nonces it sends through the public URL."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from node.doctor.findings import Backlog, FailingPeer
from node.storage.tables import deliveries, doctor_probes, domains, inbox_activities

PROBE_LIFETIME = timedelta(minutes=5)


def add_probe(conn: Connection, nonce: str, *, now: datetime) -> None:
    conn.execute(delete(doctor_probes).where(doctor_probes.c.expires_at < now))
    conn.execute(doctor_probes.insert().values(nonce=nonce, expires_at=now + PROBE_LIFETIME))


def probe_known(conn: Connection, nonce: str, *, now: datetime) -> bool:
    found = conn.execute(
        select(doctor_probes.c.id).where(
            doctor_probes.c.nonce == nonce, doctor_probes.c.expires_at >= now
        )
    ).first()
    return found is not None


def remove_probe(conn: Connection, nonce: str) -> None:
    conn.execute(delete(doctor_probes).where(doctor_probes.c.nonce == nonce))


def backlog(conn: Connection, *, now: datetime) -> Backlog:
    """The queues' waiting rows: counts, the oldest received activity, and the earliest
    due delivery to a domain that is not marked unavailable (those wait on purpose)."""
    waiting_inbox = inbox_activities.c.state == "pending"
    inbox_waiting, oldest_inbox = conn.execute(
        select(func.count(), func.min(inbox_activities.c.received_at)).where(waiting_inbox)
    ).one()
    waiting = deliveries.c.state == "pending"
    deliveries_waiting = conn.execute(
        select(func.count()).select_from(deliveries).where(waiting)
    ).scalar_one()
    held = select(domains.c.host).where(domains.c.unavailable == 1)
    oldest_due = conn.execute(
        select(func.min(deliveries.c.next_attempt_at)).where(
            waiting, deliveries.c.next_attempt_at <= now, deliveries.c.host.not_in(held)
        )
    ).scalar_one()
    return Backlog(
        inbox_waiting=int(inbox_waiting),
        oldest_inbox=oldest_inbox,
        deliveries_waiting=int(deliveries_waiting),
        oldest_due=oldest_due,
    )


def failing_peers(conn: Connection) -> list[FailingPeer]:
    rows = conn.execute(
        select(domains.c.host, domains.c.failing_since, domains.c.unavailable, domains.c.last_error)
        .where(domains.c.failing_since.is_not(None))
        .order_by(domains.c.failing_since, domains.c.host)
        .limit(100)
    )
    return [
        FailingPeer(
            host=r.host,
            failing_since=r.failing_since,
            unavailable=bool(r.unavailable),
            last_error=r.last_error,
        )
        for r in rows
    ]


def recent_peers(conn: Connection, *, since: datetime, limit: int) -> list[str]:
    """The hosts that took a delivery most lately (after ``since``)."""
    rows = conn.execute(
        select(domains.c.host)
        .where(domains.c.last_success_at >= since, domains.c.failing_since.is_(None))
        .order_by(domains.c.last_success_at.desc())
        .limit(limit)
    )
    return [str(r.host) for r in rows]
