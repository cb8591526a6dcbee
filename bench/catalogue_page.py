"""Catalogue page latency: ``GET /catalogue`` rendered from 100,000 federated offers.

Fills a node's catalogue the way ``bench/catalogue.py`` does (its offers, through
``put_many``), then asks the node's app, in-process through httpx's ASGI transport,
for the catalogue page: without a query, with a word, and with filters; each many times
over, after a few warm-up requests. Prints p50, p95 and max in milliseconds and the
size of the page sent (the stylesheet once, apart), and the same search run alone,
without the page around it.

    .venv/bin/python bench/catalogue_page.py                       # SQLite
    .venv/bin/python bench/catalogue_page.py --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.catalogue import NOW, database, offers  # noqa: E402
from federation.clock import ManualClock  # noqa: E402
from node.app import create_app  # noqa: E402
from node.catalogue import search as catalogue  # noqa: E402
from node.catalogue.store import Entry, put_many  # noqa: E402
from node.services.setup import create_coop, migrate_database  # noqa: E402
from node.settings import Settings  # noqa: E402
from node.storage.database import Database  # noqa: E402

SCENARIOS = {
    "no query": "/catalogue",
    "text (miel)": "/catalogue?q=miel",
    "filters": "/catalogue?category=honey&currency=EUR&max_price=50&sort=price",
    "text + filter": "/catalogue?q=miel&category=honey&status=any",
    "second page": None,  # the "next page" link of the first
}
HEADERS = {
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Accept-Language": "fr-FR,fr;q=0.9,en;q=0.8",
}


def fill(url: str, count: int, coops: int) -> float:
    rng = random.Random(20270301)
    db = Database(url, readers=1)
    started = time.perf_counter()
    try:
        batch: list[Entry] = []
        for entry in offers(count, coops, rng):
            batch.append(entry)
            if len(batch) == 1000:
                db.write_sync(lambda c, b=batch: put_many(c, b, now=NOW))  # type: ignore[misc]
                batch = []
        if batch:
            db.write_sync(lambda c: put_many(c, batch, now=NOW))
    finally:
        db.close()
    return time.perf_counter() - started


def analyse(url: str) -> None:
    from node.storage.engine import create_null_pool_engine

    engine = create_null_pool_engine(url)
    with engine.connect() as conn:
        conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def percentile(sorted_ms: list[float], p: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * p / 100))]


async def search_alone(app: Starlette, path: str, requests: int) -> list[float]:
    """The same search without the page: what the database takes of the page's time."""
    node = app.state.node
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(urlsplit(path).query):
        params.setdefault(name, []).append(value)
    query = catalogue.parse_query(params)
    timings = []
    for _ in range(requests):
        began = time.perf_counter()
        await node.db.read(lambda conn: catalogue.search(conn, query, now=NOW))
        timings.append((time.perf_counter() - began) * 1000)
    return sorted(timings)


async def measure(settings: Settings, requests: int) -> None:
    app = create_app(settings, clock=ManualClock(NOW), run_workers=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
            css = await client.get("/static/coopnode.css")
            assert css.status_code == 200
            first = await client.get("/catalogue", headers=HEADERS)
            assert first.status_code == 200, first.text
            marker = 'rel="next"'
            next_links = [
                part.split('href="', 1)[1].split('"', 1)[0]
                for part in first.text.split("<a ")
                if marker in part
            ]
            assert next_links, "the first page has no next page"
            scenarios = dict(SCENARIOS)
            scenarios["second page"] = next_links[0].replace("&amp;", "&")
            print(f"stylesheet: {len(css.content) / 1024:.1f} KB (once, cached after)")
            for name, path in scenarios.items():
                assert path is not None
                for _ in range(10):  # warm-up: templates compiled, caches filled
                    await client.get(path, headers=HEADERS)
                timings: list[float] = []
                size = 0
                cards = 0
                for _ in range(requests):
                    began = time.perf_counter()
                    response = await client.get(path, headers=HEADERS)
                    timings.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                    size = len(response.content)
                    cards = response.text.count('class="card"')
                timings.sort()
                search_ms = await search_alone(app, path, requests)
                print(
                    f"  {name:14} p50 {percentile(timings, 50):5.1f} ms  "
                    f"p95 {percentile(timings, 95):5.1f} ms  max {timings[-1]:6.1f} ms  "
                    f"page {size / 1024:5.1f} KB (+CSS {(size + len(css.content)) / 1024:.1f} KB)"
                    f"  {cards} offers  [{requests} requests; the search alone: "
                    f"p50 {percentile(search_ms, 50):.1f} ms, "
                    f"p95 {percentile(search_ms, 95):.1f} ms]"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--coops", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.backend, Path(tmp)) as url:
        settings = Settings(
            data_dir=Path(tmp) / "node",
            domain="bench.example",
            name="Bench Market",
            database_url=url,
        )
        settings.data_dir.mkdir()
        migrate_database(url)
        db = Database(url, readers=1)
        try:
            create_coop(settings, db, ManualClock(NOW))
        finally:
            db.close()
        seconds = fill(url, args.offers, args.coops)
        if args.backend == "postgres":
            analyse(url)  # what autovacuum does soon after a bulk load
        print(
            f"{args.backend}: {args.offers:,} federated offers from {args.coops} co-ops "
            f"stored in {seconds:.1f} s; GET /catalogue, server time in-process:"
        )
        asyncio.run(measure(settings, args.requests))


if __name__ == "__main__":
    main()
