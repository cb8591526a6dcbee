"""How fast the co-op's outbox answers once the co-op has a history.

A node gets one offer published through the API; its outbox rows are then copied to
make ``--offers`` offers (two public Creates each, one in ten withdrawn), with
``--updates`` public Updates (the vote counts an open proposal publishes) and
``--private`` activities not addressed to the public among them. The collection (its
``totalItems``), the first, a middle and the last page are each fetched ``--requests``
times through the app; p50 and p95 are printed, and for scale the time the same
database takes to count every outbox row without any condition.

    .venv/bin/python bench/outbox.py                       # SQLite
    .venv/bin/python bench/outbox.py --backend postgres
    .venv/bin/python bench/outbox.py --no-index            # without migration 0014's indexes
    .venv/bin/python bench/outbox.py --withdrawn-run 30000 [--as-before]
                                   # the newest 30,000 offers withdrawn [rows as before 0017]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.catalogue import NOW, database
from federation.clock import ManualClock
from node.app import create_app
from node.services.setup import create_coop, migrate_database
from node.settings import Settings
from node.storage.database import Database
from node.storage.tables import offers, outbox_activities

OFFER = {
    "title": {"en": "Organic apples, 1 kg", "fr": "Pommes bio"},
    "description": {"en": "Picked **this morning** in Lyon."},
    "categories": ["apples"],
    "price": {"amount": "3.50", "currency": "EUR"},
    "unit": "kg",
    "quantity": {"available": "40", "minimum": "1"},
    "location": {"name": "Lyon", "latitude": 45.764, "longitude": 4.8357},
    "end_time": "2027-06-30T18:00:00+02:00",
    "claims": ["fair_trade", "organic"],
}
AS2 = {"Accept": "application/activity+json"}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def copied(row: dict[str, Any], key: str, new_key: str, **changes: Any) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "id"}
    out["activity_id"] = f"https://bench.example/activities/{uuid.uuid4()}"
    out["body"] = row["body"].replace(key, new_key)
    out.update(changes)
    return out


def fill(
    conn: Connection, args: argparse.Namespace, key: str, offer: dict[str, Any], acts: list[Any]
) -> None:
    offer_rows: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for i in range(args.offers):
        new_key = uuid.uuid4().hex
        copy = {k: v for k, v in offer.items() if k != "id"}
        copy["uri"] = offer["uri"].replace(key, new_key)
        copy["document"] = offer["document"].replace(key, new_key)
        # One in ten withdrawn, and the newest --withdrawn-run all withdrawn: a co-op
        # that has just withdrawn its latest offers, which the first page reads past.
        withdrawn = i % 10 == 9 or i >= args.offers - args.withdrawn_run
        copy["status"] = "withdrawn" if withdrawn else offer["status"]
        offer_rows.append(copy)
        # Withdrawing takes an offer's Creates out of the collection (public = 0; for
        # older rows, migration 0017); --as-before keeps them public, as they were.
        unlisted = {"public": 0} if withdrawn and not args.as_before else {}
        rows += [copied(a, key, new_key, **unlisted) for a in acts]
        for _ in range(args.updates // args.offers):
            update = acts[0]["body"].replace('"Create"', '"Update"')
            rows.append(copied({**acts[0], "body": update}, key, new_key, type="Update"))
        for _ in range(args.private // args.offers):
            body = json.dumps({"type": "Accept", "object": {"id": "x", "type": "Follow"}})
            rows.append(copied({**acts[0], "body": body}, key, new_key, type="Accept", public=0))
        if len(rows) > 5000 or i == args.offers - 1:
            conn.execute(insert(offers), offer_rows)
            conn.execute(insert(outbox_activities), rows)
            offer_rows, rows = [], []
    if args.no_index:
        conn.exec_driver_sql("DROP INDEX ix_outbox_activities_public")
        conn.exec_driver_sql("DROP INDEX ix_outbox_activities_object")


async def run(settings: Settings, args: argparse.Namespace, token: str) -> None:
    app = create_app(settings, clock=ManualClock(NOW), run_workers=False)
    async with app.router.lifespan_context(app):
        node = app.state.node
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
            auth = {"Authorization": f"Bearer {token}"}
            response = await client.post("/api/v1/offers", json=OFFER, headers=auth)
            assert response.status_code == 201, response.text
            key = response.json()["id"]

            def template(conn: Connection) -> tuple[dict[str, Any], list[Any]]:
                offer = conn.execute(select(offers)).mappings().one()
                query = select(outbox_activities).order_by(outbox_activities.c.id)
                return dict(offer), [dict(a) for a in conn.execute(query).mappings()]

            offer, acts = await node.db.read(template)
            await node.db.write(lambda conn: fill(conn, args, key, offer, acts))
            if args.backend == "postgres":
                await node.db.read(lambda conn: conn.exec_driver_sql("ANALYZE"))

            def floor(conn: Connection) -> float:
                began = time.perf_counter()
                conn.execute(select(func.count()).select_from(outbox_activities)).scalar_one()
                return (time.perf_counter() - began) * 1000

            floors = [await node.db.read(floor) for _ in range(args.requests)]
            ids = await node.db.read(
                lambda conn: list(
                    conn.execute(
                        select(outbox_activities.c.id)
                        .where(outbox_activities.c.type == "Create")
                        .order_by(outbox_activities.c.id)
                    ).scalars()
                )
            )
            collection = (await client.get("/actors/coop/outbox", headers=AS2)).json()
            print(
                f"totalItems {collection['totalItems']:,} of {len(ids) + args.updates:,} "
                f"public activities; for scale, counting every outbox row takes "
                f"{percentile(floors, 50):.1f} ms (p50)"
            )
            paths = {
                "collection (count)": "/actors/coop/outbox",
                "first page": "/actors/coop/outbox?page=true",
                "middle page": f"/actors/coop/outbox?max_id={ids[len(ids) // 2]}&page=true",
                "last page": "/actors/coop/outbox?min_id=0&page=true",
            }
            for name, path in paths.items():
                times = []
                for n in range(args.requests + 3):
                    began = time.perf_counter()
                    response = await client.get(path, headers=AS2)
                    assert response.status_code == 200, response.text
                    if n >= 3:  # the first few warm the caches
                        times.append((time.perf_counter() - began) * 1000)
                print(
                    f"  {name:20} p50 {percentile(times, 50):7.1f} ms  "
                    f"p95 {percentile(times, 95):7.1f} ms"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--offers", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--private", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--no-index", action="store_true")
    parser.add_argument(
        "--withdrawn-run", type=int, default=0, help="the newest N offers are all withdrawn"
    )
    parser.add_argument(
        "--as-before",
        action="store_true",
        help="withdrawn offers' Creates stay public rows, as before migration 0017",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.backend, Path(tmp)) as url:
        settings = Settings(
            data_dir=Path(tmp) / "node", domain="bench.example", name="Bench", database_url=url
        )
        settings.data_dir.mkdir()
        migrate_database(url)
        db = Database(url, readers=1)
        try:
            token = create_coop(settings, db, ManualClock(NOW))
        finally:
            db.close()
        print(
            f"{args.backend}: {args.offers:,} offers (one in ten withdrawn, and the newest "
            f"{args.withdrawn_run:,}), "
            f"{args.updates:,} public Updates, {args.private:,} other activities"
            + (", without the outbox indexes" if args.no_index else "")
            + (", withdrawn offers' Creates still public rows" if args.as_before else "")
        )
        asyncio.run(run(settings, args, token))


if __name__ == "__main__":
    main()
