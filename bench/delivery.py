"""Signed deliveries per second from one delivery worker, to 5,000 distinct inboxes.

A node in local mode (so that its address guard lets loopback through) whose co-op has
5,000 accepted followers, each with its own inbox on a recording sink
(tests/support/sink.py, its own process on the same cores) spread over 100 loopback
addresses, 127.0.1.x: to the node these are 100 hosts, so the per-host limit on
requests in flight applies. One activity is published to all of them through the
outbox, in one unit of work, as any feature does; then the delivery worker's own round,
``node.delivery.worker.run_once``, runs in this process until the queue is empty. That
is the loop ``coopnode worker`` runs (``node.workers.run_poller`` calls ``run_once``
again at once while it finds work), without the start-up and the first poll's wait, and
with this process's CPU time being the worker's (its signing and database threads
included). The sink then says whether every inbox got the activity exactly once. The
fan-out runs ``--runs`` times, each on a fresh node and sink; the best rate is printed,
with the machine's load average, since other work on the same cores moves the figures.

How the POSTs are signed depends on what the hosts take (federation.schemes), and
``--key`` picks the scenarios, all three by default, in one run:

- ``rsa``: no host declares RFC 9421 with Ed25519, so every POST is signed draft-cavage
  with the co-op's RSA key, as Mastodon takes them;
- ``ed25519``: every host declares it (FEP-844e, on one stored actor per host) and
  takes it: every POST is signed RFC 9421 with the Ed25519 key, the ceiling;
- ``mixed``: every host declares it, but half of them answer 401 to it and take
  draft-cavage RSA: the first fan-out pays one extra POST per such host and learns, a
  second activity goes straight to the right scheme. Both fan-outs are printed.

Beside each figure: the one-core signing rates of this machine, measured just before
the scenario (a delivery's draft-cavage RSA signature, and its RFC 9421 Ed25519 one),
their ratio, and the deliveries per second as a share of the RSA rate.

The last scenario gives the co-op 5,000 followers on 50 hosts that each advertise a
shared inbox: one activity must cost exactly 50 POSTs.

    .venv/bin/python bench/delivery.py                    # SQLite, all three schemes
    .venv/bin/python bench/delivery.py --key ed25519      # the ceiling only
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
from federation.mediatypes import AS2
from federation.poster import HttpxPoster, InboxSigner, Payload, Rfc9421Signer
from federation.schemes import ED25519_CAPABILITY
from node.delivery import worker as delivery_worker
from node.follows import store as follows
from node.runtime import Node, make_http_client
from node.services import outbox, remote_actors
from node.services.setup import create_coop, migrate_database
from node.settings import Settings
from node.storage.database import Database
from node.storage.tables import followers
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
    # The deliveries made (a refused POST, answered again at once, is not one).
    delivered: int = 0
    # A second activity to the same followers (the mixed scenario), once hosts are known.
    again: Figures | None = None

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds


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
    settings: Settings,
    sink: SinkProcess,
    rows: list[dict[str, Any]],
    client: str,
    declarations: list[dict[str, Any]],
    fan_outs: int = 1,
) -> Figures:
    """Publish one activity to ``rows`` (followers) and run the delivery worker dry,
    ``fan_outs`` times; ``declarations`` are actor documents stored as fetched."""
    db = Database(settings.database_url)
    db.writer.start()
    try:
        async with make_http_client(settings) as http:
            node = Node(settings=settings, db=db, http=http, clock=SystemClock())
            if client == "httpx":
                node.poster = HttpxPoster(http)
            coop_id = node.peers.coop_id
            for row in rows:
                row["actor_id"] = coop_id
            await db.write(lambda conn: conn.execute(followers.insert(), rows))
            stored_at = node.clock.now()

            def store(conn: Any) -> None:
                for document in declarations:
                    remote_actors.store(conn, document, now=stored_at)

            await db.write(store)
            figures: list[Figures] = []
            for _ in range(fan_outs):
                figures.append(await fan_out(node, sink, previous=figures[-1:]))
    finally:
        db.close()
    first = figures[0]
    first.again = figures[1] if len(figures) > 1 else None
    return first


async def fan_out(node: Node, sink: SinkProcess, previous: list[Figures]) -> Figures:
    """One activity to every follower, the delivery worker run dry: figures of this
    fan-out only (the sink counts from its start)."""
    settings, db, coop_id = node.settings, node.db, node.peers.coop_id
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
    stats = sink.stats()
    posts, delivered = stats["requests"], stats["requests"] - stats["refused"]
    for earlier in previous:
        posts -= earlier.sink["requests"]
        delivered -= earlier.sink["requests"] - earlier.sink["refused"]
    return Figures(
        posts=posts,
        seconds=seconds,
        worker_cpu=worker_cpu,
        sink_cpu=sink_cpu,
        rounds=rounds,
        summary=summary,
        sink=stats,
        delivered=delivered,
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


def declaring_actors(sink: SinkProcess, hosts: int) -> list[dict[str, Any]]:
    """One actor per host that declares RFC 9421 with Ed25519 (FEP-844e), as the
    co-op's node stores it when it fetches the actor."""
    documents = []
    for n in range(hosts):
        base = sink.inbox(n).rsplit("/inbox/", 1)[0]
        documents.append(
            {
                "id": f"{base}/users/declaring",
                "type": "Person",
                "inbox": sink.inbox(n),
                "generator": {"type": "Application", "implements": [{"href": ED25519_CAPABILITY}]},
            }
        )
    return documents


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
    # In the mixed scenario the first half of the hosts verify draft-cavage RSA only.
    refusing = hosts // 2 if key == "mixed" else 0
    sink = start_sink(free_port(), hosts, scripted_hosts=refusing, rfc9421_answer=401)
    try:
        shared_inbox = None
        if shared:

            def shared_inbox(n: int) -> str:
                return sink.inbox(n).rsplit("/inbox/", 1)[0] + "/inbox"

        rows = follower_rows(followers_count, sink.inbox, shared_inbox)
        declarations = [] if key == "rsa" else declaring_actors(sink, hosts)
        fan_outs = 2 if key == "mixed" else 1
        run = deliver_to_followers(settings, sink, rows, client, declarations, fan_outs)
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


@dataclass
class SigningRates:
    """Requests signed per second of one core's CPU, as a delivery signs them."""

    rsa: float
    ed25519: float

    def __str__(self) -> str:
        return (
            f"signing on one core here: draft-cavage RSA {self.rsa:,.0f}/s, "
            f"RFC 9421 Ed25519 {self.ed25519:,.0f}/s ({self.ed25519 / self.rsa:.1f}x)"
        )


def signing_rates() -> SigningRates:
    """One core's rate of signed requests, each scheme, with the delivery's signers:
    the RSA signature is most of a delivery's CPU, the Ed25519 one a fraction of it."""
    clock = SystemClock()
    payload = Payload.of(b'{"type":"Create","object":{"content":"' + b"x" * 400 + b'"}}', AS2)
    signers = {
        "rsa": InboxSigner(
            "https://bench.example/actors/coop#main-key",
            keys.load_own_private_key(keys.generate_rsa_private_pem()),
            clock,
        ),
        "ed25519": Rfc9421Signer(
            "https://bench.example/actors/coop#ed25519-key",
            keys.load_own_private_key(keys.generate_ed25519_private_pem()),
            clock,
        ),
    }
    rates = {}
    for name, signer in signers.items():
        count = 300 if name == "rsa" else 2_000
        started = time.process_time()
        for n in range(count):
            signer.sign(f"https://peer{n % 100}.example/inbox/{n}", payload)
        rates[name] = count / (time.process_time() - started)
    return SigningRates(rsa=rates["rsa"], ed25519=rates["ed25519"])


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
        choices=["all", "rsa", "ed25519", "mixed"],
        default="all",
        help="which hosts take RFC 9421 with Ed25519: none, all, or half (see above)",
    )
    parser.add_argument("--runs", type=int, default=3, help="best of N runs of each fan-out")
    args = parser.parse_args()

    load = load_average()
    keys_run = ["rsa", "ed25519", "mixed"] if args.key == "all" else [args.key]
    print(
        f"{args.backend}, {args.client}, {args.loop}: {args.followers} followers on "
        f"{args.hosts} hosts, best of {args.runs}; load average {load} before"
    )
    with tempfile.TemporaryDirectory() as tmp, databases(args.backend) as new_database:
        for key in keys_run:
            rates = signing_rates()
            runs = [
                scenario(
                    Path(tmp) / f"{key}-{n}",
                    new_database(),
                    args.followers,
                    args.hosts,
                    shared=False,
                    client=args.client,
                    loop=args.loop,
                    key=key,
                )
                for n in range(args.runs)
            ]
            report(key, runs, rates, args.hosts)
        shared = scenario(
            Path(tmp) / "shared",
            new_database(),
            args.followers,
            args.shared_hosts,
            shared=True,
            client=args.client,
            loop=args.loop,
            key=keys_run[0],
        )
    print(
        f"shared inboxes: {args.followers} followers on {args.shared_hosts} hosts -> "
        f"{shared.posts} POSTs ({shared.sink['inboxes']} inboxes, "
        f"{len(shared.sink['duplicates'])} duplicates)"
    )


def report(key: str, runs: list[Figures], rates: SigningRates, hosts: int) -> None:
    labels = {
        "rsa": "RSA only",
        "ed25519": "Ed25519 only",
        "mixed": f"mixed ({hosts // 2} of {hosts} hosts refuse RFC 9421)",
    }
    # Each fan-out's best run on its own: the best first fan-out need not be the run
    # whose second one went best.
    best = max(runs, key=lambda figures: figures.rate)
    fan_outs = [("first fan-out" if best.again else "", best)]
    seconds = [f.again for f in runs if f.again is not None]
    if seconds:
        fan_outs.append(("second fan-out, hosts known", max(seconds, key=lambda f: f.rate)))
    for name, figures in fan_outs:
        sink = figures.sink
        second = name.startswith("second")
        all_rates = ", ".join(
            f"{(f.again if second and f.again is not None else f).rate:.0f}" for f in runs
        )
        print(
            f"{labels[key]}{', ' + name if name else ''}: {figures.rate:7.0f} deliveries/s "
            f"(runs: {all_rates}) = {figures.rate / rates.rsa:.2f} x one core's RSA rate; "
            f"{rates}"
        )
        print(
            f"    {figures.posts} POSTs ({figures.posts - figures.delivered} refused) for "
            f"{figures.delivered} deliveries in {figures.seconds:.2f} s, {figures.rounds} "
            f"rounds; sink: {sink['deliveries']} delivered in all, "
            f"{len(sink['duplicates'])} duplicates, {sink['rfc9421']} RFC 9421 POSTs in all; "
            f"worker CPU {1e6 * figures.worker_cpu / max(1, figures.posts):.0f} µs per POST, "
            f"sink CPU {figures.sink_cpu:.2f} s; queue {figures.summary}"
        )


if __name__ == "__main__":
    main()
