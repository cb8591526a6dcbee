"""Catalogue search latency on searches that find something, at 100,000 and 1,000,000
offers from 200 co-ops.

Fills a fresh catalogue (through ``node.catalogue.store.put_many``, as a backfill
would, 5,000 offers a write) with offers in French and English spread over France, in
steps: up to the first size of ``--offers``, searches, then more offers up to the next
size, searches again. Each step runs a fixed, seeded mix of ``--queries`` searches,
first page of 20, sorted by relevance or recency (after a few unmeasured ones):

* 90 % are built from one offer already stored, picked at random: a word or two of its
  own title and texts, and two filters it satisfies, drawn from its category, one of
  its claims, a maximum price at or above its price, a circle around its town that
  holds it, and its co-op. Each finds at least that offer.
* 10 % are deliberate misses: a word no offer has, a maximum price below every offer's,
  or a circle where no co-op is (each with a word and a filter of a stored offer).

Prints, per size: the time and rate of the step's fill (on PostgreSQL, then the VACUUM
ANALYZE that autovacuum would soon run, the recent indexes that the node's catalogue
poller makes within ten minutes and the checkpoint that writes out what the fill left
in memory; on SQLite, then the merge of the text index that the
poller runs once a day), the share of searches that found something,
p50, p95 and p99 of the searches built from an offer ("hits"), of the misses and of
all, and the slowest shapes of search (sort and filters) by p95; then the growth of p50
and p95 from each size to the next. For comparing figures across machines it also
prints the CPU, a fixed one-core loop timed in the same run, the load average, and a
point read by uri through the same path as a search (its floor). PostgreSQL runs with
a quarter of the machine's memory as its own (``shared_buffers``), in huge pages where
the system has them reserved, its allocator keeping what searches free, as
``deploy/README.md`` tells a co-op to set it (``--glibc-defaults``: the allocator as
it comes, for comparison); it prints which.

    .venv/bin/python bench/catalogue.py                       # SQLite, 100,000 and 1,000,000
    .venv/bin/python bench/catalogue.py --backend postgres
    .venv/bin/python bench/catalogue.py --offers 20000,50000  # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from node.catalogue import recent_store as recent  # noqa: E402
from node.catalogue import search as catalogue  # noqa: E402
from node.catalogue.store import Entry, merge_text_index, put_many  # noqa: E402
from node.storage import migrate  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.engine import create_null_pool_engine  # noqa: E402
from node.storage.tables import offers as offers_table  # noqa: E402

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SEED = 20270301
FILL_BATCH = 5_000
WARM_UP = 50
MISS_SHARE = 0.1
TARGET_MS = 20.0
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
TOWN_POINTS = {name: (lat, lon) for name, lat, lon in TOWNS}
FILLER = ["de", "la", "ferme", "maison", "saison", "bio", "frais", "qualité", "the", "from"]
# Words nobody searches for on their own: left out of the words a search takes.
STOP_WORDS = {"de", "la", "the", "from"}
# Words no offer has (nor any word of an offer starts with them).
ABSENT = ["truffes", "saumon", "kayak", "tracteur", "piano", "ordinateur"]
# A point about 200 km from the nearest town with offers (Brest).
NOWHERE = (48.3904, -4.4861)
RADII_KM = [10, 20, 30, 50]
EARTH_RADIUS_KM = 6371.0088


def offers(count: int, coops: int, rng: random.Random) -> Iterator[Entry]:
    """``count`` offers, the same for the same seed; the n-th one's uri ends in n."""
    actors = [f"https://coop{c}.example/actors/coop" for c in range(coops)]
    end_days = range(-10, 90)
    price_cents = range(50, 20_000)
    minutes = range(60 * 24 * 120)
    for n in range(count):
        slug, fr_label, en_label, fr_words, en_words = rng.choice(PRODUCTS)
        town, lat, lon = rng.choice(TOWNS)
        coop = n % coops
        title = " ".join([*rng.sample(fr_words, k=min(2, len(fr_words))), rng.choice(FILLER)])
        english = " ".join([rng.choice(en_words), rng.choice(FILLER), en_words[0]])
        published = NOW - timedelta(minutes=rng.choice(minutes))
        yield Entry(
            uri=f"https://coop{coop}.example/offers/{n}",
            actor=actors[coop],
            title=title.capitalize(),
            published=published,
            updated=published,
            document={"type": "Proposal"},
            texts=[english, f"{title} {town}", fr_label, en_label],
            categories=[slug],
            claims=rng.sample(CLAIMS, k=rng.randrange(3)),
            currency="EUR",
            price=Decimal(rng.choice(price_cents)) / 100,
            unit="kg",
            place=town,
            latitude=lat + rng.uniform(-0.3, 0.3),
            longitude=lon + rng.uniform(-0.3, 0.3),
            end_time=NOW + timedelta(days=rng.choice(end_days)) if n % 5 == 0 else None,
        )


@dataclass(frozen=True, slots=True)
class Search:
    params: dict[str, Any]
    miss: bool  # built to find nothing
    shape: str  # sort and filters, to group the timings by


def km_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance, as the catalogue's SQL computes it."""
    (lat1, lon1), (lat2, lon2) = a, b
    h = (
        math.sin(math.radians(lat2 - lat1) / 2) ** 2
        + math.cos(math.radians(lat1))
        * math.cos(math.radians(lat2))
        * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def offer_words(entry: Entry) -> list[str]:
    seen = dict.fromkeys(w for t in [entry.title, *entry.texts] for w in t.split())
    return [w for w in seen if w.casefold() not in STOP_WORDS]


def offer_filters(entry: Entry, rng: random.Random) -> dict[str, dict[str, str]]:
    """Every filter ``entry`` satisfies, one value each."""
    assert entry.price is not None
    assert entry.place is not None
    assert entry.latitude is not None
    assert entry.longitude is not None
    town = TOWN_POINTS[entry.place]
    km = km_between(town, (entry.latitude, entry.longitude))
    radius = rng.choice([r for r in RADII_KM if r >= km + 0.5] or [math.ceil(km) + 5])
    filters = {
        "category": {"category": entry.categories[0]},
        "price": {
            "currency": "EUR",
            "max_price": str(math.ceil(entry.price) + rng.choice([0, 0, 1, 5, 20])),
        },
        "distance": {"near": f"{town[0]},{town[1]}", "within_km": str(radius)},
        "coop": {"coop": entry.actor},
    }
    if entry.claims:
        filters["claim"] = {"claim": rng.choice(list(entry.claims))}
    return filters


def searches(picked: Sequence[Entry], count: int, rng: random.Random) -> list[Search]:
    """``count`` searches: most built from the live offers of ``picked`` (taken in
    order, again from the first if there are fewer), the rest deliberate misses built
    from them too."""
    live = [e for e in picked if e.end_time is None or e.end_time > NOW]
    made = []
    for n in range(count):
        entry = live[n % len(live)]
        words = offer_words(entry)
        chosen = rng.sample(words, k=2 if rng.random() < 0.4 and len(words) > 1 else 1)
        filters = offer_filters(entry, rng)
        names = sorted(rng.sample(sorted(filters), k=2))
        sort = rng.choice(["relevance", "recent"])
        miss = rng.random() < MISS_SHARE
        if miss:
            kind = rng.choice(["word", "price", "place"])
            if kind == "word":
                chosen = [rng.choice(ABSENT)]
            else:
                # The offer's words and one of its filters, and one no offer satisfies.
                wrong = "price" if kind == "price" else "distance"
                if kind == "price":
                    filters["price"] = {"currency": "EUR", "max_price": "0.25"}
                else:
                    near = f"{NOWHERE[0]},{NOWHERE[1]}"
                    filters["distance"] = {"near": near, "within_km": str(rng.choice(RADII_KM))}
                names = sorted([wrong, next(n for n in names if n != wrong)])
            shape = f"miss ({kind}), {sort}"
        else:
            shape = f"{sort}, {'+'.join(names)}"
        params: dict[str, Any] = {"q": " ".join(chosen), "sort": sort}
        for name in names:
            params.update(filters[name])
        made.append(Search(params, miss, shape))
    return made


# The server's allocator keeps what a search frees for the next one, as deploy/README.md
# tells a co-op to set it ("PostgreSQL's memory"): glibc's defaults give large blocks
# back to the system after each statement, which the next one faults in again.
ALLOCATOR = {
    "MALLOC_MMAP_THRESHOLD_": "8388608",
    "MALLOC_TRIM_THRESHOLD_": "67108864",
    "MALLOC_TOP_PAD_": "4194304",
}


@contextlib.contextmanager
def database(backend: str, tmp: Path, *, allocator: Mapping[str, str] = ALLOCATOR) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'catalogue.sqlite3'}"
        return
    from tests.support.postgres import PostgresCluster

    settings = {"shared_buffers": f"{shared_buffers_mb()}MB"}
    before = huge_pages()
    with PostgresCluster(durable=True, settings=settings, environment=allocator) as cluster:
        after = huge_pages()
        # Taken: touched (no longer free) or reserved for the shared memory mapped.
        taken = (before[0] - after[0]) + (after[1] - before[1])
        if taken > 0:
            held = f"in {taken * 2:,} MB of huge pages"
        else:
            held = f"in 4 kB pages ({before[0]:,} huge pages free: see deploy/README.md)"
        chosen = (
            " ".join(f"{key}={value}" for key, value in allocator.items()) or "glibc's defaults"
        )
        print(f"PostgreSQL: its shared memory {held}; allocator: {chosen}")
        yield cluster.create_database("catalogue")


def huge_pages() -> tuple[int, int]:
    """The system's free and reserved huge pages (0, 0 where it has none)."""
    found = {"HugePages_Free": 0, "HugePages_Rsvd": 0}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in found:
                found[name] = int(value.split()[0])
    return found["HugePages_Free"], found["HugePages_Rsvd"]


def shared_buffers_mb() -> int:
    """PostgreSQL's own memory as deploy/README.md tells a co-op to set it: a quarter
    of the machine's (Debian's default, 128 MB, holds a tenth of the 1,000,000 offers:
    their searches then read rows from the system's cache, p95 109-114 ms against 80-83
    ms with 1 GB on one kept catalogue)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(128, memory // 4 // 2**20)


def percentiles(timings: Sequence[float]) -> dict[int, float]:
    ordered = sorted(timings)
    return {p: ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] for p in (50, 95, 99)}


def figures(timings: Sequence[float]) -> str:
    if not timings:
        return "none"
    pct = percentiles(timings)
    return (
        f"p50 {pct[50]:6.1f} ms  p95 {pct[95]:6.1f} ms  p99 {pct[99]:6.1f} ms  (n={len(timings)})"
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def one_core_loop_ms() -> float:
    """A fixed pure-Python loop on one core, best of five: how fast this machine runs
    the interpreter (the search's own Python, and SQLAlchemy's, runs at this pace)."""
    best = math.inf
    for _ in range(5):
        began = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.perf_counter() - began)
    return best * 1000


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def point_read_ms(db: Database, uris: Sequence[str]) -> float:
    """Median time of reading one offer's id by its uri, through the same path as a
    search: the floor under every search's latency."""
    timings = []
    for uri in uris:
        began = time.perf_counter()
        db.read_sync(
            lambda c, u=uri: c.execute(  # type: ignore[misc]
                select(offers_table.c.id).where(offers_table.c.uri == u)
            ).scalar_one()
        )
        timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings)


@dataclass
class Step:
    size: int
    hits: list[float]
    misses: list[float]
    all: list[float]


def measure(
    db: Database, size: int, picked: Sequence[Entry], count: int, rng: random.Random
) -> Step:
    made = searches(picked, WARM_UP + count, rng)
    for search in made[:WARM_UP]:
        query = catalogue.parse_query(search.params)
        db.read_sync(lambda c, q=query: catalogue.search(c, q, now=NOW))  # type: ignore[misc]
    floor = point_read_ms(db, [e.uri for e in picked[:200]])
    print(f"  load average {load_average()}; a point read by uri: p50 {floor:.2f} ms")
    by_shape: dict[str, list[float]] = defaultdict(list)
    hits: list[float] = []
    misses: list[float] = []
    found_hits = found_misses = 0
    first_page: list[int] = []
    for search in made[WARM_UP:]:
        query = catalogue.parse_query(search.params)
        began = time.perf_counter()
        page = db.read_sync(lambda c, q=query: catalogue.search(c, q, now=NOW))  # type: ignore[misc]
        elapsed = (time.perf_counter() - began) * 1000
        by_shape[search.shape].append(elapsed)
        (misses if search.miss else hits).append(elapsed)
        if search.miss:
            found_misses += bool(page.hits)
        else:
            found_hits += bool(page.hits)
            first_page.append(len(page.hits))
    found = found_hits + found_misses
    print(
        f"  found something: {found} of {count} searches ({100 * found / count:.1f} %); "
        f"{found_hits} of {len(hits)} built from an offer "
        f"(mean {statistics.mean(first_page or [0]):.1f} offers on their first page), "
        f"{found_misses} of {len(misses)} misses"
    )
    print(f"  hits    {figures(hits)}")
    print(f"  misses  {figures(misses)}")
    print(f"  all     {figures(hits + misses)}")
    slowest = sorted(by_shape.items(), key=lambda kv: -percentiles(kv[1])[95])[:5]
    print("  slowest shapes by p95:")
    for shape, timings in slowest:
        pct = percentiles(timings)
        print(
            f"    {pct[95]:6.1f} ms  (p50 {pct[50]:5.1f}, max {max(timings):6.1f}, "
            f"n={len(timings):3})  {shape}"
        )
    return Step(size, hits, misses, hits + misses)


def fill(db: Database, entries: Iterator[Entry]) -> tuple[int, float]:
    """Store every entry, FILL_BATCH a write; returns how many and the seconds taken."""
    began = time.perf_counter()
    stored = 0
    while batch := list(itertools.islice(entries, FILL_BATCH)):
        db.write_sync(lambda c, b=batch: put_many(c, b, now=NOW))  # type: ignore[misc]
        stored += len(batch)
    return stored, time.perf_counter() - began


def merge_text(db: Database) -> float:
    """SQLite: the text index merged into one segment, as the node's catalogue poller
    does once a day (node/catalogue/worker.py); the seconds taken."""
    began = time.perf_counter()
    while db.write_sync(merge_text_index):
        pass
    return time.perf_counter() - began


def vacuum_analyze(url: str) -> float:
    """What autovacuum does soon after a bulk load: statistics, and the text index's
    pending list merged (until then every search scans it); the seconds taken."""
    return maintenance(url, "VACUUM ANALYZE")


def checkpoint(url: str) -> float:
    """What PostgreSQL's checkpointer does within minutes of a bulk load: every page the
    load dirtied written out (until then it writes them while the searches run, on the
    same two cores); the seconds taken."""
    return maintenance(url, "CHECKPOINT")


def maintenance(url: str, command: str) -> float:
    """The seconds ``command`` took, outside any transaction."""
    began = time.perf_counter()
    engine = create_null_pool_engine(url)
    with engine.connect() as conn:
        conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        conn.exec_driver_sql(command)
    engine.dispose()
    return time.perf_counter() - began


def renew_recent(url: str) -> float:
    """What the catalogue's round does soon after offers arrive: the recent indexes
    made again (node/catalogue/recent_store.py); the seconds taken."""
    began = time.perf_counter()
    engine = create_null_pool_engine(url)
    recent.renew(engine)
    engine.dispose()
    return time.perf_counter() - began


def growth(smaller: Step, larger: Step) -> str:
    def factor(a: list[float], b: list[float], p: int) -> str:
        return f"×{percentiles(b)[p] / percentiles(a)[p]:.2f}"

    return (
        f"growth {smaller.size:,} → {larger.size:,} offers (×{larger.size / smaller.size:.3g}): "
        f"hits p50 {factor(smaller.hits, larger.hits, 50)}, "
        f"p95 {factor(smaller.hits, larger.hits, 95)}; "
        f"all p50 {factor(smaller.all, larger.all, 50)}, p95 {factor(smaller.all, larger.all, 95)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--offers",
        default="100000,1000000",
        help="sizes to measure at, filled in turn (default: 100000,1000000)",
    )
    parser.add_argument("--coops", type=int, default=200)
    parser.add_argument("--queries", type=int, default=1000, help="searches per size")
    parser.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="PostgreSQL's allocator at glibc's defaults rather than as deploy/README.md sets it",
    )
    args = parser.parse_args()
    sizes = sorted({int(s.replace("_", "")) for s in args.offers.split(",") if s.strip()})
    if not sizes or sizes[0] <= 0:
        parser.error("--offers takes sizes such as 100000,1000000")

    # The offers each size's searches are built from, picked before the fill and kept
    # as they are generated (a search at a size only picks among offers stored by then).
    pick_rng = random.Random(SEED + 1)
    picks = {
        size: pick_rng.sample(range(size), k=min(size, (WARM_UP + args.queries) * 6 // 5))
        for size in sizes
    }
    wanted = set().union(*picks.values())
    kept: dict[int, Entry] = {}

    def keeping(entries: Iterator[Entry]) -> Iterator[Entry]:
        for n, entry in enumerate(entries):
            if n in wanted:
                kept[n] = entry
            yield entry

    print(
        f"catalogue on {args.backend}: {args.coops} co-ops, {args.queries} searches a size "
        f"({100 * (1 - MISS_SHARE):.0f} % built from a stored offer, "
        f"{100 * MISS_SHARE:.0f} % deliberate misses), first page of 20"
    )
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores; one core: a 1,000,000-step "
        f"Python loop in {one_core_loop_ms():.0f} ms (best of 5)"
    )
    if args.backend == "postgres":
        print(f"PostgreSQL: shared_buffers {shared_buffers_mb():,} MB, a quarter of the memory")
    generated = keeping(offers(sizes[-1], args.coops, random.Random(SEED)))
    steps: list[Step] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(
            args.backend, Path(tmp), allocator={} if args.glibc_defaults else ALLOCATOR
        ) as url,
    ):
        engine = create_null_pool_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        db = Database(url, readers=1)
        try:
            stored = 0
            for size in sizes:
                count, seconds = fill(db, itertools.islice(generated, size - stored))
                stored += count
                line = (
                    f"{size:,} offers: {count:,} more stored in {seconds:.1f} s "
                    f"({count / seconds:,.0f}/s)"
                )
                if args.backend == "postgres":
                    line += f", then VACUUM ANALYZE in {vacuum_analyze(url):.1f} s"
                    line += f", its recent indexes made in {renew_recent(url):.1f} s"
                    line += f", a CHECKPOINT in {checkpoint(url):.1f} s"
                else:
                    line += f", then its text index merged (daily) in {merge_text(db):.1f} s"
                print(line, flush=True)
                picked = [kept[n] for n in picks[size]]
                steps.append(measure(db, size, picked, args.queries, random.Random(SEED + size)))
                sys.stdout.flush()
        finally:
            db.close()
    for smaller, larger in itertools.pairwise(steps):
        print(growth(smaller, larger))
    largest = steps[-1]
    if largest.size >= 1_000_000:
        p95 = percentiles(largest.all)[95]
        verdict = "under" if p95 < TARGET_MS else "OVER"
        print(
            f"p95 of all searches at {largest.size:,} offers: {p95:.1f} ms, "
            f"{verdict} the {TARGET_MS:.0f} ms target"
        )


if __name__ == "__main__":
    main()
