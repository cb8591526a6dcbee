"""The writer groups concurrent units into one transaction and reports each outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from node.storage.database import Database
from node.storage.writer import CommitFailed, WriterClosed

meta = MetaData()
items = Table(
    "items",
    meta,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    meta.create_all(database.engine)
    database.writer.start()
    try:
        yield database
    finally:
        database.close()


def insert(name: str):  # type: ignore[no-untyped-def]
    def unit(conn: Connection) -> int:
        return int(
            conn.execute(items.insert().values(name=name).returning(items.c.id)).scalar_one()
        )

    return unit


def names(db: Database) -> set[str]:
    return set(db.read_sync(lambda c: c.execute(select(items.c.name)).scalars().all()))


class Gate:
    """Holds the writer inside a unit so that the next units queue up into one batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def unit(self, conn: Connection) -> str:
        self.entered.set()
        assert self.release.wait(10)
        return "gate"


async def hold_writer(db: Database, gate: Gate) -> asyncio.Future[str]:
    future = asyncio.ensure_future(db.write(gate.unit))
    await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 10)
    return future


async def test_concurrent_units_are_committed_together_and_each_gets_its_result(
    db: Database,
) -> None:
    ids = await asyncio.gather(*(db.write(insert(f"item-{i}")) for i in range(300)))

    assert len(set(ids)) == 300
    assert names(db) == {f"item-{i}" for i in range(300)}
    # Grouped: far fewer transactions than units.
    assert db.writer.batches < 300


async def test_a_failing_unit_is_rolled_back_alone_and_its_caller_told(db: Database) -> None:
    gate = Gate()
    held = await hold_writer(db, gate)

    def half_done_then_fails(conn: Connection) -> None:
        conn.execute(items.insert().values(name="half"))
        raise ValueError("invalid offer")

    batch = [
        asyncio.ensure_future(db.write(insert("before"))),
        asyncio.ensure_future(db.write(half_done_then_fails)),
        asyncio.ensure_future(db.write(insert("after"))),
    ]
    await asyncio.sleep(0.05)
    batches_before = db.writer.batches
    gate.release.set()
    results = await asyncio.gather(held, *batch, return_exceptions=True)

    assert isinstance(results[2], ValueError)
    assert str(results[2]) == "invalid offer"
    assert isinstance(results[1], int)
    assert isinstance(results[3], int)
    assert names(db) == {"before", "after"}
    assert db.writer.batches == batches_before + 1  # the three ran in one transaction


async def test_a_database_error_in_one_unit_leaves_the_others_committed(db: Database) -> None:
    await db.write(insert("taken"))
    gate = Gate()
    held = await hold_writer(db, gate)
    batch = [
        asyncio.ensure_future(db.write(insert("one"))),
        asyncio.ensure_future(db.write(insert("taken"))),  # unique violation
        asyncio.ensure_future(db.write(insert("two"))),
    ]
    await asyncio.sleep(0.05)
    gate.release.set()
    results = await asyncio.gather(held, *batch, return_exceptions=True)

    assert isinstance(results[2], IntegrityError)
    assert names(db) == {"taken", "one", "two"}


async def test_a_failed_commit_fails_every_unit_of_the_batch(database_url: str) -> None:
    # A deferred foreign key is only checked at COMMIT: the whole transaction fails.
    meta2 = MetaData()
    parents = Table("parents", meta2, Column("id", Integer, primary_key=True))
    Table(
        "children",
        meta2,
        Column("id", Integer, primary_key=True),
        Column(
            "parent_id", Integer, ForeignKey("parents.id", deferrable=True, initially="DEFERRED")
        ),
    )
    database = Database(database_url)
    meta2.create_all(database.engine)
    try:
        gate = Gate()
        held = await hold_writer(database, gate)

        def orphan(conn: Connection) -> None:
            conn.execute(text("INSERT INTO children (id, parent_id) VALUES (1, 999)"))

        def fine(conn: Connection) -> None:
            conn.execute(parents.insert().values(id=1))

        batch = [
            asyncio.ensure_future(database.write(fine)),
            asyncio.ensure_future(database.write(orphan)),
        ]
        await asyncio.sleep(0.05)
        gate.release.set()
        results = await asyncio.gather(held, *batch, return_exceptions=True)

        assert results[0] == "gate"
        assert all(isinstance(r, CommitFailed) for r in results[1:]), results
        count = database.read_sync(
            lambda c: c.execute(select(func.count()).select_from(parents)).scalar_one()
        )
        assert count == 0
        # The writer is still usable afterwards.
        await database.write(fine)
    finally:
        database.close()


async def test_callers_outside_the_event_loop_wait_for_their_commit(db: Database) -> None:
    loop = asyncio.get_running_loop()
    from_threads = [loop.run_in_executor(None, db.write_sync, insert(f"t{i}")) for i in range(20)]
    from_loop = [db.write(insert(f"a{i}")) for i in range(20)]
    await asyncio.gather(*from_threads, *from_loop)

    assert len(names(db)) == 40


async def test_a_closed_writer_refuses_new_units(db: Database) -> None:
    await db.write(insert("last"))
    db.writer.close()

    with pytest.raises(WriterClosed):
        await db.write(insert("too late"))
    assert names(db) == {"last"}


async def test_units_queued_before_close_are_still_committed(db: Database) -> None:
    gate = Gate()
    held = await hold_writer(db, gate)
    queued = [asyncio.ensure_future(db.write(insert(f"q{i}"))) for i in range(5)]
    await asyncio.sleep(0.05)
    closing = asyncio.get_running_loop().run_in_executor(None, db.writer.close)
    gate.release.set()
    await closing
    await asyncio.gather(held, *queued)

    assert names(db) == {f"q{i}" for i in range(5)}


def test_timestamps_round_trip_as_aware_utc_and_naive_ones_are_refused(database_url: str) -> None:
    from node.storage.types import UtcDateTime

    meta3 = MetaData()
    events = Table(
        "events", meta3, Column("id", Integer, primary_key=True), Column("at", UtcDateTime)
    )
    database = Database(database_url)
    meta3.create_all(database.engine)
    try:
        from datetime import timedelta, timezone

        paris = timezone(timedelta(hours=1))
        moment = datetime(2027, 6, 30, 23, 30, tzinfo=paris)
        database.write_sync(lambda c: c.execute(events.insert().values(id=1, at=moment)))
        stored = database.read_sync(lambda c: c.execute(select(events.c.at)).scalar_one())
        assert stored == moment
        assert stored.tzinfo == UTC
        assert stored.hour == 22

        with pytest.raises(Exception, match="naive datetime"):
            database.write_sync(
                lambda c: c.execute(events.insert().values(id=2, at=datetime(2027, 1, 1)))
            )
    finally:
        database.close()
