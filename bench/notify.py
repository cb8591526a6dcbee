"""A proposal opening in a co-op of 10,000 members: time until every email is handed to
the SMTP server, and the node's answer times meanwhile.

    .venv/bin/python bench/notify.py                        # 10,000 members, SQLite
    .venv/bin/python bench/notify.py --members 2000 --backend postgres
    .venv/bin/python bench/notify.py --profile /tmp/notify.prof   # py-spy on the node

A local node (``coopnode serve`` on 127.0.0.1, a real process) has ``--members``
confirmed local voting members, each with a Person actor and its Ed25519 key as
``POST /api/v1/members`` makes them, and a verified address (half in French, half in
English), all written straight into its database. An SMTP server (aiosmtpd, in a
process of its own, on 127.0.0.1) notes the moment each message arrives. The admin
opens a proposal through the API; the node's mail worker finds it, queues one message
per member in one transaction and hands them over in batches of 100, one connection a
batch. Meanwhile a probe asks the node for ``/`` and ``/api/v1/proposals`` every
50 ms, as before the opening (the idle baseline).

The mail worker looks for new events every 5 s unless something wakes it, so the wait
before it takes the proposal up (printed) lies anywhere between 0 and 5 s; with the
node just started, ``--idle 10`` puts the opening near the start of one of its rounds
(close to the shortest wait), ``--idle 12.5`` near the middle.

Printed: the time from the ``POST`` to the first and to the last message received,
the messages per second, the node's CPU per message (its ``/proc`` counters, every
thread), the probe's answer times idle and while sending, and the node's own record
of each batch (claimed, sent, recorded: the outbox's ``next_attempt_at`` and
``sent_at``), which says where the time between the messages goes. Beside them, the
machine's own limits: how many messages a second the same SMTP server takes from a
plain aiosmtplib client sending pre-built messages over as many connections at once
as the worker uses (``node.mail.smtp.CONNECTIONS``; the ceiling), what that client
spends per message, and what building one message costs in one process as the worker
builds it (the templates rendered once a batch, the links and bytes per recipient).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from bench.inbox import database_env, process_cpu_seconds  # noqa: E402
from federation import keys  # noqa: E402
from federation.clock import SystemClock  # noqa: E402
from node.mail import events, store, tokens, worker  # noqa: E402
from node.mail.kinds import Kind  # noqa: E402
from node.services.setup import create_coop, migrate_database  # noqa: E402
from node.settings import Settings, load_settings, write_config  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.tables import (  # noqa: E402
    actor_keys,
    actors,
    mail_events,
    mail_outbox,
    mail_recipients,
    members,
    proposals,
)
from tests.support.processes import free_port, start_serve, stop_process  # noqa: E402

SEED_CHUNK = 2000
PROBE_EVERY = 0.05
PROBE_PATHS = ("/", "/api/v1/proposals")
MAIL_DOMAIN = "members.example"


# --- the SMTP server, in a process of its own ------------------------------------------


def serve_smtp(port: int) -> None:
    """Accept every message on 127.0.0.1:``port``, keep nothing, and print the moment
    (``time.monotonic()``, the same clock in every process) each one arrived, in lines
    written every 20 ms; ``ready`` first."""
    import logging

    from aiosmtpd.smtp import SMTP

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    arrived: list[float] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            arrived.append(time.monotonic())
            return "250 Message accepted"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Handler()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="smtp.bench.test", ident="bench"), "127.0.0.1", port
        )
        print("ready", flush=True)
        async with server:
            while True:
                await asyncio.sleep(0.02)
                if arrived:
                    lines = "".join(f"{t:.6f}\n" for t in arrived)
                    arrived.clear()
                    sys.stdout.write(lines)
                    sys.stdout.flush()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop is a dependency of the node
        asyncio.run(main())


@dataclass
class SmtpServer:
    port: int
    process: subprocess.Popen[str]
    arrivals: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls) -> SmtpServer:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-smtp", str(port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            stop_process(process)
            raise RuntimeError("the SMTP server did not start")
        server = cls(port, process)
        threading.Thread(target=server._read, daemon=True).start()
        return server

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.lock:
                self.arrivals.append(float(line))

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def since(self, start: int) -> list[float]:
        with self.lock:
            return self.arrivals[start:]

    def stop(self) -> None:
        stop_process(self.process)


# --- the node ---------------------------------------------------------------------------


def make_node(data_dir: Path, port: int) -> tuple[Settings, str]:
    """A local node at 127.0.0.1:``port`` (what a first ``coopnode serve`` makes): its
    settings, database and co-op; returns its settings and the admin's API token."""
    write_config(
        Settings(data_dir=data_dir, domain=f"127.0.0.1:{port}", name="Bench co-op", local=True)
    )
    settings = load_settings(data_dir)
    migrate_database(settings.database_url)
    db = Database(settings.database_url, readers=1)
    try:
        token = create_coop(settings, db, SystemClock())
    finally:
        db.close()
    return settings, token


def seed_members(settings: Settings, count: int) -> float:
    """``count`` confirmed local members (role member, joined a month ago), each with a
    Person actor, its Ed25519 key and a verified address, half fr and half en, written
    in chunks; returns the seconds it took."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    joined = now - timedelta(days=30)
    db = Database(settings.database_url, readers=1)
    try:
        for first in range(0, count, SEED_CHUNK):
            numbers = range(first, min(first + SEED_CHUNK, count))
            pems = {f"m{i}": keys.generate_ed25519_private_pem() for i in numbers}
            secrets = [tokens.new_secret() for _ in numbers]

            def chunk(
                conn: Any,
                numbers: range = numbers,
                pems: dict[str, bytes] = pems,
                secrets: list[str] = secrets,
            ) -> None:
                names = list(pems)
                conn.execute(
                    insert(actors),
                    [
                        {
                            "username": name,
                            "type": "Person",
                            "name": f"Member {name[1:]}",
                            "summary": "",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for name in names
                    ],
                )
                ids = dict(
                    conn.execute(
                        select(actors.c.username, actors.c.id).where(actors.c.username.in_(names))
                    ).all()
                )
                conn.execute(
                    insert(actor_keys),
                    [
                        {
                            "actor_id": ids[name],
                            "kind": "ed25519",
                            "private_pem": pem,
                            "created_at": now,
                        }
                        for name, pem in pems.items()
                    ],
                )
                uris = {name: f"{settings.base_url}/actors/{name}" for name in names}
                conn.execute(
                    insert(members),
                    [
                        {
                            "actor_id": ids[name],
                            "actor_uri": uris[name],
                            "handle": f"{name}@{settings.domain}",
                            "local": 1,
                            "role": "member",
                            "college": None,
                            "joined_at": joined,
                            "left_at": None,
                            "state": "confirmed",
                            "password_hash": None,
                            "created_at": now,
                        }
                        for name in names
                    ],
                )
                member_ids = dict(
                    conn.execute(
                        select(members.c.actor_uri, members.c.id).where(
                            members.c.actor_uri.in_(list(uris.values()))
                        )
                    ).all()
                )
                conn.execute(
                    insert(mail_recipients),
                    [
                        {
                            "member_id": member_ids[uris[f"m{i}"]],
                            "address": f"m{i}@{MAIL_DOMAIN}",
                            "language": "fr" if i % 2 else "en",
                            "verified_at": now - timedelta(days=1),
                            "verify_hash": None,
                            "verify_expires": None,
                            "secret": secret,
                            "digest_sent_at": None,
                            "created_at": now - timedelta(days=1),
                            "updated_at": now - timedelta(days=1),
                        }
                        for i, secret in zip(numbers, secrets, strict=True)
                    ],
                )

            db.write_sync(chunk)
    finally:
        db.close()
    return time.perf_counter() - started


def proposal_body() -> dict[str, Any]:
    return {
        "title": "Adopt the 2027 delivery tariff",
        "text": "The **new** tariff, from March on.",
        "options": ["For", "Against", "Abstain"],
        "rule": "qualified",
        "threshold": "2/3",
        "quorum": "25%",
        "closes_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
    }


# --- the probe --------------------------------------------------------------------------


@dataclass
class Probe:
    """Asks the node for a page every 50 ms from a thread: (start, seconds, path, status)."""

    base: str
    token: str
    answers: list[tuple[float, float, str, int]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept-Language": "fr"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as client:
            n = 0
            next_at = time.monotonic()
            while not self.stopping.is_set():
                path = PROBE_PATHS[n % len(PROBE_PATHS)]
                n += 1
                started = time.monotonic()
                try:
                    status = client.get(path).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((started, time.monotonic() - started, path, status))
                next_at = max(next_at + PROBE_EVERY, time.monotonic())
                self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(35)

    def between(self, start: float, end: float) -> list[tuple[float, float, str, int]]:
        return [a for a in list(self.answers) if start <= a[0] < end]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def answer_line(label: str, answers: list[tuple[float, float, str, int]]) -> str:
    if not answers:
        return f"  {label:<22} (no answer)"
    ms = [a[1] * 1000 for a in answers]
    bad = sum(1 for a in answers if a[3] != 200)
    tail = f"  ({bad} not 200)" if bad else ""
    return (
        f"  {label:<22} {len(ms):5d} {quantile(ms, 0.5):8.1f} {quantile(ms, 0.95):8.1f} "
        f"{max(ms):8.1f}{tail}"
    )


# --- the machine's own limits -----------------------------------------------------------


def sample_outgoing(settings: Settings, count: int) -> list[store.Outgoing]:
    """What the worker claims for this proposal's messages, ``count`` of them."""
    closes = datetime.now(UTC) + timedelta(days=7)
    params = events._proposal(  # the worker's own params for a proposal that opened
        "Adopt the 2027 delivery tariff",
        closes,
        settings.name,
        settings.name,
        f"{settings.base_url}/proposals/0123456789abcdef",
        None,
    )
    now = datetime.now(UTC)
    return [
        store.Outgoing(
            id=i,
            member_id=i + 1,
            address=f"m{i}@{MAIL_DOMAIN}",
            kind=Kind.PROPOSAL_OPENED,
            language="fr" if i % 2 else "en",
            params=params,
            message_id=f"<bench.{i}@127.0.0.1>",
            attempts=1,
            created_at=now,
            current_address=f"m{i}@{MAIL_DOMAIN}",
            secret=tokens.new_secret(),
            verified=True,
        )
        for i in range(count)
    ]


def node_connections() -> int:
    from node.mail import smtp as node_smtp

    return node_smtp.CONNECTIONS


def build_cost(settings: Settings, count: int) -> tuple[float, float, list[bytes]]:
    """Seconds per message to build it as the worker does (worker.build: the rendering
    shared by a batch of 100, the bytes made for each recipient), best of three; the
    second figure (turning an ``EmailMessage`` into bytes) is 0 since the worker makes
    the bytes itself; and the bytes."""
    node = SimpleNamespace(settings=settings)
    outgoing = sample_outgoing(settings, count)
    worker.build(node, outgoing[0], {})  # type: ignore[arg-type]  # Jinja loads once
    best_build = float("inf")
    raw: list[bytes] = []
    clock = time.process_time
    for _ in range(3):
        raw, building = [], 0.0
        rendered: dict[Any, Any] = {}
        for index, mail in enumerate(outgoing):
            if index % worker.BATCH == 0:
                rendered = {}  # one batch's renderings, as the worker keeps them
            started = clock()
            envelope = worker.build(node, mail, rendered)  # type: ignore[arg-type]
            building += clock() - started
            raw.append(envelope.data)
        best_build = min(best_build, building / count)
    return best_build, 0.0, raw


async def plain_send(port: int, raw: list[bytes]) -> tuple[float, float]:
    """Hand ``raw`` to the server with aiosmtplib.sendmail over as many connections at
    once as the node's worker uses (node.mail.smtp.CONNECTIONS): wall seconds and this
    process's CPU seconds."""
    import aiosmtplib

    from node.mail import smtp as node_smtp

    lanes = node_smtp.CONNECTIONS
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        for _ in range(lanes)
    ]
    for client in clients:
        await client.connect()

    async def lane(client: Any, index: int) -> None:
        for i in range(index, len(raw), lanes):
            await client.sendmail("coop@127.0.0.1", [f"m{i}@{MAIL_DOMAIN}"], raw[i])

    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(lane(client, i) for i, client in enumerate(clients)))
    wall, used = time.monotonic() - started, time.process_time() - cpu
    for client in clients:
        await client.quit()
    return wall, used


@dataclass
class Ceiling:
    rate: float
    client_cpu: float  # seconds a message, the plain client's
    build: float  # seconds a message, worker.build
    flatten: float  # seconds a message, to bytes


def ceiling(settings: Settings, smtp: SmtpServer, count: int) -> Ceiling:
    build, flatten, raw = build_cost(settings, min(count, 2000))
    raw = (raw * (count // len(raw) + 1))[:count]
    before = smtp.count()
    wall, cpu = asyncio.run(plain_send(smtp.port, raw))
    deadline = time.monotonic() + 30
    while smtp.count() < before + count and time.monotonic() < deadline:
        time.sleep(0.05)
    return Ceiling(count / wall, cpu / count, build, flatten)


# --- reading what the node recorded -----------------------------------------------------


@dataclass
class Batch:
    claimed: float  # the worker's "now" before its claim (next_attempt_at less the lease)
    recorded: float  # its "after", once the SMTP server had answered the last (sent_at)
    size: int


def node_record(
    settings: Settings, to_monotonic: float
) -> tuple[float | None, float | None, list[Batch], dict[str, int]]:
    """When the proposal opened and when the mail worker took it up (both on this
    process's monotonic clock), the batches as the outbox shows them, and the outbox's
    counts by state."""
    db = Database(settings.database_url, readers=1)

    def read(conn: Any) -> Any:
        opened = conn.execute(select(func.min(proposals.c.opens_at))).scalar()
        told = conn.execute(
            select(func.min(mail_events.c.created_at)).where(
                mail_events.c.kind == str(Kind.PROPOSAL_OPENED)
            )
        ).scalar()
        rows = conn.execute(
            select(mail_outbox.c.next_attempt_at, mail_outbox.c.sent_at, func.count())
            .where(mail_outbox.c.kind == str(Kind.PROPOSAL_OPENED))
            .group_by(mail_outbox.c.next_attempt_at, mail_outbox.c.sent_at)
        ).all()
        states = conn.execute(
            select(mail_outbox.c.state, func.count()).group_by(mail_outbox.c.state)
        ).all()
        return opened, told, rows, states

    try:
        opened, told, rows, states = db.read_sync(read)
    finally:
        db.close()

    def mono(moment: datetime | None) -> float | None:
        return None if moment is None else moment.timestamp() + to_monotonic

    batches = [
        Batch(mono(at - worker.LEASE) or 0.0, mono(sent) or 0.0, int(n))
        for at, sent, n in rows
        if sent is not None
    ]
    batches.sort(key=lambda b: (b.claimed, b.recorded))
    # A claim's messages go and are recorded a chunk (worker.CHUNK) at a time: each
    # chunk after the first starts when the one before it was recorded.
    claims = [b.claimed for b in batches]
    for k in range(1, len(batches)):
        if claims[k] == claims[k - 1]:
            batches[k].claimed = batches[k - 1].recorded
    return mono(opened), mono(told), batches, {str(s): int(n) for s, n in states}


def where_time_goes(batches: list[Batch], arrivals: list[float]) -> list[str]:
    """Each batch's cycle cut at its claim, its first and last message received, and
    its record: summed over the batches."""
    if not batches:
        return []
    parts = Counter[str]()
    at = 0
    for k, batch in enumerate(batches):
        mine = arrivals[at : at + batch.size]
        at += batch.size
        if not mine:
            break
        parts["claim or record, build, connect, first message"] += mine[0] - batch.claimed
        parts["the batch's other messages over SMTP"] += mine[-1] - mine[0]
        parts["QUIT, then the worker's clock"] += batch.recorded - mine[-1]
        if k + 1 < len(batches):
            parts["record the chunk, then the round's other reads"] += (
                batches[k + 1].claimed - batch.recorded
            )
    total = sum(parts.values())
    lines = [
        f"  per chunk of {worker.CHUNK} (sent, then recorded), summed over "
        f"{len(batches)} chunks ({total:.1f} s):"
    ]
    for name, seconds in parts.most_common():
        lines.append(
            f"    {name:<50} {seconds:7.2f} s  {seconds / total:4.0%}"
            f"  {seconds / len(batches) * 1000:7.1f} ms a chunk"
        )
    return lines


# --- py-spy -----------------------------------------------------------------------------


def start_profile(pid: int, output: Path, seconds: int) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "-r",
            "25",
            "--format",
            "raw",
            "-o",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise_profile(path: Path, top: int = 25) -> list[str]:
    """The functions most often on the stacks of the sampled threads (inclusive), and
    those most often at their top (self), from py-spy's raw (collapsed) output."""
    inclusive = Counter[str]()
    own = Counter[str]()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f.split(" (")[0] + " " + _where(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"py-spy: {total} samples of all threads (idle ones included)", "  self:"]
    lines += [f"    {n / total:5.1%}  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive:")
    lines += [f"    {n / total:5.1%}  {name}" for name, n in inclusive.most_common(top)]
    return lines


def _where(frame: str) -> str:
    inside = frame.partition(" (")[2].rstrip(")")
    path, _, line = inside.rpartition(":")
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    path = path.replace(str(ROOT) + "/", "")
    return f"({path}:{line})" if path else ""


# --- the run ----------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> None:
    smtp = SmtpServer.start()
    node = None
    probe = None
    spy = None
    try:
        port = free_port()
        data_dir = tmp / "node"
        settings, token = make_node(data_dir, port)
        seeded = seed_members(settings, args.members)
        print(
            f"seeded {args.members:,} members with verified addresses in {seeded:.1f} s "
            f"({args.backend})",
            flush=True,
        )
        limit = ceiling(settings, smtp, args.ceiling)
        print(
            f"ceiling: {limit.rate:,.0f} messages/s from a plain aiosmtplib client "
            f"({node_connections()} connections)",
            flush=True,
        )
        env = {
            "COOPNODE_SMTP_HOST": "127.0.0.1",
            "COOPNODE_SMTP_PORT": str(smtp.port),
            "COOPNODE_SMTP_SECURITY": "none",
            "COOPNODE_MAIL_PER_HOUR": "1000",
        }
        node = start_serve(data_dir, port, "--log-level", "warning", env=env)
        node.wait_ready(timeout=60)
        probe = Probe(node.base, token)
        probe.start()
        idle_from = time.monotonic()
        time.sleep(args.idle)
        with httpx.Client(base_url=node.base, timeout=60) as client:
            smtp_before = smtp.count()
            cpu_before = process_cpu_seconds(node.process.pid)
            wall_at, posted = time.time(), time.monotonic()
            response = client.post(
                "/api/v1/proposals",
                json=proposal_body(),
                headers={"Authorization": f"Bearer {token}"},
            )
            answered = time.monotonic()
        assert response.status_code == 201, response.text
        if args.profile:
            spy = start_profile(node.process.pid, args.profile, args.profile_seconds)
        deadline = posted + args.timeout
        next_report = posted + 10
        while smtp.count() - smtp_before < args.members:
            if node.process.poll() is not None:
                raise SystemExit(f"the node stopped:\n{node.read_output()}")
            now = time.monotonic()
            if now > deadline:
                raise SystemExit(
                    f"only {smtp.count() - smtp_before} of {args.members} messages after "
                    f"{args.timeout} s:\n{node.read_output()[-3000:]}"
                )
            if now >= next_report:
                print(
                    f"  {now - posted:5.0f} s: {smtp.count() - smtp_before:,} messages",
                    flush=True,
                )
                next_report += 10
            time.sleep(0.02)
        arrivals = smtp.since(smtp_before)
        cpu = process_cpu_seconds(node.process.pid) - cpu_before
        probe.stop()
        if spy is not None:
            spy.wait()
        node.stop()
        to_monotonic = posted - wall_at
        opened, told, batches, states = node_record(settings, to_monotonic)
    finally:
        if probe is not None:
            probe.stop()
        if spy is not None and spy.poll() is None:
            spy.terminate()
        if node is not None:
            node.stop()
        smtp.stop()

    first, last = arrivals[0], arrivals[-1]
    rate = (len(arrivals) - 1) / (last - first) if last > first else float("nan")
    overall = len(arrivals) / (last - posted)
    per_message = cpu / len(arrivals)
    floor = limit.build + limit.flatten + limit.client_cpu
    print()
    print(
        f"notify: a proposal opens in a co-op of {args.members:,} members "
        f"({args.backend}, {os.cpu_count()} cores)"
    )
    print(
        "  reproduce: .venv/bin/python bench/notify.py "
        f"--members {args.members} --backend {args.backend}"
    )
    print()
    print(f"  {'':<46} {'node':>12} {'machine':>12} {'ratio':>7}")
    print(f"  {'messages handed to the SMTP server':<46} {len(arrivals):>12,}")
    print(f"  {'POST /api/v1/proposals answered after':<46} {(answered - posted) * 1000:>9.0f} ms")
    if opened is not None and told is not None:
        print(f"  {'mail worker took the proposal up after':<46} {told - posted:>10.2f} s")
    if batches:
        queued = batches[0].claimed - posted
        print(f"  {'messages queued, first batch claimed after':<46} {queued:>10.2f} s")
    print(f"  {'first message after the POST':<46} {first - posted:>10.2f} s")
    print(f"  {'last message after the POST':<46} {last - posted:>10.2f} s")
    print(
        f"  {'messages/s, first to last':<46} {rate:>12,.0f} {limit.rate:>12,.0f} "
        f"{rate / limit.rate:>7.0%}"
    )
    print(f"  {'messages/s, POST to last':<46} {overall:>12,.0f}")
    print(
        f"  {'CPU per message, µs':<46} {per_message * 1e6:>12,.0f} {floor * 1e6:>12,.0f} "
        f"{floor / per_message:>7.0%}"
    )
    print(
        f"    machine: build {limit.build * 1e6:,.0f} µs (templates once a batch, links, bytes) + "
        f"to bytes {limit.flatten * 1e6:,.0f} µs + plain client {limit.client_cpu * 1e6:,.0f} µs"
    )
    print(
        f"    node: {cpu:.1f} s of CPU (every thread) over {last - posted:.1f} s, "
        f"{cpu / (last - posted):.0%} of a core"
    )
    print(f"  outbox: {states}")
    print()
    print(f"  answer times, ms        {'n':>5} {'p50':>8} {'p95':>8} {'max':>8}")
    print(answer_line("idle", probe.between(idle_from, posted)))
    print(answer_line("while sending", probe.between(posted, last)))
    for path in PROBE_PATHS:
        sending = [a for a in probe.between(posted, last) if a[2] == path]
        print(answer_line(f"  {path}", sending))
    fan_out = probe.between(posted, first)
    print(answer_line("before the first", fan_out))
    print()
    for line in where_time_goes(batches, arrivals):
        print(line)
    gaps = sorted(
        ((b - a, a - posted) for a, b in itertools.pairwise(arrivals)),
        reverse=True,
    )[:3]
    print(
        "  longest silences between two messages: "
        + ", ".join(f"{g * 1000:.0f} ms at {t:.1f} s" for g, t in gaps)
    )
    if args.profile:
        print()
        for line in summarise_profile(args.profile):
            print(line)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "members": args.members,
                    "backend": args.backend,
                    "first_s": first - posted,
                    "last_s": last - posted,
                    "rate": rate,
                    "ceiling": limit.rate,
                    "cpu_us": per_message * 1e6,
                    "idle_p50_ms": statistics.median(
                        [a[1] * 1000 for a in probe.between(idle_from, posted)] or [0]
                    ),
                    "sending_p95_ms": quantile(
                        [a[1] * 1000 for a in probe.between(posted, last)] or [0], 0.95
                    ),
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--idle", type=float, default=10.0, help="idle baseline, seconds")
    parser.add_argument(
        "--ceiling", type=int, default=5000, help="messages sent by the plain client"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--profile", type=Path, help="py-spy raw output for the node's process")
    parser.add_argument("--profile-seconds", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the main figures here")
    parser.add_argument("--serve-smtp", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_smtp:
        serve_smtp(args.serve_smtp)
        return
    tmp = Path(tempfile.mkdtemp(prefix="coopnode-notify-"))
    try:
        with database_env(args.backend):
            run(args, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
