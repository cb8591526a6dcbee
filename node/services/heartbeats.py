"""Each background loop's heartbeat: the row a loop touches after its rounds (at most
once every :data:`BEAT_EVERY`), so that ``coopnode doctor`` can say which loops run and
which have stopped, in whichever process they run.

A row is one loop in one process (host name and process id). A process replaces its
own rows as it starts them; rows untouched for :data:`FORGET_AFTER` are pruned then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from node.storage.tables import worker_heartbeats

BEAT_EVERY = timedelta(seconds=30)
FORGET_AFTER = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    poller: str
    hostname: str
    pid: int
    started_at: datetime
    beat_at: datetime
    rounds: int


def start(conn: Connection, *, poller: str, hostname: str, pid: int, now: datetime) -> int:
    """Record that ``poller`` starts in this process; returns its row's id."""
    conn.execute(delete(worker_heartbeats).where(worker_heartbeats.c.beat_at < now - FORGET_AFTER))
    conn.execute(
        delete(worker_heartbeats).where(
            worker_heartbeats.c.poller == poller,
            worker_heartbeats.c.hostname == hostname,
            worker_heartbeats.c.pid == pid,
        )
    )
    row_id = conn.execute(
        worker_heartbeats.insert()
        .values(poller=poller, hostname=hostname, pid=pid, started_at=now, beat_at=now, rounds=0)
        .returning(worker_heartbeats.c.id)
    ).scalar_one()
    return int(row_id)


def beat(conn: Connection, row_id: int, *, rounds: int, now: datetime) -> None:
    conn.execute(
        update(worker_heartbeats)
        .where(worker_heartbeats.c.id == row_id)
        .values(beat_at=now, rounds=rounds)
    )


def latest(conn: Connection) -> list[Heartbeat]:
    """Every loop's rows, the latest beat first."""
    rows = conn.execute(
        select(
            worker_heartbeats.c.poller,
            worker_heartbeats.c.hostname,
            worker_heartbeats.c.pid,
            worker_heartbeats.c.started_at,
            worker_heartbeats.c.beat_at,
            worker_heartbeats.c.rounds,
        ).order_by(worker_heartbeats.c.beat_at.desc(), worker_heartbeats.c.id.desc())
    )
    return [Heartbeat(**r._mapping) for r in rows]
