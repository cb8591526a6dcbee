"""The rows of the backfills, one per followed co-op whose offers are being (or were)
imported: where its walk stands, how many offers it took, why it stopped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.engine import Connection

from node.storage.tables import backfills

RUNNING = "running"
DONE = "done"
FAILED = "failed"


def start(
    conn: Connection, *, actor_id: int, followed: str, collection: str, now: datetime
) -> None:
    """Begin (or begin again) the walk of ``followed``'s offers at ``collection``."""
    values = {
        "collection": collection,
        "next_page": None,
        "pages": 0,
        "imported": 0,
        "total": None,
        "state": RUNNING,
        "last_error": None,
        "started_at": now,
        "updated_at": now,
    }
    found = conn.execute(
        select(backfills.c.id).where(
            backfills.c.actor_id == actor_id, backfills.c.followed == followed
        )
    ).scalar()
    if found is None:
        conn.execute(insert(backfills).values(actor_id=actor_id, followed=followed, **values))
    else:
        conn.execute(update(backfills).where(backfills.c.id == found).values(**values))


def progress(conn: Connection, *, actor_id: int, followed: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(backfills).where(backfills.c.actor_id == actor_id, backfills.c.followed == followed)
    ).first()
    return None if row is None else dict(row._mapping)


def running(conn: Connection, *, actor_id: int) -> list[Row[Any]]:
    """The walks of ``actor_id``'s follows still under way."""
    return list(
        conn.execute(
            select(backfills).where(backfills.c.actor_id == actor_id, backfills.c.state == RUNNING)
        ).all()
    )


def set_walk(conn: Connection, walk_id: int, **values: Any) -> None:
    """Record a walk's new position, count or state."""
    conn.execute(update(backfills).where(backfills.c.id == walk_id).values(**values))
