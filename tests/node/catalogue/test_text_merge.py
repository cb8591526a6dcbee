"""SQLite's text index, grown a segment a write, is merged into one by the catalogue's
poller once a day, a step at a time (node/catalogue/worker.py); searches find the same
offers before and after, and PostgreSQL has nothing to merge: there the poller makes the
recent indexes (node/catalogue/recent_store.py). What they save is measured by
bench/catalogue.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Connection

from node.catalogue import recent_store as recent
from node.catalogue import search as catalogue
from node.catalogue.store import Entry, merge_text_index, put_many
from node.catalogue.worker import MERGE_EVERY, _Merging
from tests.support.network import Network, TestNode


def entries(write: int, count: int, at: TestNode) -> list[Entry]:
    now = at.node.clock.now()
    return [
        Entry(
            uri=f"https://coop.example/offers/{write}-{n}",
            actor="https://coop.example/actors/coop",
            title=f"Miel de lavande {write} {n}",
            published=now - timedelta(minutes=write * 100 + n),
            updated=now,
            document={"type": "Proposal"},
            texts=[f"pot numero{n} ecrit{write}"],
        )
        for n in range(count)
    ]


async def write(at: TestNode, number: int, count: int = 30) -> None:
    made = entries(number, count, at)
    now = at.node.clock.now()
    await at.node.db.write(lambda conn: put_many(conn, made, now=now))


def segments(conn: Connection) -> int:
    """How many segments SQLite's text index holds (FTS5 lists each one's leaf pages)."""
    query = "SELECT count(DISTINCT segid) FROM offers_fts_idx"
    return int(conn.exec_driver_sql(query).scalar_one())


async def found(at: TestNode, words: str) -> list[str]:
    query = catalogue.parse_query({"q": words, "limit": "100"})
    now = at.node.clock.now()
    page = await at.node.db.read(lambda conn: catalogue.search(conn, query, now=now))
    return [hit.uri for hit in page.hits]


async def test_the_index_is_merged_into_one_a_step_at_a_time_once_a_day(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    node = alpha.node
    for number in range(6):
        await write(alpha, number)
    before = await found(alpha, "lavande")
    assert len(before) == 100
    sqlite = node.db.engine.dialect.name == "sqlite"
    if sqlite:
        assert await node.db.read(segments) > 1

    merging = _Merging()
    steps = 0
    while await merging.run_once(node):
        steps += 1
        assert steps < 100
    assert await found(alpha, "lavande") == before
    assert await found(alpha, "ecrit3 numero7") == ["https://coop.example/offers/3-7"]
    if not sqlite:
        assert steps == 0  # PostgreSQL's GIN index has no segments to merge
        assert not await node.db.write(merge_text_index)
        return
    assert steps >= 1
    assert await node.db.read(segments) == 1
    assert not await node.db.write(merge_text_index)  # merged: a step finds nothing to do

    # New offers add a segment; the poller leaves it until a day has passed.
    await write(alpha, 6)
    assert await node.db.read(segments) > 1
    network.clock.advance(MERGE_EVERY - timedelta(minutes=1))
    assert await merging.run_once(node) == 0
    network.clock.advance(timedelta(minutes=1))
    while await merging.run_once(node):
        pass
    assert await node.db.read(segments) == 1
    assert len(await found(alpha, "lavande")) == 100  # a page of them
    assert await found(alpha, "ecrit6 numero29") == ["https://coop.example/offers/6-29"]
    with node.db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO offers_fts(offers_fts) VALUES ('integrity-check')")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_on_postgresql_the_round_makes_the_recent_indexes(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recent, "TIERS", (40,))
    alpha = await network.add("alpha.test")
    for number in range(3):
        await write(alpha, number)
    merging = _Merging()
    assert await merging.run_once(alpha.node) == 1  # made: the round goes on at once
    assert await merging.run_once(alpha.node) == 0
    assert await alpha.node.db.read(recent.recent_tiers) == ((1, 50),)
