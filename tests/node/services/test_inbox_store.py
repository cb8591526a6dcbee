"""The inbox table: a replay is a no-op, claims expire, failures back off then stop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection

from node.services import inbox
from node.services.setup import migrate_database
from node.storage.database import Database
from node.storage.tables import inbox_activities

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
ACTOR = "https://peer.example/users/alice"


def activity(n: int) -> dict[str, object]:
    return {"id": f"https://peer.example/activities/{n}", "type": "Create", "actor": ACTOR}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate_database(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        database.close()


def rows(db: Database) -> list[tuple[str, str, int]]:
    query = select(
        inbox_activities.c.activity_id, inbox_activities.c.state, inbox_activities.c.attempts
    ).order_by(inbox_activities.c.id)
    return [tuple(r) for r in db.read_sync(lambda c: c.execute(query).all())]  # type: ignore[misc]


def test_a_replayed_activity_is_stored_once(db: Database) -> None:
    assert db.write_sync(lambda c: inbox.record(c, activity(1), actor=ACTOR, now=NOW))
    assert not db.write_sync(lambda c: inbox.record(c, activity(1), actor=ACTOR, now=NOW))

    assert rows(db) == [("https://peer.example/activities/1", "pending", 0)]


async def test_concurrent_replays_in_one_batch_store_one_row(db: Database) -> None:
    import asyncio

    results = await asyncio.gather(
        *(db.write(lambda c: inbox.record(c, activity(7), actor=ACTOR, now=NOW)) for _ in range(20))
    )

    assert results.count(True) == 1
    assert len(rows(db)) == 1


def test_claimed_rows_are_not_claimed_again_until_the_claim_expires(db: Database) -> None:
    for n in range(3):
        db.write_sync(lambda c, n=n: inbox.record(c, activity(n), actor=ACTOR, now=NOW))

    first = db.write_sync(lambda c: inbox.claim(c, now=NOW, limit=2))
    second = db.write_sync(lambda c: inbox.claim(c, now=NOW, limit=10))
    after_expiry = db.write_sync(
        lambda c: inbox.claim(c, now=NOW + timedelta(seconds=inbox.CLAIM_SECONDS + 1))
    )

    assert [i.activity["id"] for i in first] == [a["id"] for a in map(activity, (0, 1))]
    assert [i.activity_id for i in second] == ["https://peer.example/activities/2"]
    assert len(after_expiry) == 3


def test_failures_back_off_then_are_recorded_with_their_reason(db: Database) -> None:
    db.write_sync(lambda c: inbox.record(c, activity(1), actor=ACTOR, now=NOW))
    now = NOW
    states = []
    for _ in range(len(inbox.RETRY_DELAYS) + 1):
        (item,) = db.write_sync(lambda c, now=now: inbox.claim(c, now=now))
        states.append(
            db.write_sync(lambda c, item=item, now=now: inbox.fail(c, item, "boom", now=now))
        )
        assert db.write_sync(lambda c, now=now: inbox.claim(c, now=now)) == []
        now = now + max(inbox.RETRY_DELAYS)

    assert states == ["pending"] * len(inbox.RETRY_DELAYS) + ["failed"]
    last_error = db.read_sync(
        lambda c: c.execute(select(inbox_activities.c.last_error)).scalar_one()
    )
    assert last_error == "boom"
    assert db.write_sync(lambda c: inbox.claim(c, now=now + timedelta(days=30))) == []


def test_claims_read_the_index_of_pending_rows(db: Database) -> None:
    # Handled rows stay for the record; the claim must not scan them. The plan is asked
    # for the query as it runs, with bound parameters.
    query = inbox.due_query(now=NOW, limit=100)

    def plan(conn: Connection) -> str:
        compiled = query.compile(dialect=conn.dialect)
        to_text = inbox_activities.c.next_attempt_at.type.bind_processor(conn.dialect)
        values = {
            name: to_text(value) if to_text and isinstance(value, datetime) else value
            for name, value in compiled.params.items()
        }
        if compiled.positional:
            params: object = tuple(values[name] for name in compiled.positiontup or ())
            explain = "EXPLAIN QUERY PLAN "
        else:
            params = values
            explain = "EXPLAIN "
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = conn.exec_driver_sql(explain + compiled.string, params)  # type: ignore[arg-type]
        return " ".join(str(row) for row in rows)

    assert "ix_inbox_activities_due" in db.read_sync(plan)


def test_a_claim_takes_what_receipt_parsed_only_for_the_body_stored(db: Database) -> None:
    """An activity parsed at receipt is handed to the worker instead of parsed again;
    one whose stored body is another (the id replayed with a changed body) is read
    from what was stored."""
    first, second = activity(1), activity(2)
    for one in (first, second):
        db.write_sync(lambda c, one=one: inbox.record(c, one, actor=ACTOR, now=NOW))
    stored = {
        str(r.activity_id): r.body
        for r in db.read_sync(lambda c: c.execute(select(inbox_activities)).all())
    }
    changed = {**second, "type": "Delete"}
    parsed = {
        str(first["id"]): (stored[str(first["id"])], first),
        str(second["id"]): ('{"id": "changed"}', changed),
    }

    items = db.write_sync(lambda c: inbox.claim(c, now=NOW, parsed=parsed))

    taken = {item.activity_id: item.activity for item in items}
    assert taken[str(first["id"])] is first  # not parsed again
    assert taken[str(second["id"])] == second  # as stored, not the changed one
    assert parsed == {}  # each taken once
