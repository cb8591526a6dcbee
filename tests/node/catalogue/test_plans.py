"""The catalogue's search plans (node/catalogue/search.py) give the same pages: reading
the text index (on SQLite, newest first to the hour), walking the offers in order
(PostgreSQL), or reading an indexed filter whole, and a walk that ends too soon falls
back to the text index. On a small catalogue the plans
are forced; the sizes that choose them in a large one are shown by bench/catalogue.py.
Also: the catalogue's words that a search spells prefixes with, relevance, and the
bound on what relevance ranks."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select

from node.catalogue import recent_store as recent
from node.catalogue import search as catalogue
from node.catalogue.store import MAX_SCALED_PRICE, Entry, put, put_many, remove_actor, scaled_price
from node.catalogue.text import price_word, price_words
from node.services.setup import migrate_database
from node.storage.database import Database
from node.storage.tables import catalogue_words, offers

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
COOPS = [f"https://coop{n}.example/actors/coop" for n in range(4)]
WORDS = ["pommes", "pommeraie", "poires", "miel", "lavande", "pain", "levain", "vélo"]
FILLER = ["frais", "bio", "maison", "de", "la"]
CATEGORIES = ["fruit", "honey", "bread", "bikes"]
TOWNS = [("Lyon", 45.764, 4.8357), ("Die", 44.7539, 5.3703), ("Rennes", 48.1173, -1.6778)]
OFFERS = 300


def entries() -> list[Entry]:
    """OFFERS offers, published in an order other than the one they are stored in."""
    rng = random.Random(7)
    made = []
    for n in range(OFFERS):
        town, lat, lon = rng.choice(TOWNS)
        title = " ".join([*rng.sample(WORDS, k=2), rng.choice(FILLER)]).capitalize()
        made.append(
            Entry(
                uri=f"https://coop{n % 4}.example/offers/{n}",
                actor=COOPS[n % 4],
                title=title,
                published=NOW - timedelta(minutes=rng.randrange(60 * 24 * 30)),
                updated=NOW,
                document={"type": "Proposal"},
                texts=[" ".join(rng.sample(WORDS + FILLER, k=rng.randrange(1, 8))), town],
                categories=[rng.choice(CATEGORIES)],
                claims=rng.sample(["organic", "local"], k=rng.randrange(3)),
                currency="EUR",
                price=Decimal(rng.randrange(100, 5000)) / 100,
                place=town,
                latitude=lat + rng.uniform(-0.1, 0.1),
                longitude=lon + rng.uniform(-0.1, 0.1),
                end_time=NOW - timedelta(days=1) if n % 7 == 0 else None,
            )
        )
    return made


@pytest.fixture(autouse=True)
def planned(monkeypatch: pytest.MonkeyPatch) -> None:
    """These 300 offers are searched as a large catalogue is: counted, then planned."""
    monkeypatch.setattr(catalogue, "SMALL", 0)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate_database(database_url)
    database = Database(database_url, readers=1)
    made = entries()
    database.write_sync(lambda conn: put_many(conn, made[: OFFERS // 2], now=NOW))
    database.write_sync(lambda conn: [put(conn, e, now=NOW) for e in made[OFFERS // 2 :]] and None)
    try:
        yield database
    finally:
        database.close()


QUERIES: list[dict[str, Any]] = [
    {"q": "pom"},
    {"q": "pommes miel"},
    {"q": "po la", "status": "any"},
    {"q": "lav", "currency": "EUR", "max_price": "20"},
    {"q": "pain", "category": ["bread", "fruit"], "currency": "EUR", "min_price": "5"},
    {"q": "frais", "claim": "organic", "near": "45.764,4.8357", "within_km": "30"},
    {"q": "velo", "coop": COOPS[1]},
    {"q": "poires", "coop": COOPS[2], "currency": "EUR", "max_price": "30"},
    {"q": "lyon", "status": "expired"},
]


def pages(db: Database, params: dict[str, Any], limit: int = 7) -> list[list[str]]:
    """Every page of the search, each as its offers' numbers."""
    found: list[list[str]] = []
    cursor = None
    while len(found) < 100:
        asked = {**params, "limit": str(limit)}
        if cursor is not None:
            asked["cursor"] = cursor
        query = catalogue.parse_query(asked)
        page = db.read_sync(lambda c, q=query: catalogue.search(c, q, now=NOW))  # type: ignore[misc]
        found.append([hit.uri.rsplit("/", 1)[1] for hit in page.hits])
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("the pages never end")


def recorded_with_parameters(db: Database) -> list[tuple[str, Any]]:
    """The statements run on ``db`` from now on, each with its parameters."""
    asked: list[tuple[str, Any]] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        asked.append((statement, parameters))

    return asked


def recorded(db: Database) -> list[str]:
    """The statements run on ``db`` from now on."""
    statements: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    return statements


def sizes_of(conn: Any, query: catalogue.Query) -> tuple[Any, Any]:
    """What a search of ``query`` is planned by, and the words it asks (see _Sizes)."""
    text = catalogue._Text.of(conn, query)
    assert text is not None
    shape = catalogue._Shape.of(conn.dialect.name, query, text)
    return catalogue._Sizes.of(conn, query, text, shape, catalogue._values(query, NOW, text))


def forced(monkeypatch: pytest.MonkeyPatch, plan: str) -> None:
    monkeypatch.setattr(catalogue._Sizes, "plan", lambda self, sort, needed, dialect: plan)


@pytest.mark.parametrize("sort", ["recent", "relevance", "price"])
def test_every_plan_gives_the_same_pages(
    db: Database, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    # Relevance ranks the 40 newest matching offers: the plans must agree on them.
    monkeypatch.setattr(catalogue, "CANDIDATES", 40)
    walks = db.engine.dialect.name != "sqlite"
    chosen = catalogue._Sizes.plan
    for params in QUERIES:
        params = {**params, "sort": sort}
        if sort == "price":
            params["currency"] = "EUR"
        monkeypatch.setattr(catalogue._Sizes, "plan", chosen)
        as_planned = pages(db, params)
        forced(monkeypatch, "text")
        by_text = pages(db, params)
        assert as_planned == by_text, ("as planned", params)
        assert sum(map(len, by_text)) > 0 or params.get("status") == "expired", params
        if walks:  # by price, the walk is not a plan: the text index drives
            forced(monkeypatch, "walk")
            assert pages(db, params) == by_text, ("walk", params)
        if "max_price" in params or "min_price" in params or "coop" in params:
            forced(monkeypatch, "filter")
            assert pages(db, params) == by_text, ("filter", params)


# Pages a walk reads far for: honey near Die, newest first.
NEAR_DIE = {"q": "miel", "sort": "recent", "near": "44.7539,5.3703", "within_km": "20"}


def by_text_then_walked(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """NEAR_DIE's pages by the text index; the plan is then forced to walk."""
    forced(monkeypatch, "text")
    by_text = pages(db, NEAR_DIE)
    forced(monkeypatch, "walk")
    return by_text


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite never walks
def test_a_walk_that_ends_too_soon_gives_way_to_the_text_index(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_text = by_text_then_walked(db, monkeypatch)
    monkeypatch.setattr(catalogue._Sizes, "walk_bound", lambda self, sort: 5)
    # As if the last stored had promised a walk that then ends short.
    monkeypatch.setattr(catalogue, "_walk_borne_out", lambda *args: True)
    assert pages(db, NEAR_DIE) == by_text
    assert len(by_text) > 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite never walks
def test_a_walk_the_last_stored_show_too_long_is_not_begun(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planned to walk, newest first, but too few of the last stored match for it to
    end within its bound: the text index drives from the start."""
    by_text = by_text_then_walked(db, monkeypatch)
    monkeypatch.setattr(catalogue._Sizes, "walk_bound", lambda self, sort: 5)
    statements = recorded(db)

    assert pages(db, NEAR_DIE) == by_text
    assert any("sampled" in s for s in statements)
    assert not any("walked" in s for s in statements)
    # With a bound it can end within, the walk is taken.
    monkeypatch.setattr(catalogue._Sizes, "walk_bound", lambda self, sort: OFFERS)
    statements.clear()
    assert pages(db, NEAR_DIE) == by_text
    assert any("walked" in s for s in statements)


def test_relevance_ranks_the_newest_matching_offers(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest by publication (to the hour) on SQLite, whose text index yields them
    so, the last stored on PostgreSQL, whose walks read them so; they differ here."""
    monkeypatch.setattr(catalogue, "CANDIDATES", 12)
    ranked = [uri for page in pages(db, {"q": "pommes"}, limit=5) for uri in page]
    newest = catalogue._HOUR_KEY if db.engine.dialect.name == "sqlite" else offers.c.id
    everything = db.read_sync(
        lambda c: [
            row.uri.rsplit("/", 1)[1]
            for row in c.execute(
                select(offers.c.uri, offers.c.search_text, offers.c.end_time).order_by(
                    newest.desc()
                )
            )
            if " pommes " in f" {row.search_text} " and row.end_time is None
        ]
    )
    assert len(everything) > 12
    assert sorted(ranked) == sorted(everything[:12])


def test_relevance_puts_title_words_first_then_shorter_texts(database_url: str) -> None:
    migrate_database(database_url)
    db = Database(database_url, readers=1)
    base = entries()[0]

    def offer(key: str, title: str, texts: list[str], minutes: int) -> Entry:
        return Entry(
            **{
                **{f: getattr(base, f) for f in base.__slots__},
                "uri": f"https://coop0.example/offers/{key}",
                "actor": COOPS[0],
                "title": title,
                "texts": texts,
                "published": NOW - timedelta(minutes=minutes),
                "end_time": None,
            }
        )

    made = [
        offer("mentions", "Confiture", ["avec du miel de lavande et des abricots"], 1),
        offer(
            "title-long", "Miel de lavande", ["un miel doux, récolté en juillet sur le plateau"], 2
        ),
        offer("title-short", "Miel de lavande", ["doux"], 3),
        offer("title-both", "Miel de lavande", ["lavande"], 4),  # its words: 3, each once
    ]
    try:
        db.write_sync(lambda conn: put_many(conn, made, now=NOW))
        assert pages(db, {"q": "miel"}, limit=10) == [
            ["title-both", "title-short", "title-long", "mentions"]
        ]
        assert pages(db, {"q": "lav miel"}, limit=10)[0][-1] == "mentions"
    finally:
        db.close()


def test_the_catalogues_words_hold_every_word_offers_are_found_by(db: Database) -> None:
    def read(conn: Any) -> tuple[set[str], set[str]]:
        kept = set(conn.execute(select(catalogue_words.c.word)).scalars())
        used = {
            w
            for text in conn.execute(select(offers.c.search_text)).scalars()
            for w in text.split()
            if not w.startswith("zz")
        }
        return kept, used

    kept, used = db.read_sync(read)
    assert used <= kept
    assert not any(w.startswith("zz") for w in kept)
    # Replacing an offer adds the words it now has; removing offers keeps the words,
    # which then find nothing.
    changed = Entry(
        **{**{f: getattr(entries()[5], f) for f in Entry.__slots__}, "title": "Quetsches"}
    )
    db.write_sync(lambda conn: put(conn, changed, now=NOW))
    assert "quetsches" in db.read_sync(read)[0]
    assert pages(db, {"q": "quets"}) == [["5"]]
    db.write_sync(lambda conn: remove_actor(conn, COOPS[1]))
    assert pages(db, {"q": "quets"}) == [[]]


@pytest.mark.parametrize("words", ["truffes", "pommesx", "zzz", "q"])
def test_a_word_that_begins_no_word_finds_nothing(db: Database, words: str) -> None:
    assert pages(db, {"q": words}) == [[]]
    assert pages(db, {"q": f"pommes {words}", "sort": "recent"}) == [[]]


def test_a_prefix_of_many_words_is_asked_as_a_prefix(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = pages(db, {"q": "po", "sort": "recent"}, limit=100)
    monkeypatch.setattr(catalogue, "SPELLED", 1)  # "po" begins pommes, pommeraie, poires
    assert pages(db, {"q": "po", "sort": "recent"}, limit=100) == everything
    assert sum(map(len, everything)) > 100


def test_a_page_of_offers_with_thousands_of_new_words_keeps_them_all(db: Database) -> None:
    base = entries()[1]
    many = [
        Entry(
            **{
                **{f: getattr(base, f) for f in Entry.__slots__},
                "uri": f"https://coop0.example/offers/many-{n}",
                "title": f"Lot {n}",
                "texts": [" ".join(f"mot{n}x{k}" for k in range(30))],
            }
        )
        for n in range(100)
    ]
    assert db.write_sync(lambda conn: put_many(conn, many, now=NOW)) == 100
    kept = db.read_sync(lambda conn: set(conn.execute(select(catalogue_words.c.word)).scalars()))
    assert {f"mot{n}x{k}" for n in range(100) for k in range(30)} <= kept
    assert pages(db, {"q": "mot42x2"}) == [["many-42"]]


@pytest.mark.parametrize(
    "amount", ["0", "0.0001", "0.5", "1", "3.2767", "3.2768", "12", "199.99", "1000000000000"]
)
def test_a_price_range_names_the_word_of_every_price_in_it(amount: str) -> None:
    scaled = scaled_price(Decimal(amount))
    word = price_word("EUR", scaled)
    assert word in price_words("EUR", scaled, scaled)
    assert word in price_words("EUR", 0, scaled)
    assert word in price_words("EUR", scaled, MAX_SCALED_PRICE)
    assert word not in price_words("EUR", scaled * 2 + 1, MAX_SCALED_PRICE)
    assert word not in price_words("USD", 0, MAX_SCALED_PRICE)
    # A currency no one spells short is cut as the words stored are.
    assert price_word("X" * 100, scaled) in price_words("X" * 100, 0, MAX_SCALED_PRICE)
    assert len(price_word("X" * 100, scaled)) <= 40


def test_a_long_category_or_claim_is_asked_as_it_is_stored(db: Database) -> None:
    # Stored words are cut at 40 characters: the filter's word in a query is cut alike.
    category, claim = "c" * 60, "k" * 60
    long = Entry(
        **{
            **{f: getattr(entries()[1], f) for f in Entry.__slots__},
            "uri": "https://coop0.example/offers/long",
            "title": "Quetsches",
            "categories": [category],
            "claims": [claim],
        }
    )
    db.write_sync(lambda conn: put(conn, long, now=NOW))
    assert pages(db, {"q": "quetsches", "category": category}) == [["long"]]
    assert pages(db, {"q": "quetsches", "claim": claim}) == [["long"]]


def test_a_broad_price_range_is_checked_on_the_rows_not_by_its_index_on_postgresql(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Few" is 60 of these 300 offers: a range is broad when it holds 240 or more.
    monkeypatch.setattr(catalogue, "_few", lambda conn, query: (OFFERS, 60))
    price_index = catalogue._Sizes.price_index
    statements: list[str] = []

    def keep(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        for sort in ("recent", "relevance"):
            for top, broad in (("5", False), ("1000", True)):
                params = {"q": "po", "currency": "EUR", "max_price": top, "sort": sort}
                query = catalogue.parse_query(params)
                sizes, _ = db.read_sync(lambda c, q=query: sizes_of(c, q))  # type: ignore[misc]
                assert sizes.broad_price is broad
                forced(monkeypatch, "text")
                statements.clear()
                found = pages(db, params)
                assert sum(map(len, found)) > 0
                # PostgreSQL would AND a bitmap of every offer in a broad range with
                # the text index's: kept out of the price's index ("+ 0"), the range
                # is checked on the rows the words find. SQLite's text index drives
                # alone whatever the range.
                unindexed = any("price_e4 + " in statement for statement in statements)
                assert unindexed is (broad and db.engine.dialect.name != "sqlite"), params
                monkeypatch.setattr(
                    catalogue._Sizes, "price_index", lambda self, dialect, text: True
                )
                assert pages(db, params) == found, params
                monkeypatch.setattr(catalogue._Sizes, "price_index", price_index)
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)


def test_a_narrow_price_range_narrows_in_the_text_index(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Few" is 60 of these 300 offers: a range is narrow when it holds under 240.
    monkeypatch.setattr(catalogue, "_few", lambda conn, query: (OFFERS, 60))

    def sized(params: dict[str, Any]) -> tuple[Any, Any]:
        query = catalogue.parse_query(params)
        return db.read_sync(lambda c: sizes_of(c, query))

    narrowly = {"q": "po", "currency": "EUR", "max_price": "5"}
    everything, _ = sized({"q": "po"})
    narrow, asked = sized(narrowly)
    assert not everything.held
    if db.engine.dialect.name == "sqlite":
        assert narrow.held
        assert asked.prices == tuple(price_words("EUR", 0, scaled_price(Decimal(5))))
        matching = sum(map(len, pages(db, narrowly, limit=100)))
        # The index found the offers whose price has the range's words, not every offer
        # with the words: SQL then compares the prices exactly.
        assert 0 < matching <= narrow.text < everything.text
    else:  # PostgreSQL ANDs the price's own index instead (without statistics yet)
        assert not narrow.held
        assert not asked.prices
    # A broad range is left to SQL: it would cost the index more than it saves.
    broad, asked = sized({"q": "po", "currency": "EUR", "max_price": "1000"})
    assert not broad.held
    assert not asked.prices
    # A co-op's word is always asked: its count is held by the words' too.
    assert sized({"q": "po", "coop": COOPS[0]})[0].held
    # Offers without a price, or in another currency, have no word of it.
    stored = db.read_sync(lambda c: c.execute(select(offers.c.search_text)).scalars().all())
    assert all(" zzp" in f" {text}" for text in stored)
    unpriced = Entry(**{**{f: getattr(entries()[0], f) for f in Entry.__slots__}, "price": None})
    db.write_sync(lambda conn: put(conn, unpriced, now=NOW))
    text = db.read_sync(
        lambda c: c.execute(
            select(offers.c.search_text).where(offers.c.uri == unpriced.uri)
        ).scalar_one()
    )
    assert " zzp" not in f" {text}"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite counts, not estimates
def test_relevance_walks_when_the_last_stored_show_words_and_places_go_together(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A town's name and the cells around it are the same offers: estimated as
    independent, their matches look few, and the text index would read every one. Where
    the estimate hangs on that, the last stored offers are read to measure them; here a
    third match, and the candidates are walked to: the same pages."""
    monkeypatch.setattr(catalogue, "CANDIDATES", 12)
    forced(monkeypatch, "text")
    params = {"q": "rennes", "sort": "relevance", "near": "48.1173,-1.6778", "within_km": "30"}
    statements = recorded(db)

    monkeypatch.setattr(catalogue, "_worth_sampling", lambda conn, sizes: False)
    by_text = pages(db, params)
    assert not any("sampled" in s or "walked" in s for s in statements)
    monkeypatch.setattr(catalogue, "_worth_sampling", lambda conn, sizes: True)
    statements.clear()
    assert pages(db, params) == by_text
    assert len(by_text) > 1
    assert any("sampled" in s for s in statements)
    assert any("walked" in s for s in statements)
    # The text index was not read (only estimated, without statistics yet).
    assert not any("@@" in s and not s.startswith("EXPLAIN") for s in statements)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite counts
def test_a_price_range_the_statistics_show_broad_is_not_counted(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most 45 EUR holds the prices wholly under 26.21 EUR (the words of the powers
    of two up to it), half of these offers: more than a broad range's 80 of 300, as
    the statistics of those words show. Its pages are those of a counted range."""
    monkeypatch.setattr(catalogue, "_few", lambda conn, query: (OFFERS, 20))
    # The text index not asked for the range's ceiling (a range whose ceiling it is
    # asked for is counted to "few" only: see the test below).
    monkeypatch.setattr(catalogue, "_ceiling", lambda conn, query: None)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE offers")
    params = {"q": "po", "currency": "EUR", "max_price": "45", "sort": "recent"}
    statements = recorded(db)

    def counted() -> bool:
        # A count of the price's index (the last stored's count is of their rows).
        return any("count_1 \nFROM (SELECT offers.id AS id" in s for s in statements)

    found = pages(db, params)
    assert sum(map(len, found)) > 0
    assert not counted()
    # Under 10 EUR, wholly within: too few to be sure, it is counted.
    statements.clear()
    pages(db, {**params, "max_price": "10"})
    assert counted()
    monkeypatch.setattr(catalogue, "_surely_broad", lambda *args: False)
    statements.clear()
    assert pages(db, params) == found
    assert counted()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite has none
def test_relevance_asks_the_recent_indexes_first_for_the_same_pages(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the last stored show that a recent index holds a search's candidates, they
    are read from it (its bound written into the statement, for PostgreSQL to see it is
    that index's); where it holds too few, from the whole text index: the same pages
    either way."""
    monkeypatch.setattr(catalogue, "CANDIDATES", 8)
    monkeypatch.setattr(recent, "TIERS", (40, 100))
    # Statistics, as autovacuum keeps them: the estimates the indexes are chosen by.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE offers")
    queries = [{**params, "sort": "relevance"} for params in QUERIES]
    before = [pages(db, params) for params in queries]
    assert recent.renew(db.engine) == [
        "ix_offers_search_recent1_beyond_260",
        "ix_offers_search_recent2_beyond_200",
    ]
    catalogue._RECENT.clear()
    asked = recorded_with_parameters(db)
    assert [pages(db, params) for params in queries] == before
    # As written in the statement, the bound is the index's own (PostgreSQL proves a
    # partial index's condition from constants only; bench/catalogue.py shows it read).
    smallest = [(s, p) for s, p in asked if "id + 1 > 261" in s]
    assert smallest, "the smallest recent index was never asked"
    # Searches whose matches it holds too few of went on to the larger one, or the rest.
    assert any("id + 2 > 202" in s for s, _ in asked)
    assert len(smallest) < len(asked)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite has none
def test_a_recent_index_is_read_alone_for_its_own_offers(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recent index's condition is written so that the primary key's index cannot
    read it: with "id > <id>", PostgreSQL's plans read the key's offers past the id and
    a larger recent index's matches, the two taken as independent (at 1,000,000 offers,
    a search near Grenoble took 24 ms so, 13.5 from its own recent index). Nor can a
    larger recent index: its condition does not follow from a smaller one's (with "id
    + 0" in each, it did, and PostgreSQL read the index of the 100,000 last stored for
    the 50,000 last as readily as theirs: twice the rows)."""
    monkeypatch.setattr(catalogue, "CANDIDATES", 8)
    monkeypatch.setattr(recent, "TIERS", (40, 100))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE offers")
    recent.renew(db.engine)
    catalogue._RECENT.clear()
    asked = recorded_with_parameters(db)
    for params in QUERIES:
        pages(db, {**params, "sort": "relevance"})
    past = [(s, p) for s, p in asked if re.search(r"id \+ \d > ", s)]
    assert {re.search(r"id \+ (\d) > ", s)[1] for s, _ in past} == {"1", "2"}  # type: ignore[index]
    with db.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        # The table is small: PostgreSQL would read it whole, or walk it by the key.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        for statement, parameters in past:
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(line for (line,) in cursor.fetchall())
            tier = re.search(r"id \+ (\d) > ", statement)[1]  # type: ignore[index]
            assert f"ix_offers_search_recent{tier}_beyond_" in plan, plan
            assert "pk_offers" not in plan, plan


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite has none
def test_recency_asks_the_index_of_the_offers_published_last_first_for_the_same_pages(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page sorted by recency is read from the index of the offers published last
    where it holds the page's rows (every offer published from its moment on), from
    the rest where it does not: the same pages either way, these offers stored in
    another order than published."""
    monkeypatch.setattr(recent, "PUBLISHED", 60)
    monkeypatch.setattr(recent, "TIERS", ())
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE offers")
    queries = [{**params, "sort": "recent"} for params in QUERIES]
    before = [pages(db, params) for params in queries]
    made = recent.renew(db.engine)
    assert len(made) == 1
    catalogue._RECENT.clear()
    asked = recorded_with_parameters(db)
    assert [pages(db, params) for params in queries] == before
    from_index = [(s, p) for s, p in asked if "published >= TIMESTAMPTZ" in s]
    assert from_index, "the index was never asked"
    assert len(from_index) < len([s for s, _ in asked if "@@" in s])  # the rest, too
    # PostgreSQL proves a partial index's condition from the constant written in the
    # statement: it reads the index for it (here where neither a table scan nor the
    # index of dates, its cheaper ways with 300 offers, is there: dropped for a while).
    with db.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("DROP INDEX ix_offers_published")
        # A first page's (with no cursor).
        statement, parameters = next((s, p) for s, p in from_index if "published <" not in s)
        plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
        conn.rollback()
    assert any(made[0] in line for line in plan), "\n".join(plan)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite has none
def test_recency_reads_at_once_what_the_offers_published_last_show_few(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Estimated many, a search's matches would be asked of the text index period of
    publication by period. Where the index of the offers published last holds too few
    for the page and shows them few in the catalogue (under "few" in its share), they
    are asked at once: the same pages."""
    monkeypatch.setattr(recent, "PUBLISHED", 60)
    monkeypatch.setattr(recent, "TIERS", ())
    monkeypatch.setattr(catalogue, "_sliced", lambda conn, sizes: True)
    monkeypatch.setattr(catalogue, "_few", lambda conn, query: (OFFERS, 40))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE offers")
    assert recent.renew(db.engine)
    catalogue._RECENT.clear()
    asked = recorded_with_parameters(db)

    def periods() -> int:
        # Reading by periods starts from the first and last moments of publication.
        return sum(1 for s, _ in asked if "min(offers.published)" in s)

    # Expired offers in Lyon: a handful of the last 60 published, under 40 of 300 in
    # its share; all of them on one page, more than the index holds.
    sparse = {"q": "lyon", "status": "expired", "sort": "recent"}
    found = pages(db, sparse, limit=100)
    assert len(found) == 1
    assert len(found[0]) > 5
    assert periods() == 0
    with monkeypatch.context() as patched:
        patched.setattr(catalogue, "_published_last", lambda *args: None)
        asked.clear()
        assert pages(db, sparse, limit=100) == found
        assert periods() > 0


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite has no ceilings
def test_a_price_range_with_its_ceiling_asked_is_counted_only_as_far_as_few(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The text index narrows by the ceiling's words: the price's index is counted only
    to tell whether the range is worth reading whole (under "few"), not to 4 x "few"."""
    monkeypatch.setattr(catalogue, "_few", lambda conn, query: (OFFERS, 20))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE offers")
    asked = recorded_with_parameters(db)

    def caps() -> list[Any]:
        return [p["cap"] for s, p in asked if "offers.price_e4 <=" in s and "count" in s]

    # Up to 3 EUR: too few of these offers wholly within for the statistics to call
    # it broad, so it is counted.
    params = {"q": "po", "currency": "EUR", "max_price": "3", "sort": "recent"}
    found = pages(db, params)
    assert caps()
    assert set(caps()) == {20}
    with monkeypatch.context() as patched:
        patched.setattr(catalogue, "_ceiling", lambda conn, query: None)
        asked.clear()
        assert pages(db, params) == found
        assert caps()
        assert set(caps()) == {80}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_planned_walk_the_last_stored_show_too_long_is_not_begun_by_relevance(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue, "CANDIDATES", 8)
    monkeypatch.setattr(recent, "TIERS", (40,))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE offers")
    recent.renew(db.engine)
    catalogue._RECENT.clear()
    # Too few of the last 40 stored match for them to hold 8: the walk is planned.
    params = {"q": "pommes miel", "sort": "relevance"}
    forced(monkeypatch, "text")
    by_text = pages(db, params)
    forced(monkeypatch, "walk")
    monkeypatch.setattr(catalogue._Sizes, "walk_bound", lambda self, sort: 5)
    statements = recorded(db)

    assert pages(db, params) == by_text
    # The recent index, read first, showed how few match.
    assert any("id + 1 > 261" in s for s in statements)
    assert not any("sampled" in s or "walked" in s for s in statements)
