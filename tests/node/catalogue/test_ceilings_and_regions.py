"""PostgreSQL's text index holds the ceilings of each offer's price and its region
(migration 0025, node/catalogue/text.py): the words a search up to a price asks for hold
exactly the offers whose price's power of two is at most its own, in its currency,
whatever the price; the region PostgreSQL gives a place is the one Python names, at
every edge of the grid; searches give the pages of searches without them; and the
migration makes and unmakes them on a catalogue already stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select, text

from node.catalogue import search as catalogue
from node.catalogue.store import MAX_SCALED_PRICE, Entry, put_many, unscaled_price
from node.catalogue.text import CEILINGS, ceiling_words, region_words
from node.services.setup import migrate_database
from node.storage import migrate
from node.storage.database import Database
from node.storage.engine import create_null_pool_engine
from node.storage.tables import offers

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
COOP = "https://coop.example/actors/coop"
# Every power of two's edges, in ten-thousandths: 0, 1, 2^k - 1, 2^k, up to the largest.
EDGES = sorted(
    {0, 1, MAX_SCALED_PRICE, *(2**k - 1 for k in range(1, 63)), *(2**k for k in range(63))}
)
# Currencies whose offers have no ceilings: a code not in capitals, a peer's URI.
OTHERS = ["eur", "Eur", "https://money.example/units/hour", "ÉUR", "EURO"]


def entry(n: int, scaled: int | None, currency: str | None = "EUR", **fields: Any) -> Entry:
    return Entry(
        **{
            "uri": f"https://coop.example/offers/{n}",
            "actor": COOP,
            "title": fields.pop("title", "Confiture de prunes"),
            "published": NOW - timedelta(minutes=n),
            "updated": NOW,
            "document": {"type": "Proposal"},
            "currency": currency,
            "price": None if scaled is None else unscaled_price(scaled),
            **fields,
        }
    )


def edges() -> list[Entry]:
    made = [entry(n, scaled) for n, scaled in enumerate(EDGES)]
    made += [entry(1000 + n, 2**17, currency) for n, currency in enumerate(OTHERS)]
    made.append(entry(2000, None))
    return made


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate_database(database_url)
    database = Database(database_url, readers=1)
    database.write_sync(lambda conn: put_many(conn, edges(), now=NOW))
    try:
        yield database
    finally:
        database.close()


def held_by(db: Database, words: list[str]) -> set[str]:
    """The offers the text index finds by any of ``words``."""
    statement = select(offers.c.uri).where(
        text("search_vector @@ to_tsquery('simple', :words)").bindparams(words=" | ".join(words))
    )
    found = db.read_sync(lambda conn: set(conn.execute(statement).scalars()))
    return {uri.rsplit("/", 1)[1] for uri in found}


def stored_and_analyzed(db: Database, made: list[Entry]) -> list[str]:
    """Stores ``made`` and has PostgreSQL's statistics read (as autovacuum would), then
    records the values of every statement's parameters from now on."""
    db.write_sync(lambda conn: put_many(conn, made, now=NOW))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE offers")
    asked: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        asked.extend(str(value) for value in (parameters or {}).values())

    return asked


def first_page(db: Database, params: dict[str, str]) -> list[str]:
    query = catalogue.parse_query({**params, "limit": "100"})
    page = db.read_sync(lambda c: catalogue.search(c, query, now=NOW))
    return [hit.uri.rsplit("/", 1)[1] for hit in page.hits]


def test_the_ceilings_asked_hold_exactly_the_prices_up_to_their_power(db: Database) -> None:
    for high in [*EDGES, 150_000, 10**10]:
        words = ceiling_words("EUR", high)
        assert words is not None
        # One word per CEILINGS powers, down from the price's: few, whatever the price.
        assert len(words) <= high.bit_length() // CEILINGS + 1
        expected = {
            str(n) for n, scaled in enumerate(EDGES) if scaled.bit_length() <= high.bit_length()
        }
        assert held_by(db, words) == expected, high


def test_offers_in_another_currency_or_unpriced_have_no_ceilings(db: Database) -> None:
    # A search in such a currency is not asked ceilings: SQL compares the price alone.
    for currency in OTHERS:
        assert ceiling_words(currency, 2**20) is None
    assert ceiling_words("USD", 2**20) == ["zzq21xusd", "zzq13xusd", "zzq5xusd"]
    everything = [f"zzq{k}x{code}" for k in range(70) for code in ("eur", "usd")]
    assert held_by(db, everything) == {str(n) for n in range(len(EDGES))}


def test_a_search_up_to_a_price_asks_for_its_ceilings_and_finds_the_same_pages(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue, "SMALL", 0)  # planned as a large catalogue is
    # Prices from 1 to 50 EUR, with the words of their own: the statistics show how many
    # offers each power's word holds.
    stock = [
        entry(3000 + n, 10_000 + 4_900 * n, title=f"Pommes {'bio' if n % 3 else 'reinette'}")
        for n in range(100)
    ]
    stock += [entry(3200 + n, 10_000 + 4_900 * n, currency="eur", title="Pommes") for n in range(9)]
    asked = stored_and_analyzed(db, stock)

    def found(params: dict[str, str]) -> list[str]:
        return first_page(db, params)

    for sort in ("relevance", "recent", "price"):
        for currency, top in (("EUR", "5"), ("EUR", "12.5"), ("EUR", "30"), ("eur", "5")):
            params = {"q": "pommes", "sort": sort, "currency": currency, "max_price": top}
            asked.clear()
            with_ceilings = found(params)
            ceilings = any(" zzq" in f" {value}" for value in asked)
            # Up to 30 EUR holds more than half of them: the rows are left to SQL.
            assert ceilings is (currency == "EUR" and top != "30"), params
            with monkeypatch.context() as patched:
                patched.setattr(catalogue, "_ceiling", lambda conn, query: None)
                assert found(params) == with_ceilings, params
            ceiling = Decimal(top)
            expected = [
                e.uri.rsplit("/", 1)[1]
                for e in stock
                if e.currency == currency and e.price is not None and e.price <= ceiling
            ]
            assert sorted(with_ceilings) == sorted(expected), params


def test_the_migration_makes_and_unmakes_the_ceilings_of_a_stored_catalogue(
    database_url: str,
) -> None:
    engine = create_null_pool_engine(database_url)
    try:
        migrate.upgrade(engine, "0024")
        with engine.begin() as conn:
            put_many(conn, edges(), now=NOW)
        ceilings = text(
            "SELECT count(*) FROM offers WHERE search_vector @@ to_tsquery('simple', :words)"
        ).bindparams(words=" | ".join(ceiling_words("EUR", MAX_SCALED_PRICE) or []))
        with engine.connect() as conn:
            assert conn.execute(ceilings).scalar_one() == 0
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(ceilings).scalar_one() == len(EDGES)
        migrate.upgrade_or_downgrade(engine, "0024")
        with engine.connect() as conn:
            assert conn.execute(ceilings).scalar_one() == 0
            assert (
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_proc WHERE proname = 'coopnode_catalogue_ceilings'"
                ).scalar_one()
                == 0
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(ceilings).scalar_one() == len(EDGES)
    finally:
        engine.dispose()


# Places at the grid's edges (every two degrees, each side of them, both zeros) and
# within it; a place off the globe (a latitude of 95) has no region.
EDGE_DEGREES = [-90.0, -89.9999999, -2.0, -1e-9, -0.0, 0.0, 1e-9, 1.9999999999, 2.0, 45.5]
PLACES = [(lat, lon) for lat in EDGE_DEGREES for lon in [*EDGE_DEGREES, -180.0, 179.999]]


def test_the_region_postgresql_gives_a_place_is_the_one_python_names(db: Database) -> None:
    made = [
        entry(5000 + n, None, None, latitude=lat, longitude=lon)
        for n, (lat, lon) in enumerate(PLACES)
    ]
    made += [entry(6000, None, None, latitude=95.0, longitude=0.0)]
    db.write_sync(lambda conn: put_many(conn, made, now=NOW))
    named: dict[str, set[str]] = {}
    for n, (lat, lon) in enumerate(PLACES):
        (word,) = region_words(lat, lat, lon, lon) or []
        named.setdefault(word, set()).add(str(5000 + n))
    for word, places in named.items():
        assert held_by(db, [word]) == places, word
    rows = range(-2, 95)
    everywhere = [f"zzr{row}x{column}" for row in rows for column in range(-2, 185)]
    found = set()
    for start in range(0, len(everywhere), 2000):
        found |= held_by(db, everywhere[start : start + 2000])
    assert found == {str(5000 + n) for n in range(len(PLACES))}


def test_a_search_near_a_point_asks_for_its_regions_and_finds_the_same_pages(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue, "SMALL", 0)  # planned as a large catalogue is
    # Around Lyon and Die (2 degrees apart in latitude: other regions), some further off.
    towns = [(45.764, 4.8357), (44.7539, 5.3703), (47.0, 4.0)]
    placed = [
        entry(
            7000 + n,
            10_000 + 4_900 * (n % 50),
            title=f"Miel {'de lavande' if n % 2 else 'de sapin'}",
            latitude=towns[n % 3][0] + (n % 7 - 3) * 0.05,
            longitude=towns[n % 3][1] + (n % 5 - 2) * 0.08,
        )
        for n in range(150)
    ]
    asked = stored_and_analyzed(db, placed)

    def found(params: dict[str, str]) -> list[str]:
        return first_page(db, params)

    regions_asked = 0
    for sort in ("relevance", "recent", "distance"):
        for near, km in (("45.764,4.8357", "60"), ("44.7539,5.3703", "25"), ("46.2,4.5", "90")):
            params = {"q": "miel", "sort": sort, "near": near, "within_km": km}
            asked.clear()
            with_regions = found(params)
            regions_asked += any(" zzr" in f" {value}" for value in asked)
            with monkeypatch.context() as patched:
                patched.setattr(catalogue, "_regions", lambda *args: None)
                asked.clear()
                assert found(params) == with_regions, params
                assert not any(" zzr" in f" {value}" for value in asked)
            assert with_regions, params
    assert regions_asked
