"""PostgreSQL's recent indexes (node/catalogue/recent_store.py): made once twice the offers
each holds at least lie past its id, made again further on as offers arrive, the old
ones dropped, one a stopped build left invalid replaced; none on SQLite. What they
save a search is shown by test_plans.py and bench/catalogue.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from node.catalogue import recent_store as recent
from node.catalogue.store import Entry, put_many
from node.services.setup import migrate_database
from node.storage.database import Database

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def entries(first: int, count: int) -> list[Entry]:
    return [
        Entry(
            uri=f"https://coop.example/offers/{n}",
            actor="https://coop.example/actors/coop",
            title=f"Pommes {n}",
            published=NOW,
            updated=NOW,
            document={"type": "Proposal"},
        )
        for n in range(first, first + count)
    ]


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setattr(recent, "TIERS", (20, 50))
    migrate_database(database_url)
    database = Database(database_url, readers=1)
    try:
        yield database
    finally:
        database.close()


def store(db: Database, first: int, count: int) -> None:
    db.write_sync(lambda conn: put_many(conn, entries(first, count), now=NOW))


def afters(db: Database) -> tuple[tuple[int, int], ...]:
    return db.read_sync(recent.recent_tiers)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_each_is_made_past_twice_its_offers_then_again_further_on(db: Database) -> None:
    store(db, 0, 90)
    # 90 offers: more than twice 20, not twice 50.
    assert recent.renew(db.engine) == ["ix_offers_search_recent1_beyond_70"]
    assert afters(db) == ((1, 70),)
    assert recent.renew(db.engine) == []
    store(db, 90, 20)
    # 110: 40 past the first (not more than twice 20), 110 past none (more than 100).
    assert recent.renew(db.engine) == ["ix_offers_search_recent2_beyond_60"]
    assert afters(db) == ((1, 70), (2, 60))
    store(db, 110, 10)
    assert recent.renew(db.engine) == ["ix_offers_search_recent1_beyond_100"]
    assert afters(db) == ((1, 100), (2, 60))
    assert set(indexes(db)) == {
        "ix_offers_search_recent1_beyond_100",
        "ix_offers_search_recent2_beyond_60",
    }


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_one_a_stopped_build_left_invalid_is_made_again(db: Database) -> None:
    store(db, 0, 90)
    recent.renew(db.engine)
    # As a build stopped half-way leaves it (CREATE INDEX CONCURRENTLY).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(
            "UPDATE pg_index SET indisvalid = false "
            "WHERE indexrelid = 'ix_offers_search_recent1_beyond_70'::regclass"
        )
    assert afters(db) == ()
    assert recent.renew(db.engine) == ["ix_offers_search_recent1_beyond_70"]
    assert afters(db) == ((1, 70),)
    assert indexes(db) == {"ix_offers_search_recent1_beyond_70": True}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_those_of_tiers_no_longer_made_are_dropped(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(db, 0, 120)
    assert len(recent.renew(db.engine)) == 2
    monkeypatch.setattr(recent, "TIERS", (20,))
    assert recent.renew(db.engine) == []
    assert set(indexes(db)) == {"ix_offers_search_recent1_beyond_100"}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_those_an_older_coopnode_made_are_dropped(db: Database) -> None:
    # Their conditions: "id > <id>" let PostgreSQL's plans read the primary key beside;
    # "id + 0 > <id>" in each tier, a larger index for a smaller one's offers.
    store(db, 0, 90)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(
            "CREATE INDEX ix_offers_search_recent1_after_70 ON offers "
            "USING gin (search_vector) WHERE id > 70"
        )
        conn.exec_driver_sql(
            "CREATE INDEX ix_offers_search_recent1_past_70 ON offers "
            "USING gin (search_vector) WHERE id + 0 > 70"
        )
    assert afters(db) == ()
    assert recent.renew(db.engine) == ["ix_offers_search_recent1_beyond_70"]
    names = [name for name, _ in db.read_sync(recent._all) if "recent" in name]
    assert names == ["ix_offers_search_recent1_beyond_70"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_every_text_index_keeps_a_short_list_of_entries_not_yet_merged(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every search reads the whole list of each text index it asks (migration 0026):
    the recent indexes and the index of the offers published last are made with the
    whole index's short one, which the migration gave it."""
    monkeypatch.setattr(recent, "PUBLISHED", 10)
    published(db, 0, 90, last=NOW)
    assert len(recent.renew(db.engine)) == 2
    with db.engine.connect() as conn:
        options = dict(
            conn.exec_driver_sql(
                "SELECT c.relname, c.reloptions FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'offers'::regclass AND c.relname LIKE 'ix\\_offers\\_search%%'"
            ).all()
        )
    assert len(options) == 3
    assert all(found == ["gin_pending_list_limit=256"] for found in options.values()), options


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_process_at_it_keeps_another_out(db: Database) -> None:
    store(db, 0, 90)
    with db.engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({recent.LOCK_KEY})")
        assert recent.renew(db.engine) == []
        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({recent.LOCK_KEY})")
    assert recent.renew(db.engine) == ["ix_offers_search_recent1_beyond_70"]


def published(db: Database, first: int, count: int, last: datetime) -> None:
    """Offers published a minute apart, the last at ``last``."""
    made = [
        replace(entry, published=last - timedelta(minutes=count - 1 - n))
        for n, entry in enumerate(entries(first, count))
    ]
    db.write_sync(lambda conn: put_many(conn, made, now=NOW))


def named(moment: datetime) -> str:
    return f"ix_offers_search_published_from_{int(moment.timestamp())}"


@pytest.fixture
def published_only(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index of the offers published last alone, of 10 offers at least (after
    ``db``, which sets the tiers)."""
    monkeypatch.setattr(recent, "TIERS", ())
    monkeypatch.setattr(recent, "PUBLISHED", 10)


@pytest.mark.usefixtures("published_only")
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_offers_published_last_have_theirs_made_again_further_on(db: Database) -> None:
    # 20 offers: not more than twice 10.
    published(db, 0, 20, last=NOW)
    assert recent.renew(db.engine) == []
    assert db.read_sync(recent.published_from) is None
    # 21: from the 11th last published on (9 minutes before NOW).
    published(db, 20, 1, last=NOW + timedelta(minutes=1))
    start = NOW - timedelta(minutes=9)
    assert recent.renew(db.engine) == [named(start)]
    assert db.read_sync(recent.published_from) == start
    # Offers stored now but published long before (a backfill) are not among them.
    published(db, 100, 30, last=NOW - timedelta(hours=1))
    assert recent.renew(db.engine) == []
    # 11 more published since: 22 from its moment on, more than twice 10.
    published(db, 200, 11, last=NOW + timedelta(minutes=12))
    later = NOW + timedelta(minutes=2)
    assert recent.renew(db.engine) == [named(later)]
    assert db.read_sync(recent.published_from) == later
    assert recent_published(db) == {named(later): True}


@pytest.mark.usefixtures("published_only")
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_one_of_the_offers_published_last_left_invalid_is_made_again(db: Database) -> None:
    published(db, 0, 30, last=NOW)
    (name,) = recent.renew(db.engine)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %(name)s::regclass",
            {"name": name},
        )
    assert db.read_sync(recent.published_from) is None
    assert recent.renew(db.engine) == [name]
    assert recent_published(db) == {name: True}


@pytest.mark.usefixtures("published_only")
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_offers_dated_before_1970_have_theirs_from_1970(db: Database) -> None:
    """A peer's dates are its own: the index's name, and the moment it starts from,
    are never negative (a name with a minus sign would not be SQL)."""
    published(db, 0, 30, last=datetime(1900, 1, 1, tzinfo=UTC))
    assert recent.renew(db.engine) == ["ix_offers_search_published_from_0"]
    assert db.read_sync(recent.published_from) == datetime(1970, 1, 1, tzinfo=UTC)
    assert recent.renew(db.engine) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_has_none(db: Database) -> None:
    store(db, 0, 200)
    assert recent.renew(db.engine) == []
    assert afters(db) == ()


def indexes(db: Database) -> dict[str, bool]:
    return {name: valid for name, (_, _, valid) in db.read_sync(recent._indexes).items()}


def recent_published(db: Database) -> dict[str, bool]:
    return {name: valid for name, (_, valid) in db.read_sync(recent._published).items()}
