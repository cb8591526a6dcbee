"""Signed deliveries per second from one delivery worker, to 5,000 distinct inboxes.

A node in local mode (so that its address guard lets loopback through) whose co-op has
5,000 accepted followers, each with its own inbox on a recording sink
(tests/support/sink.py, its own process on the same cores) spread over 100 loopback
addresses, 127.0.1.x: to the node these are 100 hosts, so the per-host limit on
requests in flight applies. One activity is published to all of them through the
outbox, in one unit of work, as any feature does; then the delivery worker's own round,
``node.delivery_worker.run_once``, runs in this process until the queue is empty. That
is the loop ``coopnode worker`` runs (``node.workers.run_poller`` calls ``run_once``
again at once while it finds work), without the start-up and the first poll's wait, and
with this process's CPU time being the worker's (its signing and database threads
included). The sink then says whether every inbox got the activity exactly once. The
fan-out runs ``--runs`` times, each on a fresh node and sink; the best rate is printed,
with the machine's load average, since other work on the same cores moves the figures.

The second scenario gives the co-op 5,000 followers on 50 hosts that each advertise a
shared inbox: one activity must cost exactly 50 POSTs.

    .venv/bin/python bench/delivery.py                    # SQLite
    .venv/bin/python bench/delivery.py --backend postgres
    .venv/bin/python bench/delivery.py --loop uvloop      # as `coopnode serve` runs it
    .venv/bin/python bench/delivery.py --client httpx     # through the httpx client
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from federation import keys
from federation.clock import SystemClock
from federation.httpsig import sign_string
from federation.poster import HttpxPoster, InboxSigner
from node import delivery_worker
from node.runtime import Node
from node.services import follows, identity, outbox
from node.services.setup import create_coop, migrate_database
from node.settings import Settings
from node.storage.database import Database
from node.storage.tables import followers
from node.web.app import make_http_client
from tests.support.processes import free_port
from tests.support.sink import SinkProcess, start_sink


@dataclass
class Figures:
    posts: int
    seconds: float
    worker_cpu: float
    sink_cpu: float
    rounds: int
    summary: dict[str, int]
    sink: dict[str, Any]


def process_cpu(pid: int) -> float:
    """User and system CPU seconds of a process (Linux), 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_settings(root: Path, database_url: str | None) -> Settings:
    data_dir = root / "node"
    data_dir.mkdir(parents=True)
    return Settings(
        data_dir=data_dir,
        domain="127.0.0.1:8000",
        name="Bench co-op",
        local=True,
        database_url=database_url or f"sqlite:///{data_dir / 'coopnode.sqlite3'}",
    )


async def deliver_to_followers(
    settings: Settings, sink: SinkProcess, rows: list[dict[str, Any]], client: str, key: str
) -> Figures:
    """Publish one activity to ``rows`` (followers) and run the delivery worker dry."""
    db = Database(settings.database_url)
    db.writer.start()
    try:
        async with make_http_client(settings) as http:
            node = Node(settings=settings, db=db, http=http, clock=SystemClock())
            if client == "httpx":
                node.poster = HttpxPoster(http)
            if key == "ed25519":
                # What the rest of the path costs: Mastodon verifies RSA signatures only.
                coop = await db.read(lambda conn: identity.get_actor(conn, settings.handle))
                assert coop.ed25519_private_pem is not None
                node.peers.inbox_signer = InboxSigner(
                    node.peers.inbox_signer.key_id,
                    keys.load_own_private_key(coop.ed25519_private_pem),
                    node.clock,
                )
            coop_id = node.peers.coop_id
            for row in rows:
                row["actor_id"] = coop_id
            await db.write(lambda conn: conn.execute(followers.insert(), rows))
            activity = {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": f"{settings.base_url}/activities/bench-{time.time_ns()}",
                "type": "Create",
                "actor": f"{settings.base_url}/actors/coop",
                "to": ["https://www.w3.org/ns/activitystreams#Public"],
                "cc": [f"{settings.base_url}/actors/coop/followers"],
                "object": {
                    "id": f"{settings.base_url}/offers/1",
                    "type": "Note",
                    "attributedTo": f"{settings.base_url}/actors/coop",
                    "content": "<p>Organic apples, 1 kg, 3.50 EUR, from the orchard co-op</p>",
                },
            }
            now, policy = node.clock.now(), node.peers.policy

            def publish(conn: Any) -> int:
                inboxes = follows.follower_inboxes(conn, actor_id=coop_id)
                return outbox.publish(
                    conn, activity, actor_id=coop_id, inboxes=inboxes, now=now, policy=policy
                )

            await db.write(publish)
            cpu_before, sink_before = time.process_time(), process_cpu(sink.process.pid)
            started = time.perf_counter()
            rounds = 0
            while await delivery_worker.run_once(node):
                rounds += 1
            seconds = time.perf_counter() - started
            worker_cpu = time.process_time() - cpu_before
            sink_cpu = process_cpu(sink.process.pid) - sink_before
            summary = await db.read(outbox.queue_summary)
    finally:
        db.close()
    stats = sink.stats()
    return Figures(
        posts=stats["requests"],
        seconds=seconds,
        worker_cpu=worker_cpu,
        sink_cpu=sink_cpu,
        rounds=rounds,
        summary=summary,
        sink=stats,
    )


def prepare(settings: Settings) -> None:
    migrate_database(settings.database_url)
    db = Database(settings.database_url, readers=1)
    try:
        create_coop(settings, db, SystemClock())
    finally:
        db.close()


def follower_rows(count: int, inbox: Any, shared_inbox: Any = None) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        own = inbox(n)
        actor = own.rsplit("/inbox/", 1)[0] + f"/users/{n}"
        rows.append(
            {
                "follower": actor,
                "host": actor.split("/")[2].split(":")[0],
                "follow_id": f"{actor}/follows/1",
                "state": follows.ACCEPTED,
                "inbox": own,
                "shared_inbox": shared_inbox(n) if shared_inbox else None,
                "created_at": now,
                "accepted_at": now,
            }
        )
    return rows


def scenario(
    root: Path,
    database_url: str | None,
    followers_count: int,
    hosts: int,
    *,
    shared: bool,
    client: str,
    loop: str,
    key: str,
) -> Figures:
    settings = make_settings(root, database_url)
    prepare(settings)
    sink = start_sink(free_port(), hosts)
    try:
        shared_inbox = None
        if shared:

            def shared_inbox(n: int) -> str:
                return sink.inbox(n).rsplit("/inbox/", 1)[0] + "/inbox"

        rows = follower_rows(followers_count, sink.inbox, shared_inbox)
        run = deliver_to_followers(settings, sink, rows, client, key)
        if loop == "uvloop":
            import uvloop

            return uvloop.run(run)
        return asyncio.run(run)
    finally:
        sink.stop()


@contextlib.contextmanager
def databases(backend: str) -> Iterator[Callable[[], str | None]]:
    """Makes a fresh database per call: None for SQLite (a file in the node's data
    directory), else a database of a throwaway PostgreSQL cluster."""
    if backend == "sqlite":
        yield lambda: None
        return
    from tests.support.postgres import PostgresCluster

    with PostgresCluster(durable=True) as cluster:
        yield cluster.create_database


def rsa_signing_cost() -> float:
    """CPU seconds one RSA-2048 signature takes here: most of a delivery's CPU."""
    key = keys.load_own_private_key(keys.generate_rsa_private_pem())
    text = "(request-target): post /inbox\nhost: peer.example\ndate: x\ndigest: y"
    started = time.process_time()
    for _ in range(200):
        sign_string(text, key)
    return (time.process_time() - started) / 200


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--followers", type=int, default=5_000)
    parser.add_argument("--hosts", type=int, default=100, help="loopback hosts of the inboxes")
    parser.add_argument("--shared-hosts", type=int, default=50)
    parser.add_argument(
        "--client",
        choices=["node", "httpx"],
        default="node",
        help="node: the poster the node picks (aiohttp); httpx: through its httpx client",
    )
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="asyncio, as `coopnode worker` runs; uvloop, as `coopnode serve` runs workers",
    )
    parser.add_argument(
        "--key",
        choices=["rsa", "ed25519"],
        default="rsa",
        help="rsa, as peers require; ed25519 shows what the rest of the path costs",
    )
    parser.add_argument("--runs", type=int, default=3, help="best of N runs of the fan-out")
    args = parser.parse_args()

    load = load_average()
    signing = rsa_signing_cost()
    with tempfile.TemporaryDirectory() as tmp, databases(args.backend) as new_database:
        runs = [
            scenario(
                Path(tmp) / f"fanout-{n}",
                new_database(),
                args.followers,
                args.hosts,
                shared=False,
                client=args.client,
                loop=args.loop,
                key=args.key,
            )
            for n in range(args.runs)
        ]
        shared = scenario(
            Path(tmp) / "shared",
            new_database(),
            args.followers,
            args.shared_hosts,
            shared=True,
            client=args.client,
            loop=args.loop,
            key=args.key,
        )

    fanout = max(runs, key=lambda figures: figures.posts / figures.seconds)
    sink = fanout.sink
    print(
        f"{args.backend:8} {fanout.posts / fanout.seconds:7.0f} signed deliveries/s "
        f"({args.client}, {args.loop}, {args.key}; best of {args.runs}: "
        + ", ".join(f"{f.posts / f.seconds:.0f}" for f in runs)
        + f"; load average {load} before)"
    )
    print(
        f"         {fanout.posts} POSTs to {sink['inboxes']} inboxes on {args.hosts} hosts in "
        f"{fanout.seconds:.2f} s, {fanout.rounds} rounds: {sink['deliveries']} delivered, "
        f"{len(sink['duplicates'])} duplicates, {sink['signed']} signed; "
        f"queue {fanout.summary}"
    )
    print(
        f"         worker CPU {fanout.worker_cpu:.2f} s "
        f"({1e6 * fanout.worker_cpu / max(1, fanout.posts):.0f} µs per delivery), "
        f"sink CPU {fanout.sink_cpu:.2f} s; one RSA-2048 signature takes "
        f"{1e6 * signing:.0f} µs of CPU here"
    )
    print(
        f"         shared inboxes: {args.followers} followers on {args.shared_hosts} hosts -> "
        f"{shared.posts} POSTs ({shared.sink['inboxes']} inboxes, "
        f"{len(shared.sink['duplicates'])} duplicates)"
    )


if __name__ == "__main__":
    main()
