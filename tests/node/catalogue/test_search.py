"""Catalogue search: words in any language or category label, filters, sorts and
cursors, with the same answers from SQLite's FTS5 and PostgreSQL's text search."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from node.catalogue import search as catalogue
from node.catalogue.store import Entry, put, put_many, remove_actor, withdraw
from node.catalogue.text import fold, search_text, words
from node.errors import Forbidden, Invalid
from node.services.setup import migrate_database
from node.storage.database import Database

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
LYON = (45.764, 4.8357)
MARKET = "https://market.example/actors/coop"
FOOD = "https://food.example/actors/coop"
TOURS = "https://tours.example/actors/coop"

# (key, actor, title, texts, categories, claims, price, currency, place, lat, lon, days old)
CORPUS: list[tuple[Any, ...]] = [
    ("apples", MARKET, "Organic apples, 1 kg", ["Crisp apples from the Monts du Lyonnais"],
     ["apples", "Pommes", "Apples"], ["organic", "fair-trade"], "3.50", "EUR",
     "Lyon", 45.764, 4.8357, 1),
    ("pears", MARKET, "Poires Williams", ["Poires juteuses, récoltées à la main"],
     ["fruit", "Fruits", "Fruit"], ["organic"], "2.80", "EUR", "Villeurbanne",
     45.7719, 4.8902, 2),
    ("coffee", MARKET, "Café de Colombie", ["Café équitable torréfié à Lyon"],
     ["coffee", "Café", "Coffee"], ["fair-trade"], "12.00", "EUR", "Lyon",
     45.75, 4.85, 3),
    ("honey", FOOD, "Miel de lavande", ["Miel toutes fleurs et lavande de la Drôme"],
     ["honey", "Miel", "Honey"], ["local"], "9.50", "EUR", "Die", 44.7539, 5.3703, 4),
    ("eggs", FOOD, "Œufs frais de plein air", ["Douze œufs"],
     ["eggs", "Œufs", "Eggs"], ["local", "organic"], "4.20", "EUR", "Lyon",
     45.76, 4.83, 5),
    ("bread", FOOD, "Pain au levain", ["Sourdough bread baked every morning"],
     ["bread", "Pain", "Bread"], [], "3.90", "EUR", "Grenoble", 45.1885, 5.7245, 6),
    ("tour", TOURS, "Visite guidée du Vieux Lyon", ["Guided tour in French or English"],
     ["guided-tours", "Visites guidées", "Guided tours"], ["co-op-made"], "15.00", "EUR",
     "Lyon", 45.7622, 4.8271, 7),
    ("bike", TOURS, "Location de vélo", ["Bike rental by the day"],
     ["bike-rental", "Location de vélos", "Bike rental"], [], "20.00", "CHF", "Genève",
     46.2044, 6.1432, 8),
    ("cider", MARKET, "Cidre brut", ["Cidre de pommes du Pays d'Auge"],
     ["drinks", "Boissons", "Drinks"], ["organic"], "6.00", "EUR", "Caen",
     49.1829, -0.3707, 9),
    ("old-apples", MARKET, "Pommes de garde (fin de saison)", ["Dernières pommes"],
     ["apples", "Pommes", "Apples"], [], "1.90", "EUR", "Lyon", 45.76, 4.84, 30),
    ("withdrawn-apples", FOOD, "Compote de pommes", ["Compote maison"],
     ["apples", "Pommes", "Apples"], [], "5.00", "EUR", "Lyon", 45.76, 4.84, 10),
    ("free", FOOD, "Graines à partager", ["Seeds to share, free"], ["seeds", "Graines",
     "Seeds"], [], None, None, None, None, None, 11),
]  # fmt: skip


def entry(row: tuple[Any, ...]) -> Entry:
    key, actor, title, texts, cats, claims, price, currency, place, lat, lon, days = row
    published = NOW - timedelta(days=days)
    return Entry(
        uri=f"{actor.rsplit('/actors', 1)[0]}/offers/{key}",
        actor=actor,
        title=title,
        published=published,
        updated=published,
        document={"id": key, "type": "Proposal"},
        texts=[*texts, *cats[1:]],
        categories=[cats[0]],
        claims=claims,
        price=None if price is None else Decimal(price),
        currency=currency,
        place=place,
        latitude=lat,
        longitude=lon,
        # The old apples expired yesterday.
        end_time=NOW - timedelta(days=1) if key == "old-apples" else None,
    )


def fill(db: Database) -> None:
    def unit(conn: Any) -> None:
        for row in CORPUS:
            put(conn, entry(row), now=NOW)
        withdraw(conn, "https://food.example/offers/withdrawn-apples", actor=FOOD, now=NOW)

    db.write_sync(unit)


def make_catalogue(url: str) -> Database:
    migrate_database(url)
    db = Database(url, readers=1)
    fill(db)
    return db


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = make_catalogue(database_url)
    try:
        yield database
    finally:
        database.close()


def find(db: Database, **params: Any) -> list[str]:
    query = catalogue.parse_query(params)
    page = db.read_sync(lambda c: catalogue.search(c, query, now=NOW))
    return [hit.uri.rsplit("/", 1)[1] for hit in page.hits]


def test_words_are_folded_for_accents_case_and_ligatures() -> None:
    assert fold("Œufs CAFÉ Straße") == "oeufs cafe strasse"
    assert words("L'huile d'olive, 3.50 €") == ["l", "huile", "d", "olive", "3", "50"]
    assert search_text(["Pommes pommes", None, "Pommes de Lyon"]) == "pommes de lyon"


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("pommes", ["cider", "apples"]),  # "Organic apples" via its category's label
        ("apples", ["apples"]),
        ("POMMES lyon", ["apples"]),
        ("cafe", ["coffee"]),
        ("café équitable", ["coffee"]),
        ("oeufs", ["eggs"]),
        ("œufs", ["eggs"]),
        ("pomme", ["cider", "apples"]),  # each word matches the start of a word
        ("guided tours", ["tour"]),
        ("visites", ["tour"]),
        ("nothing-like-this", []),
    ],
)
def test_text_finds_offers_in_any_language_and_category_label(
    db: Database, q: str, expected: list[str]
) -> None:
    assert sorted(find(db, q=q, sort="recent")) == sorted(expected)


def test_filters_narrow_the_results(db: Database) -> None:
    assert find(db, category="apples") == ["apples"]
    assert find(db, category=["apples", "honey"]) == ["apples", "honey"]
    assert find(db, claim=["organic", "local"]) == ["eggs"]
    assert find(db, coop=TOURS) == ["tour", "bike"]
    assert find(db, currency="CHF") == ["bike"]
    assert find(db, currency="EUR", min_price="4", max_price="10") == ["honey", "eggs", "cider"]
    assert find(db, near="45.764,4.8357", within_km="1", q="lyon", sort="recent") == [
        "apples", "eggs", "tour"
    ]  # fmt: skip
    assert find(db, near="45.764,4.8357", within_km="8") == [
        "apples", "pears", "coffee", "eggs", "tour"
    ]  # fmt: skip


def test_searches_of_one_shape_share_their_statements_not_their_values(db: Database) -> None:
    """A statement is made once per shape of search, its values bound at each execution:
    searches asking the same filters with other values each find their own offers."""
    catalogue._plain_page.cache_clear()
    catalogue._matching_page.cache_clear()
    assert find(db, claim="organic", currency="EUR", max_price="3") == ["pears"]
    assert find(db, claim="local", currency="EUR", max_price="5") == ["eggs"]
    assert find(db, claim="fair-trade", currency="EUR", max_price="4") == ["apples"]
    assert catalogue._plain_page.cache_info().misses == 1
    assert catalogue._plain_page.cache_info().hits == 2
    by_text = {"sort": "distance", "near": "45.764,4.8357", "within_km": "8"}
    assert find(db, q="pommes", **by_text) == ["apples"]
    assert find(db, q="café", **by_text) == ["coffee"]
    assert find(db, q="miel", **by_text) == []
    assert find(db, q="lyon", **by_text | {"within_km": "1"}) == ["apples", "eggs", "tour"]
    assert catalogue._matching_page.cache_info().misses == 1


def test_expired_and_withdrawn_offers_leave_results_but_stay(db: Database) -> None:
    assert "old-apples" not in find(db, q="pommes")
    assert find(db, status="expired") == ["old-apples"]
    assert find(db, status="withdrawn") == ["withdrawn-apples"]
    assert len(find(db, status="any", limit="100")) == len(CORPUS)


def test_sorts_by_price_and_distance(db: Database) -> None:
    assert find(db, sort="price", currency="EUR", category=["apples", "fruit", "bread"]) == [
        "pears", "apples", "bread"
    ]  # fmt: skip
    assert find(db, sort="distance", near="45.1885,5.7245", limit="3") == [
        "bread", "honey", "pears"
    ]  # fmt: skip
    query = catalogue.parse_query({"sort": "distance", "near": "45.764,4.8357", "limit": "2"})
    page = db.read_sync(lambda c: catalogue.search(c, query, now=NOW))
    assert page.hits[0].distance_km == pytest.approx(0.0, abs=1e-9)
    # Apples to eggs: 0.004° of latitude (0.445 km) and 0.0057° of longitude at 45.76°N
    # (0.442 km).
    assert page.hits[1].distance_km == pytest.approx(0.627, abs=0.001)


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "recent"},
        {"sort": "price", "currency": "EUR"},
        {"sort": "distance", "near": "46.0,5.0"},
        {"sort": "relevance", "q": "lyon"},
    ],
)
def test_cursor_pages_cover_every_result_once(db: Database, params: dict[str, str]) -> None:
    everything = find(db, **params, limit="100")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        asked = {**params, "limit": "2"}
        if cursor is not None:
            asked["cursor"] = cursor
        query = catalogue.parse_query(asked)
        page = db.read_sync(lambda c, q=query: catalogue.search(c, q, now=NOW))  # type: ignore[misc]
        seen += [hit.uri.rsplit("/", 1)[1] for hit in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything
    assert len(everything) > 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "relevance"}, "sort"),
        ({"sort": "price"}, "sort"),
        ({"sort": "distance"}, "sort"),
        ({"min_price": "3"}, "currency"),
        ({"currency": "EUR", "min_price": "-1"}, "min_price"),
        ({"currency": "EUR", "min_price": "1.00001"}, "min_price"),
        ({"currency": "EUR", "min_price": "5", "max_price": "2"}, "min_price"),
        ({"near": "91,0"}, "near"),
        ({"near": "nan,0"}, "near"),
        ({"within_km": "5"}, "near"),
        ({"limit": "1000"}, "limit"),
        ({"category": [str(n) for n in range(11)]}, "category"),
        ({"colour": "red"}, "colour"),
        ({"status": "sold"}, "status"),
    ],
)
def test_bad_queries_name_the_parameter(params: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as raised:
        catalogue.parse_query(params)
    assert raised.value.field == field


def test_only_the_publisher_replaces_or_withdraws_an_offer(db: Database) -> None:
    spoof = entry(CORPUS[0])
    spoof = Entry(**{**{f: getattr(spoof, f) for f in spoof.__slots__}, "actor": FOOD})

    with pytest.raises(Forbidden):
        db.write_sync(lambda c: put(c, spoof, now=NOW))
    assert not db.write_sync(
        lambda c: withdraw(c, "https://market.example/offers/apples", actor=FOOD, now=NOW)
    )
    assert find(db, q="organic apples") == ["apples"]


def test_an_update_replaces_the_words_and_filters(db: Database) -> None:
    updated = entry(CORPUS[0])
    changed = Entry(
        **{
            **{f: getattr(updated, f) for f in updated.__slots__},
            "title": "Organic quinces",
            "texts": ["Coings"],
            "categories": ["fruit"],
            "claims": [],
        }
    )
    db.write_sync(lambda c: put(c, changed, now=NOW))

    assert find(db, q="apples") == []
    assert find(db, q="coings") == ["apples"]
    assert find(db, category="fruit") == ["apples", "pears"]
    assert "apples" not in find(db, claim="organic")


def test_unfollowing_removes_a_coops_offers(db: Database) -> None:
    removed = db.write_sync(lambda c: remove_actor(c, MARKET))
    assert removed == 5
    assert find(db, q="pommes", status="any") == ["withdrawn-apples"]


def test_both_engines_answer_alike(tmp_path: Any, request: pytest.FixtureRequest) -> None:
    from tests.conftest import BACKENDS

    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL is not among the backends under test")
    cluster = request.getfixturevalue("postgres_cluster")
    lite = make_catalogue(f"sqlite:///{tmp_path / 'catalogue.sqlite3'}")
    pg = make_catalogue(cluster.create_database())
    queries: list[dict[str, Any]] = [
        {"q": "pommes"},
        {"q": "lyon", "sort": "recent"},
        {"q": "lyon", "sort": "distance", "near": "45.0,5.0"},
        {"category": ["apples", "honey", "bread"], "sort": "recent"},
        {"currency": "EUR", "sort": "price", "max_price": "10"},
        {"near": "45.764,4.8357", "within_km": "100", "sort": "distance"},
        {"claim": "organic", "status": "any"},
        {"q": "miel lavande"},
    ]
    try:
        for params in queries:
            # Relevance too: both engines rank by the same words (search.py).
            assert find(lite, **params) == find(pg, **params), params
    finally:
        lite.close()
        pg.close()


def test_many_entries_are_stored_at_once_and_known_ones_replaced(db: Database) -> None:
    fresh = [
        Entry(
            uri=f"https://far.example/offers/{n}",
            actor="https://far.example/actors/coop",
            title=f"Confiture numéro {n}",
            published=NOW - timedelta(minutes=n),
            updated=NOW,
            document={},
            categories=["jam", "preserves"],
            claims=["local"],
        )
        for n in range(300)
    ]
    known = entry(CORPUS[0])
    renamed = Entry(**{**{f: getattr(known, f) for f in known.__slots__}, "title": "Quinces"})

    added = db.write_sync(lambda c: put_many(c, [*fresh, renamed], now=NOW))

    assert added == 300
    assert len(find(db, category="jam", limit="100")) == 100
    assert find(db, q="confiture numero 299", claim="local") == ["299"]
    assert find(db, q="quinces") == ["apples"]


def test_a_price_too_large_or_too_fine_is_kept_but_not_searchable_by_price(db: Database) -> None:
    base = entry(CORPUS[0])
    fields = {f: getattr(base, f) for f in base.__slots__}
    huge = Entry(**{**fields, "uri": "https://market.example/offers/x", "price": Decimal("1e20")})
    fine = Entry(**{**fields, "uri": "https://market.example/offers/y", "price": Decimal("1e-9")})

    db.write_sync(lambda c: put_many(c, [huge, fine], now=NOW))

    assert sorted(find(db, q="organic apples")) == ["apples", "x", "y"]
    assert find(db, q="organic apples", currency="EUR", min_price="0") == ["apples"]


def test_a_lone_letter_matches_only_itself(db: Database) -> None:
    assert find(db, q="z") == []
    assert find(db, q="l huile") == []
    assert find(db, q="d auge") == ["cider"]  # "Pays d'Auge"
