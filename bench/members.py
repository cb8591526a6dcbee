"""Creating members: 10,000 local members, each with its Person actor and Ed25519 key,
in members per second.

Each member is what the API's POST /api/v1/members makes: a fresh Ed25519 key (made
off the writer thread) and one write unit inserting the actor, its key and the member
row; units are submitted concurrently, as requests would be, and the writer commits
them in batches. No RSA key is made (it waits for the member's first signed request).
A second, smaller run adds an argon2 password hash to each member, which dominates.

    .venv/bin/python bench/members.py [--members 10000] [--with-passwords 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.concurrency import run_in_threadpool  # noqa: E402

from federation import keys  # noqa: E402
from federation.clock import SystemClock  # noqa: E402
from node.members import store as members  # noqa: E402
from node.services.setup import create_coop, migrate_database  # noqa: E402
from node.settings import Settings  # noqa: E402
from node.storage.database import Database  # noqa: E402


async def create_members(
    settings: Settings, db: Database, count: int, *, prefix: str, passwords: bool
) -> float:
    clock = SystemClock()
    semaphore = asyncio.Semaphore(100)

    async def one(i: int) -> None:
        async with semaphore:
            password_hash = (
                await run_in_threadpool(members.hash_password, f"password number {i}")
                if passwords
                else None
            )
            ed_pem = keys.generate_ed25519_private_pem()
            now = clock.now()
            await db.write(
                lambda conn: members.add_local(
                    conn,
                    base_url=settings.base_url,
                    domain=settings.domain,
                    username=f"{prefix}{i}",
                    name=f"Member {i}",
                    role="member",
                    college=None,
                    joined_at=now,
                    now=now,
                    ed25519_private_pem=ed_pem,
                    password_hash=password_hash,
                )
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def measure(count: int, with_passwords: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            domain="coop.example",
            name="Bench co-op",
            database_url=f"sqlite:///{tmp}/bench.sqlite3",
        )
        migrate_database(settings.database_url)
        db = Database(settings.database_url)
        create_coop(settings, db, SystemClock())
        db.writer.start()
        try:
            rate = await create_members(settings, db, count, prefix="m", passwords=False)
            print(f"{count} members without password: {rate:8.0f} members/s (SQLite)")
            if with_passwords:
                rate = await create_members(
                    settings, db, with_passwords, prefix="p", passwords=True
                )
                print(
                    f"{with_passwords} members with an argon2 password: "
                    f"{rate:8.0f} members/s (SQLite)"
                )
        finally:
            db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--with-passwords", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(measure(args.members, args.with_passwords))


if __name__ == "__main__":
    main()
