"""Committed units of work per second through the storage writer.

Each unit inserts one small row; ``--concurrency`` callers keep units in flight, as
concurrent requests would. Prints one line per backend.

    .venv/bin/python bench/writer.py                      # SQLite and PostgreSQL
    .venv/bin/python bench/writer.py --backend sqlite --units 50000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.engine import Connection

from node.storage.database import Database

meta = MetaData()
rows = Table(
    "bench_rows",
    meta,
    Column("id", Integer, primary_key=True),
    Column("payload", String(64), nullable=False),
)
INSERT = rows.insert()


def unit(conn: Connection) -> None:
    conn.execute(INSERT, {"payload": "a small row of about forty bytes......"})


async def measure(url: str, units: int, concurrency: int) -> tuple[float, float]:
    db = Database(url)
    meta.drop_all(db.engine)
    meta.create_all(db.engine)
    db.writer.start()
    await db.write(unit)  # connect and warm the statement cache
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await db.write(unit)

    batches_before, units_before = db.writer.batches, db.writer.units
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(units)))
    elapsed = time.perf_counter() - started
    per_batch = (db.writer.units - units_before) / max(1, db.writer.batches - batches_before)
    db.close()
    return units / elapsed, per_batch


def raw_sqlite_baseline(path: Path, units: int) -> float:
    """Plain sqlite3, WAL, one transaction per 200 rows: what the writer competes with."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    started = time.perf_counter()
    for start in range(0, units, 200):
        conn.execute("BEGIN")
        for _ in range(min(200, units - start)):
            conn.execute("INSERT INTO r (payload) VALUES (?)", ("x" * 38,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return units / elapsed


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    from tests.support.postgres import PostgresCluster

    # Durable: PostgreSQL's default fsync and synchronous_commit, as a co-op runs it.
    with PostgresCluster(durable=True) as cluster:
        yield cluster.create_database("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="best of N runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "both"):
            results = [
                asyncio.run(
                    measure(f"sqlite:///{tmp}/bench{i}.sqlite3", args.units, args.concurrency)
                )
                for i in range(args.runs)
            ]
            rate, per_batch = max(results)
            baseline = raw_sqlite_baseline(Path(tmp) / "raw.sqlite3", args.units)
            print(
                f"sqlite    {rate:8.0f} committed units/s  ({per_batch:.0f} units per "
                f"transaction, concurrency {args.concurrency}; raw sqlite3 {baseline:.0f} rows/s)"
            )
        if args.backend in ("postgres", "both"):
            with postgres() as url:
                results = [
                    asyncio.run(measure(url, args.units, args.concurrency))
                    for _ in range(args.runs)
                ]
            rate, per_batch = max(results)
            print(
                f"postgres  {rate:8.0f} committed units/s  ({per_batch:.0f} units per "
                f"transaction, concurrency {args.concurrency})"
            )


if __name__ == "__main__":
    main()
