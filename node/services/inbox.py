"""The inbox table: verified activities waiting for, or done with, their handler."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Dialect, Select, and_, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

from federation.errors import MalformedInput
from federation.jsonlimits import parse_object
from federation.storable import storable
from node.services import domains, outbox
from node.storage.database import Database
from node.storage.rows import RowInsert
from node.storage.tables import inbox_activities

# How long a worker may hold claimed rows before another worker may take them.
CLAIM_SECONDS = 300
# Handler failures are retried this many times, spaced by RETRY_DELAYS, then recorded.
# A claim that expires with no outcome recorded (its worker died, or could not write the
# outcome) counts as a failed attempt too, so that no activity is taken again forever.
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=1), timedelta(hours=6))
# The longest reason kept for a failed activity.
MAX_REASON = 2000
# The largest body kept whole for an activity stored as ``ignored``: a stranger may send
# any number of them, up to the inbox's limit each, and nothing will ever read them.
MAX_IGNORED_BODY = 16 * 1024


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    activity_id: str
    actor: str
    type: str
    activity: dict[str, Any]
    attempts: int
    # When this node accepted it: a ballot's time of casting.
    received_at: datetime | None = None


# The insert that every verified activity goes through: replays are skipped by the
# unique activity id.
_RECORD_COLUMNS = [
    "activity_id",
    "actor",
    "type",
    "body",
    "state",
    "attempts",
    "received_at",
    "next_attempt_at",
    "processed_at",
]
RECORD = RowInsert(inbox_activities, _RECORD_COLUMNS, unique=["activity_id"])


def record_values(
    activity: dict[str, Any],
    *,
    actor: str,
    now: datetime,
    state: str = "pending",
    body: str | None = None,
) -> dict[str, Any]:
    """The row for a verified activity. ``body`` is the JSON as the peer sent it (kept
    verbatim, and cheaper than encoding the parsed activity again); without it the
    activity is encoded here. An ``ignored`` activity over MAX_IGNORED_BODY bytes is kept
    as a stub that says what it was: no handler will read it."""
    kind = str(activity.get("type"))[:64]
    if body is None:
        body = json.dumps(activity, ensure_ascii=False, separators=(",", ":"))
    if state == "ignored" and len(body.encode("utf-8", "surrogatepass")) > MAX_IGNORED_BODY:
        stub = {
            "id": activity["id"],
            "type": kind,
            "actor": actor,
            "omitted": f"the body was over {MAX_IGNORED_BODY} bytes",
        }
        body = json.dumps(stub, ensure_ascii=False, separators=(",", ":"))
    return {
        "activity_id": activity["id"],
        "actor": actor,
        "type": kind,
        "body": body,
        "state": state,
        "attempts": 0,
        "received_at": now,
        "next_attempt_at": now,
        "processed_at": None if state == "pending" else now,
    }


async def store(db: Database, values: dict[str, Any]) -> None:
    """Store a verified activity (see :func:`record_values`) through the writer's row
    path, grouped with every other activity arriving at the same time. A replay is
    silently skipped."""
    await db.insert(RECORD, values)


def record(
    conn: Connection,
    activity: dict[str, Any],
    *,
    actor: str,
    now: datetime,
    state: str = "pending",
    body: str | None = None,
) -> bool:
    """Store a verified activity within a unit of work; False when its id was already
    stored (a replay)."""
    values = record_values(activity, actor=actor, now=now, state=state, body=body)
    row = conn.execute(_returning(conn.dialect), values).first()
    return row is not None


_RETURNING: dict[str, Insert] = {}


def _returning(dialect: Dialect) -> Insert:
    # Built once per engine kind: building a statement costs more than running it.
    statement = _RETURNING.get(dialect.name)
    if statement is None:
        statement = RECORD.statement(dialect).returning(inbox_activities.c.id)
        _RETURNING[dialect.name] = statement
    return statement


def due_query(*, now: datetime, limit: int) -> Select[Any]:
    """The pending rows whose time has come, oldest first, not claimed by a live worker."""
    return (
        select(inbox_activities)
        .where(
            inbox_activities.c.state == "pending",  # what the due-rows index covers
            inbox_activities.c.next_attempt_at <= now,
            or_(
                inbox_activities.c.claimed_until.is_(None),
                inbox_activities.c.claimed_until < now,
            ),
        )
        .order_by(inbox_activities.c.next_attempt_at, inbox_activities.c.id)
        .limit(limit)
    )


def claim(
    conn: Connection,
    *,
    now: datetime,
    limit: int = 100,
    parsed: dict[str, tuple[str, dict[str, Any]]] | None = None,
) -> list[InboxItem]:
    """Take up to ``limit`` due activities for this worker (PostgreSQL: skip locked rows).

    ``parsed`` holds activities this process parsed at receipt, by id, with the body
    they were parsed from: one is taken instead of parsing the stored body again only
    when the stored body is that one (a replay of the id with another body is not).

    A row is settled here rather than handed out when its claim expired one time too
    many, or when its stored body is one the inbox would refuse today (it was stored
    before the inbox refused it): no handler can do better with it."""
    due = due_query(now=now, limit=limit)
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = conn.execute(due).all()
    items: list[InboxItem] = []
    abandoned: list[int] = []
    for r in rows:
        attempts = r.attempts
        if r.claimed_until is not None:
            # Claimed before, and the claim expired with no outcome recorded.
            attempts += 1
        if attempts > len(RETRY_DELAYS):
            reason = f"no outcome was recorded in {attempts} rounds that took it"
            _settle(conn, r.id, attempts=attempts, reason=reason, now=now)
            continue
        known = parsed.pop(r.activity_id, None) if parsed else None
        try:
            activity = known[1] if known and known[0] == r.body else parse_object(r.body)
        except MalformedInput as exc:
            _settle(conn, r.id, attempts=attempts + 1, reason=f"refused: {exc}", now=now)
            continue
        if attempts != r.attempts:
            abandoned.append(r.id)
        items.append(
            InboxItem(
                id=r.id,
                activity_id=r.activity_id,
                actor=r.actor,
                type=r.type,
                activity=activity,
                attempts=attempts,
                received_at=r.received_at,
            )
        )
    if items:
        conn.execute(
            update(inbox_activities)
            .where(inbox_activities.c.id.in_([item.id for item in items]))
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        )
    if abandoned:
        conn.execute(
            update(inbox_activities)
            .where(inbox_activities.c.id.in_(abandoned))
            .values(attempts=inbox_activities.c.attempts + 1)
        )
    return items


def _settle(conn: Connection, item_id: int, *, attempts: int, reason: str, now: datetime) -> None:
    conn.execute(
        update(inbox_activities)
        .where(inbox_activities.c.id == item_id)
        .values(
            state="failed",
            attempts=attempts,
            processed_at=now,
            claimed_until=None,
            last_error=storable(reason, limit=MAX_REASON),
        )
    )


def finish(conn: Connection, item_ids: list[int], *, state: str, now: datetime) -> None:
    """Mark handled activities, many at once (one statement, one commit)."""
    if item_ids:
        conn.execute(
            update(inbox_activities)
            .where(inbox_activities.c.id.in_(item_ids))
            .values(state=state, processed_at=now, claimed_until=None, last_error=None)
        )


def refuse(conn: Connection, item: InboxItem, reason: str, *, now: datetime) -> None:
    """Record an activity that no retry can make acceptable: ``failed`` at once. The
    reason may quote the peer: what no column can hold is replaced."""
    _settle(conn, item.id, attempts=item.attempts + 1, reason=reason, now=now)


def fail(conn: Connection, item: InboxItem, reason: str, *, now: datetime) -> str:
    """Record a handler failure: retry later, or give up after the last delay. The
    reason may quote the peer: what no column can hold is replaced."""
    attempts = item.attempts + 1
    if attempts > len(RETRY_DELAYS):
        values: dict[str, Any] = {"state": "failed", "processed_at": now}
    else:
        values = {"next_attempt_at": now + RETRY_DELAYS[attempts - 1]}
    conn.execute(
        update(inbox_activities)
        .where(and_(inbox_activities.c.id == item.id))
        .values(
            attempts=attempts,
            claimed_until=None,
            last_error=storable(reason, limit=MAX_REASON),
            **values,
        )
    )
    return str(values.get("state", "pending"))


def sender_back(conn: Connection, host: str, *, now: datetime) -> None:
    """A domain marked unavailable signed a request to us: it is back (the domains'
    record), and the deliveries postponed for it are due now (the outbox's)."""
    domains.record_success(conn, host, now=now)
    outbox.release_host(conn, host, now=now)
