"""What the doctor reads from the database, on both engines: the loops' heartbeats as
the workers write them, the queues' backlog, failing and recent peers, the probes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import insert

from federation.clock import ManualClock
from node.doctor import store
from node.runtime import Node, Poller
from node.services import heartbeats
from node.services.setup import create_coop, migrate_database
from node.settings import Settings
from node.storage.database import Database
from node.storage.tables import domains, inbox_activities
from node.workers import run_poller
from tests.support.network import START


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate_database(database_url)
    database = Database(database_url, readers=1)
    try:
        yield database
    finally:
        database.close()


async def test_a_loop_beats_as_it_starts_then_at_most_every_half_minute(
    db: Database, tmp_path: object
) -> None:
    clock = ManualClock(START)
    rounds = 0
    stop = asyncio.Event()

    async def run_once(node: Node) -> int:
        nonlocal rounds
        rounds += 1
        clock.advance(10)
        if rounds == 7:
            stop.set()
        return 1  # always work to do: no idling between rounds

    settings = Settings(data_dir=tmp_path, domain="a.test", name="A")  # type: ignore[arg-type]
    create_coop(settings, db, clock)
    async with httpx.AsyncClient() as http:
        node = Node(settings=settings, db=db, http=http, clock=clock)
        await run_poller(node, Poller("probe-loop", run_once), stop)

    (row,) = await db.read(heartbeats.latest)
    assert row.poller == "probe-loop"
    assert row.started_at == START
    # Rounds end at +10 s, +20 s, ... +70 s: beats were written at +30 s and +60 s.
    assert row.beat_at == START + timedelta(seconds=60)
    assert row.rounds == 6


async def test_a_loop_whose_round_fails_still_beats(db: Database, tmp_path: object) -> None:
    clock = ManualClock(START)
    stop = asyncio.Event()

    async def run_once(node: Node) -> int:
        clock.advance(40)
        if clock.now() > START + timedelta(seconds=100):
            stop.set()
        raise RuntimeError("a peer's broken document")

    settings = Settings(data_dir=tmp_path, domain="a.test", name="A")  # type: ignore[arg-type]
    create_coop(settings, db, clock)
    async with httpx.AsyncClient() as http:
        node = Node(settings=settings, db=db, http=http, clock=clock)
        await run_poller(node, Poller("failing", run_once, idle_seconds=0.0), stop)

    (row,) = await db.read(heartbeats.latest)
    assert row.beat_at == START + timedelta(seconds=120)


async def test_a_restarted_process_replaces_its_rows_and_old_ones_are_pruned(db: Database) -> None:
    def start(pid: int, days: int) -> None:
        at = START + timedelta(days=days)
        db.write_sync(lambda c: heartbeats.start(c, poller="inbox", hostname="h", pid=pid, now=at))

    start(1, 0)
    start(1, 1)  # the same process id again (a restart that got it back)
    start(2, 1)
    assert sorted((b.pid, b.started_at) for b in await db.read(heartbeats.latest)) == [
        (1, START + timedelta(days=1)),
        (2, START + timedelta(days=1)),
    ]
    start(3, 9)  # more than a week later: the others are forgotten
    assert [b.pid for b in await db.read(heartbeats.latest)] == [3]


def pending(n: int, minutes_ago: int) -> dict[str, object]:
    at = START - timedelta(minutes=minutes_ago)
    return {
        "activity_id": f"https://peer.test/activities/{n}",
        "actor": "https://peer.test/users/a",
        "type": "Create",
        "body": "{}",
        "state": "pending",
        "attempts": 0,
        "received_at": at,
        "next_attempt_at": at,
    }


async def test_the_backlog_counts_what_waits_and_finds_the_oldest(db: Database) -> None:
    db.write_sync(
        lambda c: c.execute(
            insert(inbox_activities),
            [pending(1, 3), pending(2, 9), {**pending(3, 60), "state": "done"}],
        )
    )

    backlog = await db.read(lambda c: store.backlog(c, now=START))

    assert backlog.inbox_waiting == 2
    assert backlog.oldest_inbox == START - timedelta(minutes=9)
    assert backlog.deliveries_waiting == 0
    assert backlog.oldest_due is None


async def test_failing_and_recent_peers(db: Database) -> None:
    def domain(host: str, **values: object) -> dict[str, object]:
        return {
            "host": host,
            "policy": "",
            "reason": "",
            "unavailable": 0,
            "updated_at": START,
            "failing_since": None,
            "last_success_at": None,
            "last_error": None,
            **values,
        }

    rows = [
        domain("gone.test", failing_since=START - timedelta(days=3), unavailable=1, last_error="x"),
        domain("fine.test", last_success_at=START - timedelta(hours=1)),
        domain("older.test", last_success_at=START - timedelta(days=2)),
        domain("ancient.test", last_success_at=START - timedelta(days=30)),
    ]
    db.write_sync(lambda c: c.execute(insert(domains), rows))

    failing = await db.read(store.failing_peers)
    recent = await db.read(
        lambda c: store.recent_peers(c, since=START - timedelta(days=7), limit=3)
    )

    assert [(p.host, p.unavailable) for p in failing] == [("gone.test", True)]
    assert recent == ["fine.test", "older.test"]


async def test_a_probe_is_known_until_it_expires_or_is_removed(db: Database) -> None:
    db.write_sync(lambda c: store.add_probe(c, "n1", now=START))
    db.write_sync(lambda c: store.add_probe(c, "n2", now=START))

    def known(nonce: str, minutes: int) -> bool:
        at = START + timedelta(minutes=minutes)
        return db.read_sync(lambda c: store.probe_known(c, nonce, now=at))

    assert known("n1", 0)
    assert known("n2", 4)
    assert not known("n1", 6)
    assert not known("other", 0)
    db.write_sync(lambda c: store.remove_probe(c, "n2"))
    assert not known("n2", 0)
