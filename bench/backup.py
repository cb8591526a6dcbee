"""Backing up and restoring a node with 100,000 offers and 10,000 members: the time of
``coopnode backup`` and of ``coopnode restore``, and the archive's size.

The node is seeded in bulk: the offers through the catalogue's store (1,000 a
statement, as bench/catalogue.py), the members as the API makes them, each with its
actor and Ed25519 key (as bench/members.py). A few photos are added to the media
directory. The restore goes into a new data directory (SQLite) or a new database of
the same cluster (PostgreSQL), and counts the restored rows against the manifest.

    .venv/bin/python bench/backup.py [--offers 100000] [--members 10000]
    .venv/bin/python bench/backup.py --backend postgres
    .venv/bin/python bench/backup.py --into-postgres   # SQLite, then also into PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.catalogue import NOW, offers  # noqa: E402
from bench.members import create_members  # noqa: E402
from federation.clock import SystemClock  # noqa: E402
from node.catalogue.store import Entry, put_many  # noqa: E402
from node.services.backup import create_backup  # noqa: E402
from node.services.media import media_root  # noqa: E402
from node.services.restore import restore_backup  # noqa: E402
from node.services.setup import create_coop, migrate_database  # noqa: E402
from node.settings import Settings, write_config  # noqa: E402
from node.storage.database import Database  # noqa: E402

PHOTOS = 20
PHOTO_BYTES = 300_000  # a phone photo, as uploads shrink them


@contextlib.contextmanager
def databases(backend: str, tmp: Path) -> Iterator[tuple[str, str]]:
    """The node's database and the empty one the restore goes into."""
    if backend == "sqlite":
        yield "", ""
        return
    from tests.support.postgres import PostgresCluster

    with PostgresCluster(durable=True) as cluster:
        yield cluster.create_database("node"), cluster.create_database("restored")


async def seed(settings: Settings, offer_count: int, member_count: int) -> float:
    started = time.perf_counter()
    migrate_database(settings.database_url)
    db = Database(settings.database_url)
    create_coop(settings, db, SystemClock())
    db.writer.start()
    try:
        await create_members(settings, db, member_count, prefix="m", passwords=False)
        batch: list[Entry] = []
        for entry in offers(offer_count, 200, random.Random(20270301)):
            batch.append(entry)
            if len(batch) == 1000:
                await db.write(lambda c, b=batch: put_many(c, b, now=NOW))  # type: ignore[misc]
                batch = []
        if batch:
            await db.write(lambda c: put_many(c, batch, now=NOW))
    finally:
        db.close()
    root = media_root(settings.data_dir)
    root.mkdir(mode=0o700)
    rng = random.Random(7)
    for n in range(PHOTOS):
        (root / f"photo{n:04d}abcdefghijk.jpg").write_bytes(rng.randbytes(PHOTO_BYTES))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument(
        "--into-postgres",
        action="store_true",
        help="also restore the SQLite backup into PostgreSQL (the scale-up path)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work, databases(args.backend, Path(work)) as urls:
        tmp = Path(work)
        source_url, target_url = urls
        settings = Settings(
            data_dir=tmp / "node",
            domain="coop.example",
            name="Bench co-op",
            database_url=source_url,
        )
        write_config(settings)
        if not source_url:
            settings = Settings(
                data_dir=settings.data_dir,
                domain=settings.domain,
                name=settings.name,
                database_url=f"sqlite:///{settings.data_dir / 'coopnode.sqlite3'}",
            )
        seeded = asyncio.run(seed(settings, args.offers, args.members))
        archive = tmp / "backup.tar.gz"

        started = time.perf_counter()
        manifest = create_backup(settings, archive, now=datetime.now(UTC))
        backup_seconds = time.perf_counter() - started
        started = time.perf_counter()
        restore_backup(archive, tmp / "restored", database_url=target_url or None)
        restore_seconds = time.perf_counter() - started
        size = archive.stat().st_size
        scale_up = ""
        if args.into_postgres and args.backend == "sqlite":
            with databases("postgres", tmp) as (_, postgres_url):
                started = time.perf_counter()
                restore_backup(archive, tmp / "scaled", database_url=postgres_url)
                scale_up = f", restore into PostgreSQL {time.perf_counter() - started:.1f} s"

    counts = manifest.counts
    print(
        f"{args.backend:8} {counts['offers']} offers, {counts['members']} members, "
        f"{counts['media_files']} photos of {PHOTO_BYTES // 1000} kB (seeded in {seeded:.0f} s): "
        f"backup {backup_seconds:.1f} s, archive {size / 1e6:.1f} MB, "
        f"restore {restore_seconds:.1f} s{scale_up}"
    )


if __name__ == "__main__":
    main()
