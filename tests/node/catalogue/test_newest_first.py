"""Searches sorted by recency or relevance read SQLite's text index newest first to the
hour (migration 0023, node/catalogue/search.py): the pages are the exact order by
publication all the same, whatever order the offers were stored in, within an hour and
across hours, before 1970, and after an offer's publication or words change. The same
tests run on PostgreSQL, whose text index is not keyed so."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select, update

from node.catalogue import search as catalogue
from node.catalogue.store import Entry, put, put_many
from node.services.setup import migrate_database
from node.storage.database import Database
from node.storage.tables import offers

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
HOUR = datetime(2027, 2, 20, 14, 0, tzinfo=UTC)


def offer(n: int, published: datetime, words: str = "pain levain") -> Entry:
    return Entry(
        uri=f"https://coop.example/offers/{n}",
        actor="https://coop.example/actors/coop",
        title=f"Pain {n}",
        published=published,
        updated=published,
        document={"type": "Proposal"},
        texts=[words],
        categories=[],
        claims=[],
    )


# Stored in this order: within the hour of HOUR, the later stored are published earlier;
# then offers of the hours around it, one long before 1970, one in 1970's first hour.
MOMENTS = (
    [HOUR + timedelta(minutes=59 - 5 * n) for n in range(12)]
    + [HOUR + timedelta(hours=h, minutes=7) for h in (-3, 2, -1, 5, -30)]
    + [datetime(1960, 5, 1, tzinfo=UTC), datetime(1970, 1, 1, 0, 30, tzinfo=UTC)]
)


@pytest.fixture(autouse=True)
def planned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searched as a large catalogue is: counted, then planned."""
    monkeypatch.setattr(catalogue, "SMALL", 0)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate_database(database_url)
    database = Database(database_url, readers=1)
    made = [offer(n, moment) for n, moment in enumerate(MOMENTS)]
    database.write_sync(lambda conn: put_many(conn, made, now=NOW))
    try:
        yield database
    finally:
        database.close()


def pages(db: Database, params: dict[str, Any], limit: int) -> list[list[str]]:
    found: list[list[str]] = []
    cursor = None
    while len(found) < 50:
        asked = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        query = catalogue.parse_query(asked)
        page = db.read_sync(lambda c, q=query: catalogue.search(c, q, now=NOW))  # type: ignore[misc]
        found.append([hit.uri.rsplit("/", 1)[1] for hit in page.hits])
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("the pages never end")


def by_publication(db: Database) -> list[str]:
    """Every offer, newest first, as the database sorts them."""
    return db.read_sync(
        lambda c: [
            uri.rsplit("/", 1)[1]
            for uri in c.execute(
                select(offers.c.uri).order_by(offers.c.published.desc(), offers.c.id.desc())
            ).scalars()
        ]
    )


@pytest.mark.parametrize("limit", [1, 2, 5, 7, 100])
def test_pages_by_recency_follow_publication_whatever_the_order_stored(
    db: Database, limit: int
) -> None:
    newest = by_publication(db)
    assert newest[:3] == ["15", "13", "0"]  # 5 h and 2 h after HOUR, then its last minute
    assert newest[-2:] == ["18", "17"]  # 1970's first hour, then 1960
    found = pages(db, {"q": "levain", "sort": "recent"}, limit)
    assert [n for page in found for n in page] == newest
    assert all(len(page) == limit for page in found[:-1])


def test_relevance_ranks_the_newest_matches(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # The 5 newest to the hour on SQLite (5 h and 2 h after HOUR, then the last 3
    # stored in HOUR's hour), the last 5 stored on PostgreSQL, ranked.
    monkeypatch.setattr(catalogue, "CANDIDATES", 5)
    found = {n for page in pages(db, {"q": "pain"}, 2) for n in page}
    if db.engine.dialect.name == "sqlite":
        assert found == {"15", "13", "11", "10", "9"}
    else:
        assert found == {str(n) for n in range(len(MOMENTS) - 5, len(MOMENTS))}


def test_a_changed_publication_or_text_moves_the_offer_once(db: Database) -> None:
    # Republished an hour before the newest (by a statement that sets nothing else):
    # found there, once.
    db.write_sync(
        lambda conn: conn.execute(
            update(offers)
            .where(offers.c.uri.endswith("/16"))
            .values(published=HOUR + timedelta(hours=4))
        )
    )
    newest = by_publication(db)
    assert newest[:2] == ["15", "16"]
    found = pages(db, {"q": "levain", "sort": "recent"}, 3)
    assert [n for page in found for n in page] == newest
    # Its words changed: found by the new ones only.
    reworded = offer(16, HOUR + timedelta(hours=4), words="pain levain complet")
    db.write_sync(lambda conn: put(conn, reworded, now=NOW))
    assert pages(db, {"q": "complet", "sort": "recent"}, 3) == [["16"]]
    found = pages(db, {"q": "levain", "sort": "recent"}, 3)
    assert [n for page in found for n in page] == newest
    # Gone: found no more, by any plan.
    db.write_sync(lambda conn: conn.execute(delete(offers).where(offers.c.uri.endswith("/16"))))
    assert "16" not in [n for page in pages(db, {"q": "levain", "sort": "recent"}, 4) for n in page]
    assert pages(db, {"q": "complet", "sort": "recent"}, 3) == [[]]
    if db.engine.dialect.name == "sqlite":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO offers_fts(offers_fts) VALUES ('integrity-check')")
            keyed = conn.exec_driver_sql(
                "SELECT count(*) FROM offers_fts WHERE offers_fts MATCH 'levain'"
            ).scalar_one()
            assert keyed == db.read_sync(
                lambda c: c.execute(select(func.count()).select_from(offers)).scalar_one()
            )


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
def test_a_cursor_at_either_end_of_time_pages_on(db: Database, moment: str) -> None:
    cursor = catalogue._encode_cursor([moment, catalogue.MAX_ID])
    query = catalogue.parse_query({"q": "levain", "sort": "recent", "cursor": cursor})
    page = db.read_sync(lambda c: catalogue.search(c, query, now=NOW))
    expected = [] if moment.startswith("0001") else by_publication(db)[:20]
    assert [hit.uri.rsplit("/", 1)[1] for hit in page.hits] == expected


def test_pages_by_recency_read_period_by_period_are_exact(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL asks its text index for the newest periods of publication first
    (migration 0024): offers over a year, stored in another order, every page exact,
    the last through the oldest periods. An offer whose text holds the word of the
    newest period is found in its own period all the same (SQLite has no periods: the
    same pages)."""
    migrate_database(database_url)
    db = Database(database_url, readers=1)
    # Estimated as a large catalogue's words, found by the text index: a period or two
    # asked at first.
    monkeypatch.setattr(catalogue, "_estimate", lambda conn, text, size: (100_000, 100_000))
    monkeypatch.setattr(catalogue._Sizes, "plan", lambda self, *args: "text")
    asked: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if isinstance(parameters, dict):
            asked.extend(str(v) for v in parameters.values() if "zzt" in str(v))

    try:
        newest_period = catalogue._period(NOW)
        moments = [NOW - timedelta(days=(n * 37) % 365, minutes=n) for n in range(120)]
        made = [offer(n, moment) for n, moment in enumerate(moments)]
        made.append(offer(120, NOW - timedelta(days=400), words=f"pain levain zzt{newest_period}"))
        db.write_sync(lambda conn: put_many(conn, made, now=NOW))
        newest = by_publication(db)
        assert newest[-1] == "120"
        assert len({catalogue._period(m) for m in moments}) > 30
        for limit in (3, 20, 50):
            found = pages(db, {"q": "levain", "sort": "recent"}, limit)
            assert [n for page in found for n in page] == newest, limit
        # From a cursor past every period Python's dates hold, or before the first.
        for moment, expected in (
            ("9999-12-31T23:59:59+00:00", newest[:20]),
            ("1969-12-31T00:00:00+00:00", []),
        ):
            cursor = catalogue._encode_cursor([moment, catalogue.MAX_ID])
            query = catalogue.parse_query({"q": "levain", "sort": "recent", "cursor": cursor})
            page = db.read_sync(lambda c, q=query: catalogue.search(c, q, now=NOW))  # type: ignore[misc]
            assert [hit.uri.rsplit("/", 1)[1] for hit in page.hits] == expected, moment
        if db.engine.dialect.name == "postgresql":
            assert any(f"zzt{newest_period - 1}" in words for words in asked)
    finally:
        db.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_words_that_go_together_are_estimated_by_the_rarest(database_url: str) -> None:
    """PostgreSQL's planner takes a search's words as independent: "poires pears",
    written together in a quarter of the offers, would be estimated at a sixteenth.
    From its statistics, the rarest word's share is taken, narrowed by a category's."""
    migrate_database(database_url)
    db = Database(database_url, readers=1)
    try:
        made = [
            offer(n, NOW - timedelta(hours=n), words="poires pears" if n % 4 == 0 else "miel")
            for n in range(400)
        ]
        db.write_sync(lambda conn: put_many(conn, made, now=NOW))
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE offers")
        catalogue._WORD_STATS.clear()
        query = catalogue.parse_query({"q": "poires pears", "sort": "recent"})

        def estimate(conn: Any) -> int:
            text = catalogue._Text.of(conn, query)
            assert text is not None
            return catalogue._estimate(conn, text, 400)[0]

        assert 80 <= db.read_sync(estimate) <= 120
    finally:
        catalogue._WORD_STATS.clear()
        db.close()
