"""Catalogue search latency: 100,000 offers from 200 co-ops, text and two filters.

Fills a fresh catalogue (through ``node.catalogue.store.put_many``, as a backfill
would) with offers in French and English spread over France, then runs a fixed, seeded
mix of searches: one or two words, plus two filters drawn from category, claim, price
range, distance and co-op, sorted by relevance or recency, first page of 20. Prints
p50, p95 and p99 per engine.

    .venv/bin/python bench/catalogue.py                       # SQLite
    .venv/bin/python bench/catalogue.py --backend postgres
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.catalogue import search as catalogue  # noqa: E402
from node.catalogue.store import Entry, put_many  # noqa: E402
from node.storage import migrate  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.engine import create_null_pool_engine  # noqa: E402

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
# (category slug, French label, English label, French products, English products)
PRODUCTS = [
    ("apples", "Pommes", "Apples", ["pommes", "reinettes", "golden"], ["apples", "crisp"]),
    ("pears", "Poires", "Pears", ["poires", "williams", "conférence"], ["pears"]),
    ("honey", "Miel", "Honey", ["miel", "lavande", "acacia", "châtaignier"], ["honey"]),
    ("bread", "Pain", "Bread", ["pain", "levain", "baguette", "seigle"], ["bread", "rye"]),
    ("cheese", "Fromage", "Cheese", ["fromage", "comté", "chèvre", "tomme"], ["cheese"]),
    ("coffee", "Café", "Coffee", ["café", "arabica", "torréfié"], ["coffee", "roasted"]),
    ("wine", "Vin", "Wine", ["vin", "rouge", "blanc", "côtes"], ["wine", "red", "white"]),
    ("vegetables", "Légumes", "Vegetables", ["légumes", "carottes", "poireaux"], ["carrots"]),
    ("eggs", "Œufs", "Eggs", ["œufs", "plein", "air"], ["eggs", "free", "range"]),
    ("oil", "Huile", "Oil", ["huile", "olive", "colza"], ["oil", "olive"]),
    ("clothing", "Vêtements", "Clothing", ["pull", "laine", "chemise"], ["sweater", "wool"]),
    ("crafts", "Artisanat", "Crafts", ["poterie", "bois", "céramique"], ["pottery", "wood"]),
    ("repair", "Réparation", "Repair", ["réparation", "vélo", "couture"], ["repair"]),
    ("delivery", "Livraison", "Delivery", ["livraison", "coursier", "vélo"], ["delivery"]),
    ("stays", "Séjours", "Stays", ["gîte", "chambre", "nuit"], ["stay", "room", "night"]),
    ("tours", "Visites", "Tours", ["visite", "guidée", "randonnée"], ["tour", "guided"]),
    ("bike-rental", "Location de vélos", "Bike rental", ["location", "vélo"], ["bike"]),
    ("jam", "Confitures", "Jams", ["confiture", "abricot", "fraise"], ["jam", "apricot"]),
    ("juice", "Jus", "Juice", ["jus", "pomme", "raisin"], ["juice", "grape"]),
    ("seeds", "Graines", "Seeds", ["graines", "semences", "potagères"], ["seeds"]),
]
CLAIMS = ["fair-trade", "organic", "co-op-made", "local"]
TOWNS = [
    ("Lyon", 45.764, 4.8357), ("Paris", 48.8566, 2.3522), ("Marseille", 43.2965, 5.3698),
    ("Lille", 50.6292, 3.0573), ("Nantes", 47.2184, -1.5536), ("Toulouse", 43.6047, 1.4442),
    ("Grenoble", 45.1885, 5.7245), ("Rennes", 48.1173, -1.6778), ("Dijon", 47.322, 5.0415),
    ("Bordeaux", 44.8378, -0.5792), ("Strasbourg", 48.5734, 7.7521), ("Die", 44.7539, 5.3703),
]  # fmt: skip
FILLER = ["de", "la", "ferme", "maison", "saison", "bio", "frais", "qualité", "the", "from"]


def offers(count: int, coops: int, rng: random.Random) -> Iterator[Entry]:
    for n in range(count):
        slug, fr_label, en_label, fr_words, en_words = rng.choice(PRODUCTS)
        town, lat, lon = rng.choice(TOWNS)
        coop = n % coops
        actor = f"https://coop{coop}.example/actors/coop"
        title = " ".join([*rng.sample(fr_words, k=min(2, len(fr_words))), rng.choice(FILLER)])
        english = " ".join([rng.choice(en_words), rng.choice(FILLER), en_words[0]])
        published = NOW - timedelta(minutes=rng.randrange(60 * 24 * 120))
        yield Entry(
            uri=f"https://coop{coop}.example/offers/{n}",
            actor=actor,
            title=title.capitalize(),
            published=published,
            updated=published,
            document={"type": "Proposal"},
            texts=[english, f"{title} {town}", fr_label, en_label],
            categories=[slug],
            claims=rng.sample(CLAIMS, k=rng.randrange(3)),
            currency="EUR",
            price=Decimal(rng.randrange(50, 20_000)) / 100,
            unit="kg",
            place=town,
            latitude=lat + rng.uniform(-0.3, 0.3),
            longitude=lon + rng.uniform(-0.3, 0.3),
            end_time=NOW + timedelta(days=rng.randrange(-10, 90)) if n % 5 == 0 else None,
        )


def queries(count: int, rng: random.Random) -> list[dict[str, Any]]:
    made = []
    for _ in range(count):
        _slug, fr_label, en_label, fr_words, en_words = rng.choice(PRODUCTS)
        words = [rng.choice(fr_words + en_words + [fr_label, en_label])]
        if rng.random() < 0.4:
            words.append(rng.choice(TOWNS)[0])
        params: dict[str, Any] = {"q": " ".join(words)}
        _town, lat, lon = rng.choice(TOWNS)
        filters = {
            "category": {"category": rng.choice(PRODUCTS)[0]},
            "claim": {"claim": rng.choice(CLAIMS)},
            "price": {"currency": "EUR", "max_price": str(rng.randrange(5, 100))},
            "distance": {"near": f"{lat},{lon}", "within_km": str(rng.choice([10, 30, 50]))},
            "coop": {"coop": f"https://coop{rng.randrange(200)}.example/actors/coop"},
        }
        for name in rng.sample(sorted(filters), k=2):
            params.update(filters[name])
        params["sort"] = rng.choice(["relevance", "recent"])
        made.append(params)
    return made


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'catalogue.sqlite3'}"
        return
    from tests.support.postgres import PostgresCluster

    with PostgresCluster(durable=True) as cluster:
        yield cluster.create_database("catalogue")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--coops", type=int, default=200)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(20270301)

    with tempfile.TemporaryDirectory() as tmp, database(args.backend, Path(tmp)) as url:
        engine = create_null_pool_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        db = Database(url, readers=1)
        try:
            started = time.perf_counter()
            batch: list[Entry] = []
            for entry in offers(args.offers, args.coops, rng):
                batch.append(entry)
                if len(batch) == 1000:
                    db.write_sync(lambda c, b=batch: put_many(c, b, now=NOW))  # type: ignore[misc]
                    batch = []
            if batch:
                db.write_sync(lambda c: put_many(c, batch, now=NOW))
            if args.backend == "postgres":
                # What autovacuum does soon after a bulk load: statistics, and the text
                # index's pending list merged (until then every search scans it).
                maintenance = create_null_pool_engine(url)
                with maintenance.connect() as conn:
                    conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
                    conn.exec_driver_sql("VACUUM ANALYZE")
                maintenance.dispose()
            fill = time.perf_counter() - started
            timings, found = [], []
            for params in queries(args.queries, rng):
                query = catalogue.parse_query(params)
                began = time.perf_counter()
                page = db.read_sync(lambda c, q=query: catalogue.search(c, q, now=NOW))  # type: ignore[misc]
                timings.append((time.perf_counter() - began) * 1000)
                found.append(len(page.hits))
        finally:
            db.close()
    timings.sort()
    pct = {p: timings[min(len(timings) - 1, int(len(timings) * p / 100))] for p in (50, 95, 99)}
    print(
        f"{args.backend:8} {args.offers} offers from {args.coops} co-ops stored in {fill:.1f} s "
        f"({args.offers / fill:,.0f}/s); {len(timings)} searches (text + 2 filters): "
        f"p50 {pct[50]:.1f} ms  p95 {pct[95]:.1f} ms  p99 {pct[99]:.1f} ms  "
        f"(mean {statistics.mean(found):.1f} hits per first page, "
        f"{sum(1 for f in found if f == 0)} empty)"
    )


if __name__ == "__main__":
    main()
