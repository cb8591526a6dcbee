"""Row inserts: many callers' rows go in a few multi-row statements, replays are skipped,
and a row the database refuses fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from node.storage.database import Database
from node.storage.rows import RowInsert
from node.storage.types import UtcDateTime

meta = MetaData()
events = Table(
    "events",
    meta,
    Column("id", Integer, primary_key=True),
    Column("key", String(50), nullable=False, unique=True),
    Column("note", String(20), nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
EVENTS = RowInsert(events, ["key", "note", "at"], unique=["key"])
AT = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    meta.create_all(database.engine)
    database.writer.start()
    try:
        yield database
    finally:
        database.close()


def stored(db: Database) -> list[tuple[str, str, datetime]]:
    query = select(events.c.key, events.c.note, events.c.at).order_by(events.c.key)
    return [tuple(r) for r in db.read_sync(lambda c: c.execute(query).all())]  # type: ignore[misc]


def hold_writer(db: Database) -> tuple[asyncio.Future[None], threading.Event]:
    """Keep the writer busy in a unit, so that the rows sent meanwhile form one batch."""
    release = threading.Event()

    def wait(conn: Connection) -> None:
        assert release.wait(10)

    return asyncio.ensure_future(db.write(wait)), release


async def test_rows_of_one_batch_are_stored_in_few_statements(db: Database) -> None:
    held, release = hold_writer(db)
    await asyncio.sleep(0.05)
    batches = db.writer.batches
    rows = [
        db.insert(EVENTS, {"key": f"k{n:03}", "note": "hi", "at": AT + timedelta(seconds=n)})
        for n in range(300)
    ]
    tasks = [asyncio.ensure_future(r) for r in rows]
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(held, *tasks)

    assert db.writer.batches == batches + 1
    saved = stored(db)
    assert len(saved) == 300
    # Timestamps go through the column type: aware UTC in, aware UTC out.
    assert saved[7] == ("k007", "hi", AT + timedelta(seconds=7))


async def test_a_replayed_key_is_skipped_in_the_same_batch_and_later(db: Database) -> None:
    held, release = hold_writer(db)
    await asyncio.sleep(0.05)
    first = [
        asyncio.ensure_future(db.insert(EVENTS, {"key": "same", "note": f"n{n}", "at": AT}))
        for n in range(5)
    ]
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(held, *first)
    await db.insert(EVENTS, {"key": "same", "note": "later", "at": AT})

    assert stored(db) == [("same", "n0", AT)]


async def test_a_refused_row_fails_alone_and_the_batch_is_kept(db: Database) -> None:
    held, release = hold_writer(db)
    await asyncio.sleep(0.05)
    good = [
        asyncio.ensure_future(db.insert(EVENTS, {"key": f"g{n}", "note": "ok", "at": AT}))
        for n in range(3)
    ]
    bad = asyncio.ensure_future(db.insert(EVENTS, {"key": "bad", "note": None, "at": AT}))
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(held, *good, bad, return_exceptions=True)

    assert results[:4] == [None, None, None, None]
    assert isinstance(results[4], Exception)  # NOT NULL, from the driver
    assert [key for key, _, _ in stored(db)] == ["g0", "g1", "g2"]
    assert db.writer.reruns == 1


async def test_a_naive_timestamp_is_refused_before_it_reaches_the_writer(db: Database) -> None:
    with pytest.raises(ValueError, match="naive"):
        await db.insert(EVENTS, {"key": "k", "note": "n", "at": datetime(2027, 3, 1)})
    assert stored(db) == []


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()])
def test_batches_are_cut_in_powers_of_two(dialect: object) -> None:
    prepared = EVENTS.prepare(dialect)  # type: ignore[arg-type]
    rows = [(f"k{n}", "n", "t") for n in range(300)]

    chunks = [(sql.count(prepared.placeholder), len(p)) for sql, p in prepared.statements(rows)]

    assert [size for size, _ in chunks] == [256, 32, 8, 4]
    assert [count for _, count in chunks] == [256 * 3, 32 * 3, 8 * 3, 4 * 3]
    assert prepared.sql(1).endswith("DO NOTHING")
