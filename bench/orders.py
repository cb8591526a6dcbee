"""1,000 orders from 20 buyer nodes racing for the 100 units of one offer: answers per
second, end to end, and the time from an order placed to its answer at the buyer.

One seller node publishes an offer of ``--units`` units, answered on policy "auto"
(:func:`node.orders.selling.set_policy`: accepted at once while in stock). ``--buyers``
buyer nodes follow the seller, so that the offer is in their catalogues, and share
``--orders`` members between them. Then every member orders one unit through their home
node's API (``POST /api/v1/orders``), all at once, interleaved across the nodes. Each
order goes to the seller as an ``Offer`` signed as the member; the seller's node holds
the unit or refuses, and signs and sends its ``Accept`` or ``Reject`` back.

The nodes are real apps (each with its own database and its own workers running, on
the system clock) in this process, wired by host name as the tests wire them
(tests/support/network.py): every request between nodes goes through the receiving
app's signature check, without a socket. The nodes' Python runs in one interpreter,
so on one core at a time (SQLite's or PostgreSQL's own work may use the other): the
rate is printed beside one core's RSA-2048 and Ed25519 signing rates, as the deliveries
and the key fetches are signed. The time from an order placed to its answer is split
where both sides can tell: until the seller's inbox received it, until the seller
decided, and back to the buyer.

Checked: exactly ``--units`` accepted, every other order refused with "out of stock:
fewer units are left than ordered", none lost (every order placed has its answer at
the buyer, and the seller received each once), the seller's stock 0.

    .venv/bin/python bench/orders.py                           # SQLite, 1,000 orders
    .venv/bin/python bench/orders.py --engine postgresql
    .venv/bin/python bench/orders.py --orders 200 --units 20 --buyers 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

from bench.delivery import SigningRates, load_average, signing_rates  # noqa: E402
from federation import keys  # noqa: E402
from federation.clock import SystemClock  # noqa: E402
from node.app import create_app  # noqa: E402
from node.follows import actions  # noqa: E402
from node.members import store as members  # noqa: E402
from node.offers import store as offers_store  # noqa: E402
from node.orders import selling  # noqa: E402
from node.orders import store as orders_store  # noqa: E402
from node.orders.model import REASONS, Refusal, State  # noqa: E402
from node.runtime import Node  # noqa: E402
from node.services.setup import create_coop, migrate_database  # noqa: E402
from node.settings import Settings  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.tables import inbox_activities  # noqa: E402
from tests.support.network import HostRouter  # noqa: E402

OUT_OF_STOCK = REASONS[Refusal.OUT_OF_STOCK]
POLL = 0.2


@dataclass
class Coop:
    """One node: its app (while it runs), its admin's and its members' tokens."""

    domain: str
    settings: Settings
    admin: str
    tokens: list[str] = field(default_factory=list)
    app: Any = None

    @property
    def node(self) -> Node:
        node = self.app.state.node
        assert isinstance(node, Node)
        return node

    @property
    def base(self) -> str:
        return self.settings.base_url


def make_coop(root: Path, domain: str, database_url: str | None, members_count: int) -> Coop:
    """A node's settings, database and co-op, and ``members_count`` local members, each
    with an API token (written before the node starts: setting up is not measured)."""
    settings = Settings(
        data_dir=root / domain,
        domain=domain,
        name=f"Co-op {domain}",
        database_url=database_url or f"sqlite:///{root / domain / 'coopnode.sqlite3'}",
    )
    settings.data_dir.mkdir(parents=True)
    migrate_database(settings.database_url)
    db = Database(settings.database_url, readers=1)
    clock = SystemClock()
    try:
        admin = create_coop(settings, db, clock)
        now = clock.now()
        pems = [keys.generate_ed25519_private_pem() for _ in range(members_count)]

        def unit(conn: Connection) -> list[str]:
            issued = []
            for n, pem in enumerate(pems):
                member = members.add_local(
                    conn,
                    base_url=settings.base_url,
                    domain=settings.domain,
                    username=f"m{n}",
                    name=f"Member {n}",
                    role="member",
                    college=None,
                    joined_at=now - timedelta(days=30),
                    now=now,
                    ed25519_private_pem=pem,
                    password_hash=None,
                )
                issued.append(members.issue_token(conn, member, name="bench", now=now))
            return issued

        tokens = db.write_sync(unit)
    finally:
        db.close()
    return Coop(domain, settings, admin, tokens)


@contextlib.contextmanager
def databases(engine: str) -> Iterator[Callable[[str], str | None]]:
    """Makes each node's database: None for SQLite (a file in the node's data
    directory), else a database of one throwaway PostgreSQL cluster."""
    if engine == "sqlite":
        yield lambda name: None
        return
    from tests.support.postgres import PostgresCluster

    with PostgresCluster(durable=True, max_connections=400) as cluster:
        yield lambda name: cluster.create_database(name.replace(".", "_").replace("-", "_"))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def wait_until(what: str, check: Callable[[], Any], limit: float) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > limit:
            raise SystemExit(f"FAILED: {what} not done after {limit:.0f} s")
        await asyncio.sleep(POLL)
    return time.monotonic() - started


def offer_document(units: int) -> dict[str, Any]:
    return {
        "title": {"fr": "Miel de lavande", "en": "Lavender honey"},
        "categories": ["honey"],
        "price": {"amount": "8.50", "currency": "EUR"},
        "unit": "piece",
        "quantity": {"available": str(units)},
        "delivery_options": ["pickup"],
        "payment_options": ["bank_transfer"],
    }


@dataclass
class Placed:
    """What the buyers' API answered when the orders were placed."""

    started: float  # time.time() of the first send
    answered: float  # of the last answer to a send
    keys: dict[str, list[str]]  # buyer domain -> the orders' keys
    refused: list[str]  # what the API refused (the first few)
    refused_count: int


async def place_all(
    http: httpx.AsyncClient, buyers: list[Coop], offer_uri: str, count: int
) -> Placed:
    """Every member orders one unit at home, all at once, interleaved across nodes."""
    placed: dict[str, list[str]] = {coop.domain: [] for coop in buyers}
    refused: list[str] = []
    refused_count = 0
    body = {"offer": offer_uri, "quantity": "1", "delivery": "pickup", "payment": "bank_transfer"}

    async def one(coop: Coop, token: str) -> None:
        nonlocal refused_count
        response = await http.post(f"{coop.base}/api/v1/orders", json=body, headers=auth(token))
        if response.status_code == 201:
            placed[coop.domain].append(response.json()["key"])
        else:
            refused_count += 1
            if len(refused) < 5:
                refused.append(f"{coop.domain}: {response.status_code} {response.text}")

    work = [
        (coop, coop.tokens[n])
        for n in range(max(len(c.tokens) for c in buyers))
        for coop in buyers
        if n < len(coop.tokens)
    ][:count]
    started = time.time()
    await asyncio.gather(*(one(coop, token) for coop, token in work))
    return Placed(started, time.time(), placed, refused, refused_count)


async def buyer_orders(coop: Coop) -> list[orders_store.StoredOrder]:
    def read(conn: Connection) -> list[orders_store.StoredOrder]:
        found: list[orders_store.StoredOrder] = []
        before = None
        while True:
            page = orders_store.placed(conn, limit=500, before_id=before)
            found += page
            if len(page) < 500:
                return found
            before = page[-1].id

    return await coop.node.db.read(read)


async def seller_orders(coop: Coop) -> list[orders_store.StoredOrder]:
    def read(conn: Connection) -> list[orders_store.StoredOrder]:
        found: list[orders_store.StoredOrder] = []
        before = None
        while True:
            page = orders_store.received(conn, limit=500, before_id=before)
            found += page
            if len(page) < 500:
                return found
            before = page[-1].id

    return await coop.node.db.read(read)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def race(args: argparse.Namespace, coops: list[Coop]) -> list[str]:
    """Starts the nodes, sets up the offer and the follows, places the orders, waits
    for the answers; prints the figures and returns what failed."""
    clock = SystemClock()
    router = HostRouter()
    http = httpx.AsyncClient(transport=router, follow_redirects=False, timeout=600)
    seller, buyers = coops[0], coops[1:]
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(http.aclose)
        for coop in coops:
            coop.app = create_app(coop.settings, http=http, clock=clock)
            await stack.enter_async_context(coop.app.router.lifespan_context(coop.app))
            router.add(coop.domain, coop.app)

        published = await http.post(
            f"{seller.base}/api/v1/offers",
            json=offer_document(args.units),
            headers=auth(seller.admin),
        )
        if published.status_code != 201:
            raise SystemExit(f"FAILED: the seller refused the offer: {published.text}")
        offer = published.json()
        await selling.set_policy(seller.node, offer["id"], "auto")
        for coop in buyers:
            await actions.follow(coop.node, f"coop@{seller.domain}")

        async def listed() -> bool:
            for coop in buyers:
                shown = await coop.node.db.read(
                    lambda conn: offers_store.shown_by_uri(conn, offer["uri"])
                )
                if shown is None:
                    return False
            return True

        listing = await wait_until("every buyer's catalogue holding the offer", listed, 120)
        print(f"every buyer lists the offer {listing:.1f} s after the follows", flush=True)

        placing = asyncio.create_task(place_all(http, buyers, offer["uri"], args.orders))
        sent = time.monotonic()

        async def answered() -> bool:
            if not placing.done():
                return False
            waiting = 0
            for coop in buyers:
                waiting += sum(o.state is State.PENDING for o in await buyer_orders(coop))
            return waiting == 0

        try:
            await wait_until("every order answered at its buyer", answered, args.limit)
        finally:
            if not placing.done():
                placing.cancel()
        settled = time.monotonic() - sent
        placed = placing.result()

        shown = await seller.node.db.read(
            lambda conn: offers_store.shown_by_uri(conn, offer["uri"])
        )
        assert shown is not None
        stock, _ = await seller.node.db.read(lambda conn: orders_store.stock_of(conn, shown.id))
        received = await seller_orders(seller)  # its only offer's
        arrived = dict(
            await seller.node.db.read(
                lambda conn: conn.execute(
                    select(inbox_activities.c.activity_id, inbox_activities.c.received_at).where(
                        inbox_activities.c.type == "Offer"
                    )
                ).all()
            )
        )
        at_buyers = {coop.domain: await buyer_orders(coop) for coop in buyers}

    problems: list[str] = []
    every = [o for found in at_buyers.values() for o in found]
    states = Counter(o.state for o in every)
    placed_count = sum(len(k) for k in placed.keys.values())
    for line in placed.refused:
        problems.append(f"the buyer's node refused an order: {line}")
    if placed_count + placed.refused_count != args.orders:
        problems.append(f"{placed_count + placed.refused_count} of {args.orders} orders sent")
    for domain, found in at_buyers.items():
        missing = set(placed.keys[domain]) - {o.key for o in found}
        if missing:
            problems.append(f"{domain}: {len(missing)} orders placed but not stored")
    refusals = Counter(o.answer for o in every if o.state is State.REJECTED)
    wanted_refused = args.orders - args.units
    if states[State.ACCEPTED] != args.units:
        problems.append(f"{states[State.ACCEPTED]} accepted, not {args.units}")
    if refusals[OUT_OF_STOCK] != wanted_refused or states[State.REJECTED] != wanted_refused:
        problems.append(f"refused: {dict(refusals)}, not {wanted_refused} out of stock")
    if states[State.PENDING]:
        problems.append(f"{states[State.PENDING]} orders lost: never answered")
    seller_states = Counter(o.state for o in received)
    if len(received) != args.orders or len({o.offer_activity for o in received}) != len(received):
        problems.append(f"the seller received {len(received)} orders, not {args.orders} once each")
    if seller_states[State.ACCEPTED] != args.units:
        problems.append(f"the seller accepted {seller_states[State.ACCEPTED]}")
    if stock != Decimal(0):
        problems.append(f"the seller's stock is {stock}, not 0")

    # From each order's creation at its buyer to its answer recorded there (the buyer's
    # clock is this machine's, as the orders' times are).
    latencies = [(o.updated_at - o.created_at).total_seconds() for o in every]
    last_answer = max(o.updated_at for o in every)
    first_sent = datetime.fromtimestamp(placed.started, UTC)
    seconds = (last_answer - first_sent).total_seconds()
    rate = len(every) / seconds
    # Where the time goes: the order's way to the seller's decision (the buyer's outbox,
    # the seller's inbox and worker), then the answer's way back (the seller's outbox,
    # the buyer's inbox and worker); both sides name the order by its Offer's id.
    decided = {o.offer_activity: o.updated_at for o in received}
    there = [
        (decided[o.offer_activity] - o.created_at).total_seconds()
        for o in every
        if o.offer_activity in decided
    ]
    sending = [
        (arrived[o.offer_activity] - o.created_at).total_seconds()
        for o in every
        if o.offer_activity in arrived
    ]
    queued = [(decided[key] - arrived[key]).total_seconds() for key in decided if key in arrived]
    back = [
        (o.updated_at - decided[o.offer_activity]).total_seconds()
        for o in every
        if o.offer_activity in decided
    ]
    rates: SigningRates = signing_rates()
    print(
        f"{args.engine}: {args.orders} orders of 1 unit from {args.buyers} buyer nodes for "
        f"{args.units} units; load average {load_average()} after"
    )
    print(
        f"answers at the buyers: {states[State.ACCEPTED]} accepted, "
        f"{states[State.REJECTED]} refused ({dict(refusals)}), "
        f"{states[State.PENDING]} waiting; seller's stock {stock}; the seller received "
        f"{len(received)} ({', '.join(f'{n} {s.value}' for s, n in seller_states.items())})"
    )
    print(
        f"placed: the buyers' API answered all {placed_count} in "
        f"{placed.answered - placed.started:.2f} s"
    )
    print(
        f"{rate:7.1f} orders answered/s end to end ({len(every)} in {seconds:.2f} s, first "
        f"send to last answer recorded; seen settled after {settled:.1f} s)"
    )
    print(
        f"order placed -> answer recorded at the buyer: p50 {percentile(latencies, 0.5):.2f} s, "
        f"p95 {percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s"
    )
    if there:
        print(
            f"  of which placed -> decided at the seller: p50 {percentile(there, 0.5):.2f} s, "
            f"p95 {percentile(there, 0.95):.2f} s; decided -> answer recorded at the buyer: "
            f"p50 {percentile(back, 0.5):.2f} s, p95 {percentile(back, 0.95):.2f} s"
        )
    if len(decided) > 1:
        span = (max(decided.values()) - min(decided.values())).total_seconds()
        print(
            f"  the seller decided {len(decided)} orders in {span:.2f} s, first to last "
            f"({len(decided) / span:.1f}/s: its inbox worker takes them one at a time)"
        )
    if sending and queued:
        print(
            f"  and placed -> received by the seller's inbox: p50 {percentile(sending, 0.5):.2f} s,"
            f" p95 {percentile(sending, 0.95):.2f} s; received -> decided: "
            f"p50 {percentile(queued, 0.5):.2f} s, p95 {percentile(queued, 0.95):.2f} s"
        )
    print(
        f"{rates}; answers/s = {rate / rates.rsa:.3f} x one core's RSA rate, "
        f"{rate / rates.ed25519:.4f} x its Ed25519 rate"
    )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--orders", type=int, default=1_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--buyers", type=int, default=20)
    parser.add_argument("--limit", type=float, default=600, help="seconds to wait for answers")
    args = parser.parse_args()
    if args.buyers < 1 or args.orders < args.buyers:
        parser.error("--orders: at least one per buyer node")
    if not 0 < args.units <= args.orders:
        parser.error("--units: between 1 and --orders")
    # The nodes' warnings are shown; their routine information is not.
    logging.basicConfig(level=logging.WARNING)

    shares = [
        args.orders // args.buyers + (1 if i < args.orders % args.buyers else 0)
        for i in range(args.buyers)
    ]
    with (
        tempfile.TemporaryDirectory(prefix="coopnode-orders-") as tmp,
        databases(args.engine) as new_database,
    ):
        started = time.monotonic()
        domains = ["seller.test"] + [f"buyer{i}.test" for i in range(args.buyers)]
        coops = [
            make_coop(Path(tmp), domain, new_database(domain), count)
            for domain, count in zip(domains, [0, *shares], strict=True)
        ]
        print(
            f"set up {len(coops)} nodes and {args.orders} members in "
            f"{time.monotonic() - started:.1f} s",
            flush=True,
        )
        problems = asyncio.run(race(args, coops))
    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        raise SystemExit(1)
    print("checked: all answered, exactly the stock accepted, the rest out of stock")


if __name__ == "__main__":
    main()
