"""A shared proposal across co-op nodes in open mode: ballots per second ingested by the
host, and the time from the close until every node holds the outcome.

``--nodes`` real ``coopnode serve`` processes on loopback (SQLite each, default settings)
share ``--members`` local members between them, each member with an API token; node 0
hosts. The host opens a shared proposal whose electorate is every other co-op, opening
now and closing ``--window-minutes`` later (five at least). Once every node lists it and
the host has read every roster, every member votes at home through the API (60 % For,
30 % Against, 10 % Abstain, over keep-alive connections, ``--concurrency`` requests in
flight): the host's members are counted where they vote, the others' home nodes sign
and send each ballot to the host. Measured:

- votes/s: ballots accepted by the members' home nodes (201), first send to last answer;
- ingest: from the first vote sent until the host holds every ballot as valid, in
  ballots/s (the host's database is read, read-only, every half second);
- from ``closes_at`` until the host, then every node, holds the outcome; the outcome's
  counts are checked against the votes cast.

    .venv/bin/python bench/shared_proposal.py                  # 20 nodes, 50,000 members
    .venv/bin/python bench/shared_proposal.py --nodes 3 --members 300 --window-minutes 5

Setting up (the nodes' databases, members and tokens, written before each node starts)
is timed and printed, but is not a figure of the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy.engine import Connection, make_url  # noqa: E402

from federation import keys  # noqa: E402
from federation.clock import SystemClock  # noqa: E402
from node.members import store as members  # noqa: E402
from node.services.setup import create_coop, migrate_database  # noqa: E402
from node.settings import Settings, load_settings, write_config  # noqa: E402
from node.storage.database import Database  # noqa: E402
from tests.support.processes import ServeProcess, free_port, start_serve  # noqa: E402

OPTIONS = ("For", "Against", "Abstain")
POLL = 0.5


@dataclass
class Coop:
    """One node: its process, its admin token and its members' tokens."""

    index: int
    port: int
    data_dir: Path
    admin: str
    tokens: list[str]
    process: ServeProcess | None = None
    key: str = ""  # the shared proposal's key in this node's API
    choices: Counter[str] = field(default_factory=Counter)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def actor(self) -> str:
        return f"{self.base}/actors/coop"

    @cached_property
    def database(self) -> Path:
        path = make_url(load_settings(self.data_dir).database_url).database
        assert path is not None
        return Path(path)


def choice_of(n: int) -> str:
    """The n-th member's vote, deterministic: 60 % For, 30 % Against, 10 % Abstain."""
    rest = n % 10
    return "For" if rest < 6 else "Against" if rest < 9 else "Abstain"


def make_node(
    index: int, port: int, data_dir: str, count: int, host_port: int
) -> tuple[str, list[str]]:
    """A local node's settings, database and co-op, and ``count`` members, each with an
    API token, who joined a month ago; returns the admin token and the members' tokens.
    Runs in a worker process (key generation and the inserts are CPU-bound)."""
    settings = Settings(
        data_dir=Path(data_dir),
        domain=f"127.0.0.1:{port}",
        name=f"Co-op {index}",
        local=True,
        # Every other co-op takes part in the host's shared proposals without asking.
        accept_shared_from=(f"http://127.0.0.1:{host_port}/actors/coop",) if index else (),
    )
    write_config(settings)
    settings = load_settings(Path(data_dir))
    migrate_database(settings.database_url)
    db = Database(settings.database_url, readers=1)
    clock = SystemClock()
    try:
        admin = create_coop(settings, db, clock)
        now = clock.now()
        joined = now - timedelta(days=30)
        pems = [keys.generate_ed25519_private_pem() for _ in range(count)]

        def unit(conn: Connection) -> list[str]:
            issued = []
            for n, pem in enumerate(pems):
                member = members.add_local(
                    conn,
                    base_url=settings.base_url,
                    domain=settings.domain,
                    username=f"m{n}",
                    name=f"Member {n} of co-op {index}",
                    role="member",
                    college=None,
                    joined_at=joined,
                    now=now,
                    ed25519_private_pem=pem,
                    password_hash=None,
                )
                issued.append(members.issue_token(conn, member, name="bench", now=now))
            return issued

        return admin, db.write_sync(unit)
    finally:
        db.close()


def listening_ports(count: int) -> list[int]:
    """Free ports below the ephemeral range, so that no outgoing connection (the nodes'
    own, or this process's) takes one before its node listens on it."""
    low = 32768
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if ranges.exists():
        low = int(ranges.read_text().split()[0])
    found: list[int] = []
    first = random.randrange(max(low - 12_000, 1024), low - 2_000)
    for port in range(first, low):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    return [free_port() for _ in range(count - len(found))] + found


def prepare(tmp: Path, nodes: int, total: int) -> list[Coop]:
    """Every node's data directory, co-op and members, two nodes at a time."""
    shares = [total // nodes + (1 if i < total % nodes else 0) for i in range(nodes)]
    ports = listening_ports(nodes)
    dirs = [tmp / f"node{i}" for i in range(nodes)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        made = list(
            pool.map(
                make_node,
                range(nodes),
                ports,
                [str(d) for d in dirs],
                shares,
                [ports[0]] * nodes,
                chunksize=1,
            )
        )
    return [Coop(i, ports[i], dirs[i], admin, tokens) for i, (admin, tokens) in enumerate(made)]


def start(coops: list[Coop]) -> None:
    for coop in coops:
        coop.process = start_serve(coop.data_dir, coop.port)
    for coop in coops:
        assert coop.process is not None
        coop.process.wait_ready(timeout=60)
    # A co-op takes part only in the shared proposals of co-ops it follows.
    coopnode = str(Path(sys.executable).parent / "coopnode")
    host = f"http://127.0.0.1:{coops[0].port}/actors/coop"
    for coop in coops[1:]:
        subprocess.run(
            [coopnode, "follow", host, "--data-dir", str(coop.data_dir), "--wait", "60"],
            check=True,
            capture_output=True,
        )


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def count_valid(path: Path, key: str) -> int:
    with read_only(path) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ballots JOIN proposals ON proposals.id = ballots.proposal_id"
            " WHERE proposals.key = ? AND ballots.state = 'valid'",
            (key,),
        ).fetchone()
    conn.close()
    return int(row[0])


def has_outcome(coop: Coop, uri: str, host: bool) -> bool:
    """Whether the node holds the outcome: in its proposals table at the host, in the
    Question it keeps (remote_proposals) elsewhere."""
    if host:
        query = "SELECT outcome IS NOT NULL FROM proposals WHERE uri = ?"
    else:
        query = (
            "SELECT state = 'closed' AND json_extract(document, '$.outcome') IS NOT NULL"
            " FROM remote_proposals WHERE uri = ?"
        )
    with read_only(coop.database) as conn:
        row = conn.execute(query, (uri,)).fetchone()
    conn.close()
    return bool(row and row[0])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until(what: str, check: Any, limit: float, every: float = 0.2) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            raise SystemExit(f"FAILED: {what} not done after {limit:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def open_proposal(host: Coop, others: list[Coop], window: int) -> dict[str, Any]:
    closes = datetime.now(UTC) + timedelta(minutes=window, seconds=5)
    body = {
        "title": "Join the regional mobility fund",
        "text": "Each co-op pays 1 % of its turnover into the fund for three years.",
        "options": list(OPTIONS),
        "rule": "majority",
        "quorum": "10%",
        "closes_at": closes.isoformat(),
        "counting_mode": "open",
        "electorate": [coop.actor for coop in others],
    }
    response = httpx.post(
        f"{host.base}/api/v1/proposals", json=body, headers=auth(host.admin), timeout=120
    )
    if response.status_code != 201:
        raise SystemExit(f"FAILED: the host refused the proposal: {response.text}")
    created: dict[str, Any] = response.json()
    return created


def shared_entry(coop: Coop, uri: str) -> dict[str, Any] | None:
    response = httpx.get(f"{coop.base}/api/v1/proposals", headers=auth(coop.admin), timeout=30)
    response.raise_for_status()
    for entry in response.json()["shared"]:
        if entry["uri"] == uri:
            found: dict[str, Any] = entry
            return found
    return None


def host_view(host: Coop, key: str) -> dict[str, Any]:
    response = httpx.get(
        f"{host.base}/api/v1/proposals/{key}", headers=auth(host.admin), timeout=30
    )
    response.raise_for_status()
    shown: dict[str, Any] = response.json()
    return shown


async def vote_all(coops: list[Coop], concurrency: int) -> tuple[float, float, int, list[str]]:
    """Every member votes at home; returns when the first vote was sent, when the last
    answer came, how many were accepted, and the first few refusals."""
    semaphore = asyncio.Semaphore(concurrency)
    refused: list[str] = []
    accepted = 0
    # Idle connections are dropped before the server's keep-alive timeout (5 s) closes
    # them, so that no request is sent on a connection the server is closing.
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    clients = {
        coop.index: httpx.AsyncClient(base_url=coop.base, limits=limits, timeout=120)
        for coop in coops
    }

    async def one(coop: Coop, n: int, token: str) -> None:
        nonlocal accepted
        choice = choice_of(n)
        async with semaphore:
            try:
                response = await clients[coop.index].post(
                    f"/api/v1/proposals/{coop.key}/votes",
                    json={"choices": [choice]},
                    headers=auth(token),
                )
            except httpx.HTTPError as exc:
                if len(refused) < 5:
                    refused.append(f"node {coop.index} member m{n}: {exc!r}")
                return
        if response.status_code == 201:
            accepted += 1
            coop.choices[choice] += 1
        elif len(refused) < 5:
            refused.append(f"node {coop.index} member m{n}: {response.status_code} {response.text}")

    # Interleaved across the nodes, as members of many co-ops vote at once.
    work = [
        (coop, n, coop.tokens[n])
        for n in range(max(len(c.tokens) for c in coops))
        for coop in coops
        if n < len(coop.tokens)
    ]
    started = time.monotonic()
    try:
        await asyncio.gather(*(one(coop, n, token) for coop, n, token in work))
    finally:
        for client in clients.values():
            await client.aclose()
    return started, time.monotonic(), accepted, refused


async def vote_and_ingest(
    coops: list[Coop], concurrency: int, total: int, limit: float
) -> tuple[float, float, int, list[str]]:
    """Votes, while the host's valid ballots are counted every half second; returns the
    voting time (first send to last answer), the ingest time (first send until the host
    holds every accepted ballot as valid), the accepted count and the refusals."""
    host = coops[0]
    sent = time.monotonic()
    voting = asyncio.create_task(vote_all(coops, concurrency))
    held = 0
    shown = sent
    while True:
        await asyncio.sleep(POLL)
        held = await asyncio.to_thread(count_valid, host.database, host.key)
        if time.monotonic() - shown >= 10:
            shown = time.monotonic()
            print(f"  {shown - sent:5.0f} s: the host holds {held} ballots", flush=True)
        if voting.done() and held >= voting.result()[2]:
            break
        if time.monotonic() - sent > limit:
            if not voting.done():
                voting.cancel()
            raise SystemExit(f"FAILED: the host holds {held} of {total} ballots after {limit} s")
    started, answered, accepted, refused = voting.result()
    ingested = time.monotonic() - started
    return answered - started, ingested, accepted, refused


def check_outcome(
    coops: list[Coop], outcome: dict[str, Any], cast: Counter[str], total: int
) -> list[str]:
    problems = []
    counts = {name: int(outcome["counts"].get(name, 0)) for name in OPTIONS}
    if counts != {name: cast[name] for name in OPTIONS}:
        problems.append(f"counts {counts} but cast {dict(cast)}")
    if outcome.get("eligible") != total:
        problems.append(f"eligible {outcome.get('eligible')} but {total} members")
    voted = {p["coop"]: p for p in outcome.get("participation", [])}
    for coop in coops:
        entry = voted.get(coop.actor)
        want = sum(coop.choices.values())
        if entry is None or entry.get("voted") != want or entry.get("eligible") != len(coop.tokens):
            problems.append(f"node {coop.index}: participation {entry}, {want} voted")
    return problems


def print_errors(coops: list[Coop], nodes: int = 2, lines: int = 60) -> None:
    """The last error (with its traceback) of the first nodes that logged one."""
    shown = 0
    for coop in coops:
        if coop.process is None or shown == nodes:
            continue
        logged = coop.process.read_output().splitlines()
        errors = [n for n, line in enumerate(logged) if line.startswith("ERROR")]
        if errors:
            shown += 1
            print(f"--- node {coop.index} ({coop.base}), {len(errors)} errors, the last:")
            print("\n".join(logged[errors[-1] : errors[-1] + lines]))


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="coopnode-shared-") as tmp:
        started = time.monotonic()
        coops: list[Coop] = []
        try:
            coops = prepare(Path(tmp), args.nodes, args.members)
            start(coops)
            setup_seconds = time.monotonic() - started
            print(
                f"set up {args.nodes} nodes with {args.members} members in {setup_seconds:.1f} s",
                flush=True,
            )
            measure(coops, args, setup_seconds)
        except BaseException:
            print_errors(coops)
            raise
        finally:
            for coop in coops:
                if coop.process is not None:
                    coop.process.stop()


def measure(coops: list[Coop], args: argparse.Namespace, setup_seconds: float) -> None:
    host, others = coops[0], coops[1:]
    proposed = time.monotonic()
    created = open_proposal(host, others, args.window_minutes)
    uri, host.key = created["uri"], created["id"]
    closes_at = datetime.fromisoformat(created["proposal"]["closes_at"].replace("Z", "+00:00"))
    print(f"proposal {uri}, closes at {closes_at:%H:%M:%S}", flush=True)

    def listed() -> bool:
        for coop in others:
            if not coop.key:
                entry = shared_entry(coop, uri)
                if entry is None:
                    return False
                coop.key = entry["id"]
        return True

    wait_until("every node listing the proposal", listed, 120, every=0.5)
    listing = time.monotonic() - proposed

    def opened() -> bool:
        shown = host_view(host, host.key)
        return bool(shown["state"] == "open" and shown["eligible"] == args.members)

    wait_until("the host opening with every roster read", opened, 300, every=0.5)
    opening = time.monotonic() - proposed
    print(
        f"after the proposal: listed everywhere in {listing:.1f} s, "
        f"open with every roster read in {opening:.1f} s"
    )

    window_left = (closes_at - datetime.now(UTC)).total_seconds()
    voting, ingest, accepted, refused = asyncio.run(
        vote_and_ingest(coops, args.concurrency, args.members, max(window_left - 5, 30))
    )
    for line in refused:
        print(f"refused: {line}")
    if refused:
        print_errors(coops)
    if accepted != args.members:
        print(f"FAILED: {accepted} of {args.members} votes accepted")
    print(
        f"{accepted} votes answered in {voting:.1f} s; the host held them all "
        f"{ingest:.1f} s after the first was sent",
        flush=True,
    )
    if datetime.now(UTC) >= closes_at:
        raise SystemExit("FAILED: the vote closed before every ballot reached the host")

    wait = (closes_at - datetime.now(UTC)).total_seconds()
    print(f"waiting {wait:.0f} s for the close", flush=True)
    time.sleep(max(wait, 0))
    # From closes_at (the clocks are this machine's) until each node holds the outcome.
    close_mono = time.monotonic() - (datetime.now(UTC) - closes_at).total_seconds()
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 600
    while len(seen) < len(coops):
        for coop in coops:
            if coop.index not in seen and has_outcome(coop, uri, coop is host):
                seen[coop.index] = time.monotonic() - close_mono
        if time.monotonic() > deadline:
            missing = sorted(set(range(len(coops))) - set(seen))
            raise SystemExit(f"FAILED: no outcome at nodes {missing} 600 s after the close")
        time.sleep(0.05)

    outcome = host_view(host, host.key)["outcome"]
    cast: Counter[str] = Counter()
    for coop in coops:
        cast.update(coop.choices)
    problems = check_outcome(coops, outcome, cast, args.members)
    for coop in others:
        entry = shared_entry(coop, uri)
        if entry is None or entry["outcome"] != outcome:
            problems.append(f"node {coop.index} holds another outcome: {entry}")
    print(f"outcome: {outcome['result']}: {outcome['counts']} ({outcome.get('reason', '')})")
    ports = {coop.actor: coop.index for coop in coops}
    shares = [
        f"{ports.get(p['coop'], p['coop'])}: {p.get('voted')}/{p.get('eligible')}"
        + ("" if p["state"] in ("host", "listed") else f" {p['state']}")
        for p in outcome.get("participation", [])
    ]
    print(textwrap.fill("voted/eligible by node: " + ", ".join(shares), subsequent_indent="  "))
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        raise SystemExit(1)

    last = max(seen, key=lambda i: seen[i])
    print()
    print(f"nodes                          {len(coops)}")
    print(f"members                        {args.members}")
    print(f"setup                          {setup_seconds:8.1f} s")
    print(f"votes at home nodes            {accepted / voting:8.0f} votes/s")
    print(f"ballots ingested at the host   {accepted / ingest:8.0f} ballots/s")
    print(f"close to outcome, host         {seen[0]:8.2f} s")
    print(f"close to outcome, every node   {seen[last]:8.2f} s (node {last})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--window-minutes", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if args.nodes < 2:
        parser.error("--nodes: a shared proposal needs at least two co-ops")
    if args.members < args.nodes:
        parser.error("--members: at least one per node")
    if args.window_minutes < 5:
        parser.error("--window-minutes: a vote stays open at least five minutes")
    run(args)


if __name__ == "__main__":
    main()
