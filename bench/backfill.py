"""Backfill speed: a node newly following a co-op that holds 10,000 offers imports them.

Two real ``coopnode serve`` processes on loopback. The followed node's offers are
written straight into its database (as its own offers, with the Proposal documents it
would publish), so that only the walk is measured: the follower fetches the offers
collection page by page with signed GETs, validates every offer and stores it. The
figure is offers imported per second, from the Accept to the last page.

    .venv/bin/python bench/backfill.py [--offers 10000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.catalogue.entries import local_entry  # noqa: E402
from node.catalogue.store import put_many  # noqa: E402
from node.offers.validation import offer_to_input, parse_offer_input  # noqa: E402
from node.offers.wire import to_proposal  # noqa: E402
from node.settings import load_settings  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.urls import Urls  # noqa: E402
from tests.support.processes import coopnode_command, start_serve  # noqa: E402

PRODUCTS = ["Pommes", "Poires", "Miel", "Pain au levain", "Fromage de chèvre", "Café"]


def fill(data_dir: Path, count: int) -> None:
    settings = load_settings(data_dir)
    urls = Urls(settings.base_url)
    actor = urls.actor(settings.handle)
    now = datetime.now(UTC)
    db = Database(settings.database_url, readers=1)
    try:
        batch = []
        for n in range(count):
            offer = parse_offer_input(
                {
                    "title": {"fr": f"{PRODUCTS[n % len(PRODUCTS)]} n°{n}", "en": f"Offer {n}"},
                    "description": {"fr": "Produit de la coopérative, **récolté cette semaine**."},
                    "categories": ["apples"],
                    "price": {"amount": f"{1 + n % 40}.50", "currency": "EUR"},
                    "unit": "kg",
                    "quantity": {"available": "100", "minimum": "1"},
                    "location": {"name": "Lyon", "latitude": 45.76, "longitude": 4.83},
                    "claims": ["fair_trade", "organic"],
                },
                now=now,
            )
            published = now - timedelta(seconds=count - n)
            uri = urls.offer(f"bench{n}")
            proposal = to_proposal(
                offer,
                id=uri,
                actor=actor,
                published=published,
                followers=urls.followers(settings.handle),
                hashtag_href=urls.tag,
            )
            batch.append(
                local_entry(
                    offer,
                    uri=uri,
                    actor=actor,
                    document=proposal,
                    source=offer_to_input(offer),
                    published=published,
                    updated=published,
                )
            )
            if len(batch) == 1000:
                db.write_sync(lambda c, b=batch: put_many(c, b, now=now))  # type: ignore[misc]
                batch = []
        if batch:
            db.write_sync(lambda c: put_many(c, batch, now=now))
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        follower = start_serve(Path(tmp) / "follower")
        followed = start_serve(Path(tmp) / "followed")
        try:
            follower.wait_ready()
            followed.wait_ready()
            fill(followed.data_dir, args.offers)
            started = time.monotonic()
            result = subprocess.run(
                [
                    *coopnode_command(),
                    "follow",
                    f"coop@127.0.0.1:{followed.port}",
                    "--wait",
                    "600",
                    "--data-dir",
                    str(follower.data_dir),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            wall = time.monotonic() - started
        finally:
            follower.stop()
            followed.stop()
        db = Database(load_settings(follower.data_dir).database_url, readers=1)
        try:
            walk = db.read_sync(
                lambda c: c.exec_driver_sql(
                    "SELECT imported, pages, state, started_at, updated_at FROM backfills"
                ).one()
            )
        finally:
            db.close()
    started_at = datetime.fromisoformat(str(walk.started_at))
    finished_at = datetime.fromisoformat(str(walk.updated_at))
    seconds = (finished_at - started_at).total_seconds()
    print(result.stdout.strip().splitlines()[-1])
    print(
        f"backfill: {walk.imported} offers in {walk.pages} pages, {walk.state}, "
        f"{seconds:.1f} s from the Accept to the last page: {walk.imported / seconds:,.0f} "
        f"offers/s (the follow command took {wall:.1f} s in all)"
    )


if __name__ == "__main__":
    main()
