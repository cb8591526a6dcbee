"""A network of 200 co-ops, each publishing 50 offers: the time until every member's
catalogue holds all of them, the requests per relayed offer, and the network node's CPU.

Two processes, one a core. The hub is a child process running the node's app under
uvicorn on 127.0.0.1 (uvloop and httptools, with its workers, as ``coopnode serve`` runs
it); it hosts the network ``reseau`` (a ``Group`` actor, admission by the admin) and, as
its admin would, approves each application as it arrives (``hosting.approve``) until
``--coops`` co-ops are members. This process hosts the ``--coops`` member nodes: each its
own app, SQLite database and workers, under uvicorn in one event loop, each on a loopback
address of its own (127.0.1.1, 127.0.1.2...: to the hub, as many hosts as co-ops, as in
the world; ``--one-address`` puts them all on 127.0.0.1, a port each). Every request
between nodes is real HTTP with real signatures; nothing is shortcut. Two processes
because the machine has two cores: the hub's CPU is then its process's own, and the
members share the other core (so their figures are a floor for members on machines of
their own, and the members' core is what paces the whole when it is the busier).

Every co-op applies (``joining.join``: a Join; the hub's Accept, and an Add to the earlier
members; the newcomer reads the members' offers, and the network reads the newcomer's,
once, to introduce them to the members). Once every member knows every other,
every co-op publishes its ``--offers`` offers through its API (``POST /api/v1/offers``,
``--concurrency`` in flight across the nodes): each Create goes to the network's inbox,
which announces it once to every other member's shared inbox; each member verifies the
offer's proof with its author's key and stores it. Measured from the first offer sent:

- the time until every member's catalogue holds every offer (polled every ``--poll`` s);
- the HTTP requests the members and the hub received, per offer published (POSTs to an
  inbox, GETs of an actor's document, other GETs), counted by a thin layer around each
  app;
- the hub process's CPU seconds (its threads included) per offer published, beside this
  machine's one-core limits: RSA-2048 draft-cavage and Ed25519 RFC 9421 signatures/s (a
  delivery's) and Ed25519 verifications/s (a received signature's, or a proof's);
- the members' process's CPU per copy stored, beside what its nodes' background loops
  cost with nothing to do (measured for ``--quiet`` s before publishing: a node polls its
  queues, and here hundreds share one core, so they poll every ``--idle-poll`` s rather
  than every 1 to 10 s; what a node queues itself still wakes its loops at once), and
  the inbox rounds that took the copies;
- where the time goes, from the nodes' own tables: the hub's inbox (received to handled),
  its deliveries (queued to sent) and the members' inboxes (received to handled).

    .venv/bin/python bench/network.py                          # 200 co-ops x 50 offers
    .venv/bin/python bench/network.py --coops 10 --offers 5    # under a minute

Setting up (the nodes' databases, the joins and the walks of the members' outboxes each
admission starts) is timed and printed, but is not a figure of the benchmark. The run
stops at ``--timeout`` seconds, failing; ``--keep DIR`` keeps the nodes' directories.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
import uvloop  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.delivery import SigningRates, load_average, signing_rates  # noqa: E402
from bench.shared_proposal import listening_ports  # noqa: E402
from federation.clock import SystemClock  # noqa: E402
from node.app import create_app  # noqa: E402
from node.catalogue import store as catalogue  # noqa: E402
from node.errors import NodeError  # noqa: E402
from node.networks import hosting, joining, reading  # noqa: E402
from node.networks.model import State  # noqa: E402
from node.offers import backfill_store as backfills  # noqa: E402
from node.runtime import Node  # noqa: E402
from node.services import metrics, queues  # noqa: E402
from node.services.setup import create_coop, migrate_database  # noqa: E402
from node.settings import Settings, load_settings, write_config  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.workers import default_pollers  # noqa: E402

NETWORK = "reseau"
# The hub answers its request counts here (on 127.0.0.1 only, for this bench).
STATS_PATH = "/_bench/requests"
TICKS = os.sysconf("SC_CLK_TCK")
# How the counts name the statuses inbox POSTs were answered with ("inbox answered 202").
ANSWERED = "inbox answered "
# An actor's document, where its keys are.
_ACTOR_PATH = re.compile(r"/actors/[^/]+")


# --- counting requests ---------------------------------------------------------------------


def kind_of(method: str, path: str) -> str:
    """A request as the figures count it: POSTs to an inbox, to the API, any other
    POST; GETs of an actor's document (a member fetches an author's key once, to verify
    the proofs of its offers), other GETs."""
    if method == "POST":
        if path.endswith("/inbox"):
            return "inbox POST"
        return "API POST" if path.startswith("/api/") else "other POST"
    if method in ("GET", "HEAD"):
        return "actor GET" if _ACTOR_PATH.fullmatch(path) else "GET"
    return method


class Counted:
    """An app with every HTTP request it receives counted by kind (``kind_of``), and the
    statuses of its inbox's answers; the hub's also answers its counts at ``STATS_PATH``."""

    def __init__(self, app: Any, counts: Counter[str], *, answers: bool = False) -> None:
        self.app = app
        self.counts = counts
        self.answers = answers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if self.answers and scope["path"] == STATS_PATH:
                body = json.dumps(dict(self.counts)).encode()
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            kind = kind_of(scope["method"], scope["path"])
            self.counts[kind] += 1
            if kind == "inbox POST":
                await self.app(scope, receive, self.answer_counted(send))
                return
        await self.app(scope, receive, send)

    def answer_counted(self, send: Any) -> Any:
        """``send``, counting the status each inbox POST is answered with."""

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.counts[f"{ANSWERED}{message['status']}"] += 1
            await send(message)

        return counted


class QuietServer(uvicorn.Server):
    """A uvicorn server among many in one event loop: the signals stay with the bench."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_config(app: Any, port: int, host: str = "127.0.0.1") -> uvicorn.Config:
    # As `coopnode serve` configures it (node/cli/server.py), quieter.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        http="httptools",
        ws="none",
    )


# --- the hub, in its own process ------------------------------------------------------------


async def serve_hub(data_dir: Path, port: int, coops: int) -> None:
    """The hub's node under uvicorn, and its admin approving every application until
    ``coops`` co-ops are members."""
    settings = load_settings(data_dir)
    app = create_app(settings)
    server = QuietServer(server_config(Counted(app, Counter(), answers=True), port))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.05)
    node = app.state.node
    assert isinstance(node, Node)
    await hosting.create_network(
        node, name=NETWORK, title="Réseau des co-ops", charter="Entraide.", admission="admin"
    )
    while (await reading.count_members(node, NETWORK))[1] < coops:
        for member in await reading.applications(node, NETWORK):
            await hosting.approve(node, NETWORK, member.actor)
        await asyncio.sleep(0.2)
    await serving


def hub_cpu(pid: int) -> float:
    """The process's CPU seconds so far, user and system, every thread's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# --- setting up ---------------------------------------------------------------------------


def address_of(index: int, one_address: bool) -> str:
    """Node ``index``'s loopback address: the hub's 127.0.0.1, each member its own
    (127.0.1.1, 127.0.1.2...), as each co-op has its own host; or all 127.0.0.1."""
    if index == 0 or one_address:
        return "127.0.0.1"
    return f"127.0.{1 + (index - 1) // 254}.{1 + (index - 1) % 254}"


def make_node(index: int, address: str, port: int, data_dir: str) -> str:
    """A local node's settings, database and co-op; returns its admin's API token. Runs
    in a worker process (key generation and the migrations are CPU-bound)."""
    settings = Settings(
        data_dir=Path(data_dir),
        domain=f"{address}:{port}",
        name=f"Co-op {index}",
        local=True,
    )
    write_config(settings)
    settings = load_settings(Path(data_dir))
    migrate_database(settings.database_url)
    db = Database(settings.database_url, readers=1)
    try:
        return create_coop(settings, db, SystemClock())
    finally:
        db.close()


@dataclass
class Member:
    """One member node: its settings, admin token, app and server (while it runs)."""

    index: int
    address: str
    port: int
    data_dir: Path
    token: str
    app: Any = None
    server: QuietServer | None = None
    offers: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def node(self) -> Node:
        node = self.app.state.node
        assert isinstance(node, Node)
        return node

    @property
    def database(self) -> Path:
        path = make_url(load_settings(self.data_dir).database_url).database
        assert path is not None
        return Path(path)


def prepare(tmp: Path, coops: int, one_address: bool) -> tuple[Path, int, list[Member]]:
    """The hub's and every member's data directory and co-op, two at a time."""
    ports = listening_ports(coops + 1)
    dirs = [tmp / f"node{i}" for i in range(coops + 1)]
    addresses = [address_of(i, one_address) for i in range(coops + 1)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        tokens = list(
            pool.map(make_node, range(coops + 1), addresses, ports, map(str, dirs), chunksize=4)
        )
    members = [Member(i, addresses[i], ports[i], dirs[i], tokens[i]) for i in range(1, coops + 1)]
    return dirs[0], ports[0], members


def hub_options(port: int, coops: int) -> list[str]:
    return ["--port", str(port), "--coops", str(coops)]


def start_hub(data_dir: Path, port: int, coops: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, __file__, "--serve-hub", str(data_dir), *hub_options(port, coops)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def walks_settled(node: Node) -> bool:
    """Whether the node has no walk of other co-ops' offers under way and none still to
    start: a newcomer starts its walks while it handles the network's Accept, after it
    stored the roster, so its inbox must be empty too."""
    coop_id = node.peers.coop_id

    def read(conn: Any) -> bool:
        waiting = queues.read_queues(conn).inbox_counts.get("pending", 0)
        return not waiting and not backfills.running(conn, actor_id=coop_id)

    return await node.db.read(read)


async def wait_until(what: str, check: Callable[[], Awaitable[bool]], limit: float) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > limit:
            raise SystemExit(f"FAILED: {what} not done after {limit:.0f} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


def offer_document(coop: int, n: int) -> dict[str, Any]:
    return {
        "title": {"fr": f"Miel de lavande {coop}-{n}", "en": f"Lavender honey {coop}-{n}"},
        "categories": ["honey"],
        "price": {"amount": "8.50", "currency": "EUR"},
        "unit": "piece",
        "quantity": {"available": "40"},
        "delivery_options": ["pickup"],
        "payment_options": ["bank_transfer"],
    }


# --- where the time goes, from the nodes' tables --------------------------------------------


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def spans(path: Path, query: str) -> list[tuple[datetime, datetime]]:
    conn = read_only(path)
    try:
        return [(moment(a), moment(b)) for a, b in conn.execute(query) if a and b]
    finally:
        conn.close()


HUB_INBOX = (
    "SELECT received_at, processed_at FROM inbox_activities WHERE type = 'Create'"
    " AND processed_at IS NOT NULL"
)
HUB_DELIVERIES = (
    "SELECT d.created_at, d.finished_at FROM deliveries d JOIN outbox_activities o"
    " ON o.id = d.activity_pk WHERE o.type = 'Announce' AND d.finished_at IS NOT NULL"
)
MEMBER_INBOX = (
    "SELECT received_at, processed_at FROM inbox_activities WHERE type = 'Announce'"
    " AND processed_at IS NOT NULL"
)
# A round of the inbox worker marks what it took with one moment.
MEMBER_ROUNDS = (
    "SELECT COUNT(DISTINCT processed_at), COUNT(*) FROM inbox_activities"
    " WHERE type = 'Announce' AND processed_at IS NOT NULL"
)


def rounds(path: Path) -> tuple[int, int]:
    """The inbox worker's rounds that took relayed offers, and how many they took."""
    conn = read_only(path)
    try:
        taken_in, taken = conn.execute(MEMBER_ROUNDS).fetchone()
        return int(taken_in), int(taken)
    finally:
        conn.close()


def stage(name: str, pairs: list[tuple[datetime, datetime]]) -> str:
    """A stage's waits (p50, p95, max) and its throughput from first start to last end."""
    if not pairs:
        return f"  {name}: nothing recorded"
    waits = sorted((b - a).total_seconds() for a, b in pairs)
    first, last = min(a for a, _ in pairs), max(b for _, b in pairs)
    span = max((last - first).total_seconds(), 1e-3)
    return (
        f"  {name}: {len(pairs):,} in {span:.1f} s ({len(pairs) / span:,.0f}/s); wait p50 "
        f"{statistics.median(waits):.2f} s, p95 {waits[int(0.95 * (len(waits) - 1))]:.2f} s, "
        f"max {waits[-1]:.2f} s"
    )


def hub_schemes(path: Path) -> dict[str, int]:
    conn = read_only(path)
    try:
        return dict(conn.execute("SELECT scheme, count(*) FROM signature_schemes GROUP BY scheme"))
    finally:
        conn.close()


def verification_rate() -> float:
    """Ed25519 verifications per second of one core's CPU, of a signature base's size."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = b"x" * 300
    signature = key.sign(message)
    count = 3_000
    started = time.process_time()
    for _ in range(count):
        public.verify(signature, message)
    return count / (time.process_time() - started)


# --- the run --------------------------------------------------------------------------------


async def run(args: argparse.Namespace, tmp: Path) -> list[str]:
    started = time.monotonic()
    hub_dir, hub_port, members = prepare(tmp, args.coops, args.one_address)
    print(
        f"set up {args.coops} member nodes and the hub in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    hub_log = tmp / "hub.log"
    hub = start_hub(hub_dir, hub_port, args.coops, hub_log)
    hub_base = f"http://127.0.0.1:{hub_port}"
    network = f"{hub_base}/actors/{NETWORK}"
    counts: Counter[str] = Counter()
    # Idle connections are dropped before uvicorn's own keep-alive (5 s) closes them: a
    # POST on a connection the server is closing fails with nothing known of its fate.
    limits = httpx.Limits(max_connections=64, keepalive_expiry=2)
    client = httpx.AsyncClient(timeout=120, limits=limits)
    deadline = time.monotonic() + float(args.timeout)

    def left() -> float:
        return deadline - time.monotonic()

    # Each member's loops look for work every --idle-poll s at the most: the work a node
    # queues itself wakes them at once, and hundreds of nodes polling every second (as a
    # node of its own does) would take a core between them.
    pollers = tuple(
        replace(poller, idle_seconds=max(poller.idle_seconds, args.idle_poll))
        for poller in default_pollers()
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(client.aclose)
            tasks: list[asyncio.Task[None]] = []
            for member in members:
                member.app = create_app(load_settings(member.data_dir), pollers=pollers)
                member.server = QuietServer(
                    server_config(Counted(member.app, counts), member.port, member.address)
                )
                tasks.append(asyncio.create_task(member.server.serve()))

            async def stop_members() -> None:
                for member in members:
                    assert member.server is not None
                    member.server.should_exit = True
                await asyncio.gather(*tasks, return_exceptions=True)

            stack.push_async_callback(stop_members)

            async def serving() -> bool:
                for task in tasks:
                    if task.done():
                        task.result()
                if hub.poll() is not None:
                    raise SystemExit(f"FAILED: the hub stopped:\n{hub_log.read_text()[-3000:]}")
                if not all(m.server is not None and m.server.started for m in members):
                    return False
                try:
                    answer = await client.get(
                        network, headers={"Accept": "application/activity+json"}
                    )
                except httpx.HTTPError:
                    return False
                return answer.status_code == 200

            took = await wait_until("the nodes and the network answering", serving, left())
            print(f"{args.coops} member nodes and the hub answer after {took:.1f} s", flush=True)

            gate = asyncio.Semaphore(16)

            async def apply(member: Member) -> None:
                async with gate:
                    await joining.join(member.node, network, sector="food", region="Bretagne")

            joined = time.monotonic()
            await asyncio.gather(*(apply(m) for m in members))

            async def everyone_knows_everyone() -> bool:
                for member in members:
                    try:
                        mine, roster = await reading.membership(member.node, network)
                    except NodeError:
                        return False
                    if mine.state is not State.MEMBER or len(roster) != len(members) - 1:
                        return False
                return True

            async def walked() -> bool:
                for member in members:
                    if not await walks_settled(member.node):
                        return False
                return True

            await wait_until(
                "every co-op a member, knowing every other", everyone_knows_everyone, left()
            )
            # Each admission starts walks of the members' offers (none yet): done first,
            # so that the offers come through the network alone.
            await wait_until("the walks of the members' offers", walked, left())
            print(
                f"all {args.coops} co-ops admitted (Join, Accept, Adds) in "
                f"{time.monotonic() - joined:.1f} s",
                flush=True,
            )

            # The nodes' background loops cost CPU with nothing to do (each polls its
            # queues): measured while nothing happens, to be told apart from the copies'.
            quiet_from = time.process_time()
            await asyncio.sleep(args.quiet)
            idle = (time.process_time() - quiet_from) / args.quiet

            total = args.coops * args.offers
            before = await hub_counts(client, hub_base)
            counts.clear()
            hub_cpu_before, own_cpu_before = hub_cpu(hub.pid), time.process_time()
            sent = time.monotonic()
            publishing = asyncio.create_task(publish_all(client, members, args))

            full: set[int] = set()  # counted once full, not again (a count reads the table)

            async def all_listed() -> bool:
                if publishing.done():
                    publishing.result()
                for member in members:
                    if member.index in full:
                        continue
                    if await member.node.db.read(catalogue.count) < total:
                        return False
                    full.add(member.index)
                return True

            poll = args.poll
            while not await all_listed():
                if left() < 0:
                    raise SystemExit(f"FAILED: not every catalogue full after {args.timeout:.0f} s")
                await asyncio.sleep(poll)
            settled = time.monotonic() - sent
            hub_seconds = hub_cpu(hub.pid) - hub_cpu_before
            own_seconds = time.process_time() - own_cpu_before
            published = publishing.result()
            after = await hub_counts(client, hub_base)
            received = Counter(counts)
    finally:
        hub.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            hub.wait(20)
        if hub.poll() is None:
            hub.kill()

    hub_received = Counter({k: after.get(k, 0) - before.get(k, 0) for k in after})
    hub_db = make_url(load_settings(hub_dir).database_url).database
    assert hub_db is not None
    member_inbox = [pair for m in members for pair in spans(m.database, MEMBER_INBOX)]
    taken_in, taken = map(sum, zip(*(rounds(m.database) for m in members), strict=True))
    copies = total * (args.coops - 1)
    working = own_seconds - idle * settled
    rates: SigningRates = signing_rates()
    verifying = verification_rate()
    schemes = hub_schemes(Path(hub_db))

    print(
        f"{args.coops} co-ops x {args.offers} offers = {total:,} offers, each relayed to "
        f"{args.coops - 1} members; load average {load_average()} after"
    )
    print(f"published through the API: {total:,} in {published:.1f} s")
    print(
        f"every member's catalogue holds all {total:,} offers {settled:.1f} s after the first "
        f"was sent ({total * (args.coops - 1) / settled:,.0f} relayed copies stored/s)"
    )
    print(
        "requests per offer published: members received "
        + ", ".join(f"{n / total:.2f} {k}" for k, n in requests(received))
        + "; the hub received "
        + ", ".join(f"{n / total:.2f} {k}" for k, n in requests(hub_received))
    )
    print(
        "inbox POSTs answered: at the members "
        + ", ".join(f"{n:,} x {k}" for k, n in answers(received))
        + "; at the hub "
        + ", ".join(f"{n:,} x {k}" for k, n in answers(hub_received))
    )
    print(
        f"hub CPU: {hub_seconds:.1f} s over the run, {1000 * hub_seconds / total:.2f} ms per "
        f"offer ({1000 * hub_seconds / copies:.3f} ms per Announce delivered); the members' "
        f"process: {own_seconds:.1f} s ({1000 * own_seconds / copies:.3f} ms per copy stored)"
    )
    print(
        f"  of which the {args.coops} nodes' background loops with nothing to do: "
        f"{100 * idle:.1f} % of a core (measured {args.quiet:.0f} s before publishing), "
        f"{idle * settled:.1f} s over the run; the rest, {1000 * working / copies:.3f} ms per "
        f"copy stored; the members' inboxes took the copies in {taken_in:,} rounds "
        f"({taken / max(taken_in, 1):.1f} a round)"
    )
    print(f"the hub signed its deliveries with: {schemes or 'no scheme learnt'}")
    refused = refusals()
    if refused:
        print(f"the members refused, over the whole run (setting up too): {refused}")
    print(f"{rates}; Ed25519 verifications on one core here: {verifying:,.0f}/s")
    print(
        f"  at those rates one Announce delivery costs the hub at least "
        f"{1000 / rates.ed25519:.3f} ms (Ed25519) or {1000 / rates.rsa:.3f} ms (RSA) to sign; "
        f"a member at least {2000 / verifying:.3f} ms to verify (the request's signature "
        f"and the offer's proof)"
    )
    print("where the time goes (received or queued -> done, per item):")
    print(stage("hub inbox (members' Creates)", spans(Path(hub_db), HUB_INBOX)))
    print(stage("hub deliveries (Announces, one per member)", spans(Path(hub_db), HUB_DELIVERIES)))
    print(stage("members' inboxes (Announces)", member_inbox))

    problems = []
    if hub_received.get("inbox POST", 0) < total:
        problems.append(f"the hub received {hub_received.get('inbox POST', 0)} POSTs, not {total}")
    return problems


def refusals() -> dict[str, int]:
    """The inbox POSTs the members (this process's nodes) answered with an error, by the
    error's name, from the nodes' metrics."""
    found: dict[str, int] = {}
    for family in metrics.INBOX_REFUSED.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                found[sample.labels["reason"]] = int(sample.value)
    return found


def requests(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted((k, n) for k, n in counts.items() if n and not k.startswith(ANSWERED))


def answers(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(
        (k.removeprefix(ANSWERED), n) for k, n in counts.items() if n and k.startswith(ANSWERED)
    )


async def hub_counts(client: httpx.AsyncClient, base: str) -> dict[str, int]:
    answer = await client.get(base + STATS_PATH)
    answer.raise_for_status()
    return dict(answer.json())


async def publish_all(
    client: httpx.AsyncClient, members: list[Member], args: argparse.Namespace
) -> float:
    """Every co-op's offers through its API, interleaved across the nodes; returns the
    seconds until the last was answered."""
    started = time.monotonic()
    gate = asyncio.Semaphore(args.concurrency)

    async def one(member: Member, n: int) -> None:
        async with gate:
            response = await client.post(
                f"{member.base}/api/v1/offers",
                json=offer_document(member.index, n),
                headers={"Authorization": f"Bearer {member.token}"},
            )
        if response.status_code != 201:
            raise SystemExit(f"FAILED: co-op {member.index} refused an offer: {response.text}")

    await asyncio.gather(*(one(m, n) for n in range(args.offers) for m in members))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coops", type=int, default=200)
    parser.add_argument("--offers", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds for the whole run")
    parser.add_argument("--concurrency", type=int, default=4, help="offers sent at once")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between counts")
    parser.add_argument(
        "--idle-poll",
        type=float,
        default=30.0,
        help="seconds between a member's polls with nothing to do (a node alone: 1 to 10)",
    )
    parser.add_argument(
        "--quiet", type=float, default=10.0, help="seconds of idle CPU measured before publishing"
    )
    parser.add_argument(
        "--one-address",
        action="store_true",
        help="every member on 127.0.0.1 (a port each) rather than an address of its own",
    )
    parser.add_argument("--keep", type=Path, help="a new directory for the nodes, kept")
    parser.add_argument("--serve-hub", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # The nodes' warnings are shown; their routine information is not.
    logging.basicConfig(level=logging.WARNING)
    if args.serve_hub is not None:
        uvloop.run(serve_hub(args.serve_hub, args.port, args.coops))
        return
    if args.coops < 2 or args.offers < 1:
        parser.error("--coops: at least 2; --offers: at least 1")
    if args.keep is not None:
        # The nodes' directories stay, to be read afterwards (their tables, hub.log).
        args.keep.mkdir(parents=True)
        problems = uvloop.run(run(args, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="coopnode-network-") as tmp:
            problems = uvloop.run(run(args, Path(tmp)))
    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        raise SystemExit(1)
    print("checked: every member holds every offer")


if __name__ == "__main__":
    main()
