"""How the inbox and delivery scale from one process to two on PostgreSQL, on this
machine, and what limits them: the figures a co-op reads to size its server.

Everything runs on one throwaway PostgreSQL cluster (tests/support/postgres.py, durable
as a real server: fsync and synchronous commit on), each run on a database of its own,
checkpointed before it is measured, and every process shares this machine's cores.

Inbox. A node made by ``coopnode init`` for the domain ``coop.test`` (as a deployment
behind a reverse proxy: every web process serves the same node) is served by 1, then
2, ``coopnode serve --no-workers`` processes on their own ports, as the
``coopnode-web@PORT`` units run, beside one ``coopnode worker`` process, as
``coopnode-worker@`` runs. The node holds the sender's actor and key (as after a first
fetch), so no request waits for a fetch. ``--count`` unique ``Create`` activities,
signed in advance as Mastodon signs them (draft-cavage, RSA-2048, ``Host: coop.test`` as
a proxy passes it), are sent by bench/loadgen.py, one process whose ``--connections``
keep-alive connections (100: fewer leave two web processes short of work on two cores)
are spread over the web ports in turn, as the proxy would spread them. Each web process
is warmed up first (its first request reads the key). Afterwards every activity must be
stored, once. Printed: activities/s with one and two web
processes, the scale factor, and the CPU of each process over the run (from /proc, all
its threads: each web process, the worker, PostgreSQL's processes summed, and the load
generator's own figure over its sending) in microseconds per activity and in cores
(with each process's main thread: its event loop, where Python runs under the GIL),
beside how busy the machine's cores were; and a line saying what the figures show
limited the run (all cores busy, one process at its ceiling, or neither).

Delivery. A node with ``--followers`` accepted followers, each with its own inbox on a
recording sink (tests/support/sink.py, its own process) spread over ``--hosts`` loopback
addresses (to the node, that many hosts), publishes one activity to all of them, as
bench/delivery.py sets it up; 1, then 2, ``coopnode worker`` processes, already running
and idle, deliver it. The rate runs from the first claim to the last delivery recorded
(an idle worker polls every second, so the wait for the first claim is printed apart).
The sink must have got the activity in every inbox exactly once, every delivery must
be recorded delivered after one attempt, and each worker's own count (its metrics) is
printed. Every POST is signed draft-cavage with the co-op's RSA key, as Mastodon takes
them, through the poster the node picks. Printed: deliveries/s with one and two
workers, the scale factor, when each worker started on the fan-out and the rate once
all were at work, and the CPU of each worker, PostgreSQL and the sink, as above.

The runs alternate (1, 2, 1, 2, ...) ``--runs`` times so that other work on the
machine falls on both alike; the best run of each is reported, all runs listed. Last,
a sizing summary, with this machine's one-core RSA-2048 verify rate (as bench/inbox.py
prints it) and signing rates (as bench/delivery.py prints them) beside the figures.
Any error a process logs, any activity lost or delivered twice, is printed as a
problem.

    .venv/bin/python bench/scaleout.py
    .venv/bin/python bench/scaleout.py --count 2000 --followers 500 --runs 1   # a quick check
    .venv/bin/python bench/scaleout.py --inbox-only        # or --delivery-only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.delivery import (  # noqa: E402
    follower_rows,
    load_average,
    make_settings,
    prepare,
    signing_rates,
)
from bench.inbox import (  # noqa: E402
    build_requests,
    post_once,
    process_cpu_seconds,
    rsa_verifications_per_second,
    stored,
)
from federation import keys  # noqa: E402
from node.follows import store as follows  # noqa: E402
from node.services import identity, outbox, remote_actors  # noqa: E402
from node.settings import write_config  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.tables import deliveries, followers  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.processes import (  # noqa: E402
    ServeProcess,
    coopnode_command,
    free_port,
    process_env,
    run_coopnode,
    start_serve,
    stop_process,
)
from tests.support.sink import SinkProcess, start_sink  # noqa: E402

# The node under inbox load: a public domain, served behind a proxy that passes it as
# the Host header.
DOMAIN = "coop.test"
# The remote server whose actor signs every activity (never contacted: the node holds
# its actor document and key).
SENDER = "http://sender.test"
# What a process's log shows when something went wrong.
TROUBLE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Exception")


# --- CPU, from /proc ---------------------------------------------------------------------


def cpu_of(pid: int) -> float:
    """User and system CPU seconds of a running process, all its threads."""
    try:
        return process_cpu_seconds(pid)
    except OSError:
        return 0.0


def main_thread_cpu(pid: int) -> float:
    """User and system CPU seconds of a process's main thread."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster (with its children that have
    exited and been reaped) and every live backend and helper process it started."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(entry.name) == postmaster:
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def machine_jiffies() -> tuple[int, int]:
    """All cores' busy and total time so far (/proc/stat), in clock ticks."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # guest time is already in user
    return total - idle, total


def machine_busy(seconds: float) -> float:
    """How many cores the machine kept busy over the next ``seconds``."""
    busy, total = machine_jiffies()
    time.sleep(seconds)
    busy_after, total_after = machine_jiffies()
    return (os.cpu_count() or 1) * (busy_after - busy) / max(1, total_after - total)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


@dataclass
class Meter:
    """CPU of named processes and of PostgreSQL, and the machine's busy share, between
    :meth:`start` and :meth:`stop`."""

    pids: dict[str, int]
    postmaster: int
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0  # cores busy on average, all processes of the machine
    wall: float = 0.0

    def _read(self) -> dict[str, float]:
        figures = {name: cpu_of(pid) for name, pid in self.pids.items()}
        # The main thread alone: a Python process's event loop, under its GIL.
        figures.update({f"{name}{MAIN}": main_thread_cpu(pid) for name, pid in self.pids.items()})
        figures["PostgreSQL"] = postgres_cpu(self.postmaster)
        return figures

    def start(self) -> None:
        self._busy, self._total = machine_jiffies()
        self._started = time.perf_counter()
        self.before = self._read()

    def stop(self) -> None:
        self.after = self._read()
        self.wall = time.perf_counter() - self._started
        busy, total = machine_jiffies()
        cores = os.cpu_count() or 1
        self.busy = cores * (busy - self._busy) / max(1, total - self._total)

    def used(self) -> dict[str, float]:
        """CPU seconds of each process, all its threads."""
        return {
            name: self.after[name] - self.before[name]
            for name in self.after
            if not name.endswith(MAIN)
        }

    def main_threads(self) -> dict[str, float]:
        """CPU seconds of each process's main thread."""
        return {
            name.removesuffix(MAIN): self.after[name] - self.before[name]
            for name in self.after
            if name.endswith(MAIN)
        }


MAIN = "/main"


def postmaster_pid(cluster: PostgresCluster) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])


def checkpoint(cluster: PostgresCluster) -> None:
    """Write out what the set-up and earlier runs left dirty, so that a checkpoint of
    theirs does not fall in the run measured next."""
    with psycopg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("CHECKPOINT")


@contextlib.contextmanager
def database(cluster: PostgresCluster, name: str) -> Iterator[str]:
    """A new database for one run, dropped after it (the cluster stays small)."""
    url = cluster.create_database(name)
    try:
        yield url
    finally:
        cluster.drop_database(name)


# --- processes ---------------------------------------------------------------------------


@dataclass
class Worker:
    """A ``coopnode worker`` process, its log in a file, its metrics on a port."""

    process: subprocess.Popen[str]
    log: Path
    metrics_port: int

    def wait_started(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"coopnode worker exited early:\n{self.log.read_text()}")
            if "coopnode worker:" in self.log.read_text():
                return
            time.sleep(0.05)
        raise TimeoutError(f"coopnode worker did not start in {timeout} s:\n{self.log.read_text()}")

    def delivered(self) -> int:
        """The deliveries this process made (its coopnode_deliveries counter)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        found = re.search(r'^coopnode_deliveries_total\{outcome="delivered"\} (\S+)$', text, re.M)
        return int(float(found.group(1))) if found else 0

    def stop(self) -> None:
        stop_process(self.process)


def start_worker(data_dir: Path, log: Path) -> Worker:
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *coopnode_command(),
                "worker",
                "--data-dir",
                str(data_dir),
                "--metrics-port",
                str(port),
            ],
            cwd=ROOT,
            env=process_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return Worker(process, log, port)


def trouble(name: str, text: str) -> list[str]:
    """The lines of a process's log that say something went wrong, named."""
    return [f"{name}: {line}" for line in text.splitlines() if TROUBLE.search(line)]


# --- inbox -------------------------------------------------------------------------------


@dataclass
class InboxRun:
    web: int
    figures: dict[str, Any]
    cpu: dict[str, float]  # CPU seconds of each process over the run
    main: dict[str, float]  # of their main threads
    busy: float
    wall: float
    stored: int
    problems: list[str]

    @property
    def count(self) -> int:
        return int(self.figures["count"])

    @property
    def rate(self) -> float:
        return self.count / float(self.figures["seconds"])


def sender_actor(key: keys.PrivateKey) -> dict[str, Any]:
    actor = f"{SENDER}/actors/coop"
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor,
        "type": "Organization",
        "preferredUsername": "coop",
        "inbox": f"{actor}/inbox",
        "publicKey": {
            "id": f"{actor}#main-key",
            "owner": actor,
            "publicKeyPem": keys.public_pem(key),
        },
    }


def inbox_node(root: Path, database_url: str, key: keys.PrivateKey) -> Path:
    """A node for ``DOMAIN`` on ``database_url`` (as ``coopnode init`` makes one for a
    deployment), holding the sender's actor and key; its data directory."""
    data_dir = root / "node"
    made = run_coopnode(
        "init",
        "--data-dir",
        str(data_dir),
        "--domain",
        DOMAIN,
        "--name",
        "Scale-out co-op",
        "--database-url",
        database_url,
        timeout=120,
    )
    if made.returncode != 0:
        raise RuntimeError(f"coopnode init failed:\n{made.stdout}{made.stderr}")
    db = Database(database_url, readers=1)
    try:
        with db.engine.begin() as conn:
            remote_actors.store(conn, sender_actor(key), now=datetime.now(UTC))
    finally:
        db.close()
    return data_dir


def measure_inbox(
    root: Path,
    database_url: str,
    postmaster: int,
    settle: Callable[[], None],
    web: int,
    requests_file: Path,
    key: keys.PrivateKey,
    connections: int,
) -> InboxRun:
    data_dir = inbox_node(root, database_url, key)
    servers: list[ServeProcess] = []
    worker: Worker | None = None
    try:
        for _ in range(web):
            servers.append(start_serve(data_dir, free_port(), "--no-workers"))
        worker = start_worker(data_dir, root / "worker.log")
        for server in servers:
            server.wait_ready()
        worker.wait_started()
        # Each web process reads the sender's key once, outside the measurement.
        for n, server in enumerate(servers):
            status = post_once(server.port, SENDER, key, f"warm-up-{n}", host=DOMAIN)
            if status != 202:
                raise RuntimeError(f"the warm-up got {status}:\n{server.read_output()}")
        settle()
        pids = {f"web {n + 1}": server.process.pid for n, server in enumerate(servers)}
        pids["worker"] = worker.process.pid
        meter = Meter(pids, postmaster)
        generator = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "loadgen.py"),
                str(requests_file),
                *(option for s in servers for option in ("--port", str(s.port))),
                "--connections",
                str(connections),
                "--announce",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert generator.stderr is not None
        # Measured from the first request (the generator has read its file by then).
        announced = generator.stderr.readline()
        meter.start()
        out, err = generator.communicate()
        meter.stop()
        if announced != "sending\n" or generator.returncode != 0:
            raise RuntimeError(f"the load generator failed: {announced}{err}{out}")
        figures = json.loads(out)
    finally:
        for server in servers:
            server.stop()
        if worker is not None:
            worker.stop()
    problems = [
        line
        for n, server in enumerate(servers)
        for line in trouble(f"web {n + 1}", server.read_output())
    ]
    if worker is not None:
        problems += trouble("worker", worker.log.read_text())
    cpu = meter.used()
    cpu["load generator"] = float(figures["sending_cpu_seconds"])
    kept = stored(database_url)
    if kept != figures["count"] or figures["statuses"] != {"202": figures["count"]}:
        problems.append(
            f"{figures['count']} activities sent, answered {figures['statuses']}, {kept} stored"
        )
    return InboxRun(web, figures, cpu, meter.main_threads(), meter.busy, meter.wall, kept, problems)


# --- delivery ----------------------------------------------------------------------------


@dataclass
class DeliveryRun:
    workers: int
    delivered: int
    seconds: float  # first claim to the last delivery recorded
    first_claim: float  # publish to the first claim
    # When each worker started on the fan-out, after the first one did (None: never).
    joined: list[float | None]
    # Deliveries/s once every worker was at work (several workers only).
    all_at_work: float | None
    cpu: dict[str, float]  # CPU seconds of each process over the run
    main: dict[str, float]  # of their main threads
    busy: float
    wall: float
    per_worker: list[int]
    sink: dict[str, Any]
    problems: list[str]

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds


def publish(db: Database, count: int) -> None:
    """One activity from the co-op to its followers, queued in one unit of work, as any
    feature publishes."""
    base = "http://127.0.0.1:8000"
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{base}/activities/scaleout-{time.time_ns()}",
        "type": "Create",
        "actor": f"{base}/actors/coop",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [f"{base}/actors/coop/followers"],
        "object": {
            "id": f"{base}/offers/1",
            "type": "Note",
            "attributedTo": f"{base}/actors/coop",
            "content": "<p>Organic apples, 1 kg, 3.50 EUR, from the orchard co-op</p>",
        },
    }
    with db.engine.begin() as conn:
        coop_id = identity.get_actor(conn, "coop").actor.id
        inboxes = follows.follower_inboxes(conn, actor_id=coop_id)
        queued = outbox.publish(
            conn, activity, actor_id=coop_id, inboxes=inboxes, now=datetime.now(UTC)
        )
    if queued != count:
        raise RuntimeError(f"{queued} deliveries queued for {count} followers")


# A worker has started on the fan-out once it has used this much CPU since the publish
# (an idle worker's polls use a fraction of it).
WORKING_CPU = 0.02
# A fan-out that has not moved for this long is stuck.
STUCK_SECONDS = 60.0


def watch(
    db: Database, workers: list[Worker], idle_cpu: list[float], meter: Meter
) -> tuple[float, list[float | None]]:
    """Wait until no delivery is pending, with ``meter`` running from the first claim
    seen (the wait for a worker's poll costs nothing). Returns when that was, and when
    each worker started on the deliveries (None if it never did), all as time.time():
    a worker's start is seen in its CPU time, sampled every 10 ms from /proc, which
    costs neither the workers nor the database anything."""
    joined: list[float | None] = [None] * len(workers)
    any_claimed = (
        select(deliveries.c.id)
        .where(deliveries.c.claimed_until.is_not(None) | (deliveries.c.state != "pending"))
        .limit(1)
    )
    pending = select(func.count()).select_from(deliveries).where(deliveries.c.state == "pending")
    claimed: float | None = None
    checked = 0.0
    left, moved = -1, time.monotonic()
    while time.monotonic() - moved < STUCK_SECONDS:
        for n, worker in enumerate(workers):
            if joined[n] is None and cpu_of(worker.process.pid) - idle_cpu[n] >= WORKING_CPU:
                joined[n] = time.time()
        if claimed is None:
            with db.engine.connect() as conn:
                if conn.execute(any_claimed).first() is not None:
                    claimed = time.time()
                    meter.start()
        elif time.monotonic() - checked >= 0.05:
            checked = time.monotonic()
            with db.engine.connect() as conn:
                now_left = conn.execute(pending).scalar_one()
            if now_left == 0:
                meter.stop()
                return claimed, joined
            if now_left != left:
                left, moved = now_left, time.monotonic()
        time.sleep(0.01)
    logged = [
        line
        for n, w in enumerate(workers)
        for line in trouble(f"worker {n + 1}", w.log.read_text())
    ]
    where = "none claimed" if claimed is None else f"{left} pending"
    raise RuntimeError(
        f"no delivery finished for {STUCK_SECONDS:.0f} s ({where}); the workers logged "
        f"{len(logged)} error lines, the last ones:\n" + "\n".join(logged[-12:])
    )


def measure_delivery(
    root: Path,
    database_url: str,
    postmaster: int,
    settle: Callable[[], None],
    workers: int,
    followers_count: int,
    hosts: int,
) -> DeliveryRun:
    settings = make_settings(root, database_url)
    prepare(settings)
    write_config(settings)  # for `coopnode worker --data-dir`
    db = Database(database_url, readers=1)
    sink: SinkProcess | None = None
    running: list[Worker] = []
    try:
        sink = start_sink(free_port(), hosts)
        rows = follower_rows(followers_count, sink.inbox)
        with db.engine.begin() as conn:
            coop_id = identity.get_actor(conn, "coop").actor.id
            for row in rows:
                row["actor_id"] = coop_id
            conn.execute(followers.insert(), rows)
        for n in range(workers):
            running.append(start_worker(settings.data_dir, root / f"worker-{n + 1}.log"))
        for worker in running:
            worker.wait_started()
        settle()
        time.sleep(1.5)  # past each worker's first rounds: idle, as between posts
        pids = {f"worker {n + 1}": w.process.pid for n, w in enumerate(running)}
        pids["sink"] = sink.process.pid
        meter = Meter(pids, postmaster)
        idle_cpu = [cpu_of(worker.process.pid) for worker in running]
        publish(db, followers_count)
        published = time.time()
        claimed, joined = watch(db, running, idle_cpu, meter)
        started = [at for at in joined if at is not None]
        with db.engine.connect() as conn:
            last = conn.execute(select(func.max(deliveries.c.finished_at))).scalar_one()
            # Delivered before the last worker started on them: the rest went out with
            # every worker at work.
            before_all = conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.finished_at <= datetime.fromtimestamp(max(started), UTC))
            ).scalar_one()
            states: dict[str, int] = dict(
                conn.execute(
                    select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
                ).all()
            )
            retried = conn.execute(
                select(func.count()).select_from(deliveries).where(deliveries.c.attempts != 1)
            ).scalar_one()
        per_worker = [worker.delivered() for worker in running]
        stats = sink.stats()
    finally:
        for worker in running:
            worker.stop()
        if sink is not None:
            sink.stop()
        db.close()
    problems = [
        line
        for n, w in enumerate(running)
        for line in trouble(f"worker {n + 1}", w.log.read_text())
    ]
    if states != {"delivered": followers_count} or retried:
        problems.append(f"deliveries by state {states}, {retried} after more than one attempt")
    duplicates = stats["duplicates"]
    if (
        stats["inboxes"] != followers_count
        or stats["deliveries"] != followers_count
        or stats["requests"] != followers_count
        or duplicates
    ):
        problems.append(
            f"the sink got {stats['requests']} POSTs in {stats['inboxes']} inboxes, "
            f"{stats['deliveries']} deliveries, {len(duplicates)} duplicates "
            f"(e.g. {list(duplicates.items())[:3]}), for {followers_count} followers"
        )
    if sum(per_worker) != followers_count:
        problems.append(f"the workers count {per_worker} deliveries, {followers_count} wanted")
    return DeliveryRun(
        workers=workers,
        delivered=states.get("delivered", 0),
        seconds=last.timestamp() - claimed,
        first_claim=claimed - published,
        joined=[None if at is None else at - min(started) for at in joined],
        all_at_work=(
            (followers_count - before_all) / (last.timestamp() - max(started))
            if len(started) == workers and workers > 1 and last.timestamp() > max(started)
            else None
        ),
        cpu=meter.used(),
        main=meter.main_threads(),
        busy=meter.busy,
        wall=meter.wall,
        per_worker=per_worker,
        sink={k: v for k, v in stats.items() if k != "per_inbox"},
        problems=problems,
    )


# --- the report --------------------------------------------------------------------------


def alternating(runs: int) -> Iterator[tuple[int, int]]:
    """(run, processes): 1 and 2 processes in turn, ``runs`` times."""
    for run in range(runs):
        yield run, 1
        yield run, 2


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('ss') else 's'}"


def cpu_lines(run: InboxRun | DeliveryRun, count: int, what: str) -> list[str]:
    """Each process's CPU per ``what`` (µs, of all the run's) and in cores over the run
    (with its main thread's share: a Python process's event loop, under its GIL), and
    the machine's."""
    cpu, wall = run.cpu, run.wall
    lines = [f"    CPU per {what} (all the run's), and in cores over the run:"]
    for name, seconds in cpu.items():
        main = run.main.get(name)
        thread = "" if main is None else f" (its main thread {main / wall:.2f})"
        lines.append(
            f"      {name:15} {1e6 * seconds / count:5.0f} µs  {seconds / wall:.2f} cores{thread}"
        )
    ours = sum(cpu.values()) / wall
    lines.append(
        f"      {'together':15} {1e6 * sum(cpu.values()) / count:5.0f} µs  {ours:.2f} cores; "
        f"the machine's {os.cpu_count()} cores were {run.busy:.2f} busy, "
        f"{max(0.0, run.busy - ours):.2f} of that not these processes' (other work, "
        f"kernel time charged to no process)"
    )
    return lines


def report_inbox(runs: list[InboxRun], args: argparse.Namespace) -> dict[int, InboxRun]:
    print(
        f"\nInbox: {args.count} signed Create activities (draft-cavage, RSA-2048) from one "
        f"remote actor whose key the node holds, sent by one load-generator process over "
        f"{args.connections} keep-alive connections spread over the web ports; each web "
        f"process is `coopnode serve --no-workers`, beside one `coopnode worker`"
    )
    best: dict[int, InboxRun] = {}
    for web in (1, 2):
        mine = [run for run in runs if run.web == web]
        if not mine:
            continue
        top = best[web] = max(mine, key=lambda run: run.rate)
        figures = top.figures
        print(
            f"  {plural(web, 'web process')} + 1 worker: {top.rate:6.0f} activities/s "
            f"verified and stored (runs: {each_run(mine)})  "
            f"p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms  "
            f"statuses {figures['statuses']}, {top.stored} stored"
        )
        print("\n".join(cpu_lines(top, top.count, "activity")))
        print(f"    limit: {limit(top)}")
    if 1 in best and 2 in best:
        print(f"  scale factor, 1 to 2 web processes: {best[2].rate / best[1].rate:.2f}x")
    return best


def report_delivery(runs: list[DeliveryRun], args: argparse.Namespace) -> dict[int, DeliveryRun]:
    print(
        f"\nDelivery: one activity to {args.followers} followers' inboxes on {args.hosts} "
        f"hosts (a recording sink), each POST signed draft-cavage RSA-2048, by "
        f"`coopnode worker` processes already running"
    )
    best: dict[int, DeliveryRun] = {}
    for workers in (1, 2):
        mine = [run for run in runs if run.workers == workers]
        if not mine:
            continue
        top = best[workers] = max(mine, key=lambda run: run.rate)
        sink = top.sink
        print(
            f"  {plural(workers, 'worker')}: {top.rate:6.0f} deliveries/s "
            f"(runs: {each_run(mine)}); {top.delivered} delivered "
            f"in {top.seconds:.2f} s from the first claim, which came {top.first_claim:.2f} s "
            f"after the publish; by worker {top.per_worker}; sink: {sink['deliveries']} "
            f"deliveries in {sink['inboxes']} inboxes from {sink['requests']} POSTs, "
            f"{len(sink['duplicates'])} duplicates"
        )
        if workers > 1:
            starts = ", ".join(
                f"worker {n + 1} {'never' if at is None else f'+{at:.2f} s'}"
                for n, at in enumerate(top.joined)
            )
            line = f"    started on it (each at its own poll, every second when idle): {starts}"
            if top.all_at_work is not None:
                line += f"; with all at work: {top.all_at_work:.0f} deliveries/s"
            print(line)
        print("\n".join(cpu_lines(top, top.delivered, "delivery")))
        print(f"    limit: {limit(top)}")
    if 1 in best and 2 in best:
        print(f"  scale factor, 1 to 2 workers: {best[2].rate / best[1].rate:.2f}x", end="")
        if best[2].all_at_work is not None:
            print(f"; once both were at work {best[2].all_at_work / best[1].rate:.2f}x", end="")
        print()
    return best


def other_work(run: InboxRun | DeliveryRun) -> float:
    """Cores the machine kept busy over a run besides the processes measured."""
    return max(0.0, run.busy - sum(run.cpu.values()) / run.wall)


def each_run(runs: list[InboxRun] | list[DeliveryRun]) -> str:
    """Each run's rate, with the cores other work took meanwhile."""
    return ", ".join(f"{run.rate:.0f} [other work {other_work(run):.2f}]" for run in runs)


def limit(run: InboxRun | DeliveryRun) -> str:
    """What the CPU figures say limited a run."""
    cores = os.cpu_count() or 1
    shares = sorted(run.cpu.items(), key=lambda item: -item[1])
    said = ", ".join(f"{name} {seconds / run.wall:.2f}" for name, seconds in shares)
    other = other_work(run)
    if run.busy >= 0.93 * cores:
        return f"the machine's {cores} cores, all busy: {said}, other work {other:.2f}"
    # A Python process runs Python code in one thread at a time (the GIL): a web
    # process's threads together near one core, or any main thread (the event loop)
    # near one, is its ceiling, whatever else is idle. A worker signs on threads that
    # leave the GIL, so it may use more.
    full = [
        f"{name} ({run.cpu[name] / run.wall:.2f} cores, its main thread {main / run.wall:.2f})"
        for name, main in run.main.items()
        if name not in ("sink", "load generator")
        and (main / run.wall >= 0.8 or (name.startswith("web") and run.cpu[name] / run.wall >= 0.9))
    ]
    if full:
        return (
            f"{' and '.join(full)}: about the most one Python process's code gets (one thread "
            f"at a time under the GIL), with {cores - run.busy:.2f} cores idle"
        )
    if run.busy >= 0.85 * cores:
        return (
            f"mostly the machine's {cores} cores ({cores - run.busy:.2f} idle, waiting on "
            f"commits and round trips): {said}, other work {other:.2f}"
        )
    return (
        f"neither the cores ({cores - run.busy:.2f} idle) nor one process was full: waits "
        f"(commits, the connections' round trips, a worker's round) set the pace; {said}"
    )


def node_cpu(cpu: dict[str, float], count: int, leave_out: str) -> float:
    """µs of the node's own processes and PostgreSQL per item (the load's source left out)."""
    return 1e6 * sum(v for k, v in cpu.items() if k != leave_out) / count


def summary(
    inbox: dict[int, InboxRun],
    delivery: dict[int, DeliveryRun],
    verify: float,
    signing: Any,
    args: argparse.Namespace,
) -> None:
    cores = os.cpu_count()
    print(f"\nSizing, on this machine ({cores} cores, {cpu_model()}), all processes on it:")
    print(
        f"  one core here verifies {verify:,.0f} RSA-2048 signatures/s (an inbox request's "
        f"floor) and signs {signing.rsa:,.0f} draft-cavage RSA requests/s (a delivery's), "
        f"{signing.ed25519:,.0f} RFC 9421 Ed25519 ones"
    )
    if inbox:
        one, two = inbox.get(1), inbox.get(2)
        if one is not None:
            print(
                f"  - one web process takes {one.rate:,.0f} signed activities/s "
                f"({one.rate * 86400 / 1e6:.0f} million a day)"
                + (
                    f"; two take {two.rate:,.0f}/s ({two.rate / one.rate:.2f}x)"
                    if two is not None
                    else ""
                )
            )
        for run in (one, two):
            if run is None:
                continue
            cost = node_cpu(run.cpu, run.count, "load generator")
            print(
                f"  - with {plural(run.web, 'web process')} an activity costs the node "
                f"{cost:.0f} µs of CPU (web, worker and PostgreSQL): about "
                f"{1e6 / cost:,.0f} activities/s for each core it has to itself; here the "
                f"load generator took {1e6 * run.cpu['load generator'] / run.count:.0f} µs "
                f"of the same cores"
            )
    if delivery:
        one_w, two_w = delivery.get(1), delivery.get(2)
        for fan_out in (one_w, two_w):
            if fan_out is None:
                continue
            cost = node_cpu(fan_out.cpu, fan_out.delivered, "sink")
            print(
                f"  - {plural(fan_out.workers, 'worker')} "
                f"{'delivers' if fan_out.workers == 1 else 'deliver'} {fan_out.rate:,.0f}/s: a "
                f"post to {args.followers:,} followers' own inboxes is out in "
                f"{args.followers / fan_out.rate:.1f} s (plus up to 1 s before an idle worker "
                f"polls); {cost:.0f} µs of CPU a delivery (workers and PostgreSQL), about "
                f"{1e6 / cost:,.0f} deliveries/s for each core the node has to itself"
            )
        if one_w is not None and two_w is not None:
            print(f"    (2 workers: {two_w.rate / one_w.rate:.2f}x one)")
    print(
        f"  Every process above shares the same {cores} cores: the load generator and the "
        f"sink take their part of them, as a proxy and the peers' TLS would."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40_000, help="inbox activities a run")
    parser.add_argument(
        "--connections", type=int, default=100, help="the inbox load's, over all web ports"
    )
    parser.add_argument("--followers", type=int, default=5_000)
    parser.add_argument("--hosts", type=int, default=100, help="loopback hosts of the inboxes")
    parser.add_argument("--runs", type=int, default=3, help="best of N runs of each layout")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--inbox-only", action="store_true")
    what.add_argument("--delivery-only", action="store_true")
    args = parser.parse_args()

    print(
        f"coopnode on PostgreSQL, 1 and 2 processes; this machine has {os.cpu_count()} cores "
        f"({cpu_model()}), shared by every process measured (web processes, workers, "
        f"PostgreSQL, the load generator, the sink) and by anything else running; load "
        f"average {load_average()} before"
    )
    before = machine_busy(3.0)
    print(
        f"the machine's cores were {before:.2f} busy over 3 s before the runs, with nothing "
        f"of this benchmark running"
        + (
            ": other work shares the cores, the figures below suffer from it"
            if before > 0.25
            else ""
        )
    )
    verify = rsa_verifications_per_second()
    signing = signing_rates()
    print(f"one core here: RSA-2048 verify {verify:,.0f}/s; {signing}")

    inbox_runs: list[InboxRun] = []
    delivery_runs: list[DeliveryRun] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, PostgresCluster(durable=True) as cluster:
        tmp_path = Path(tmp)
        postmaster = postmaster_pid(cluster)
        if not args.delivery_only:
            key = keys.load_own_private_key(keys.generate_rsa_private_pem())
            requests_file = tmp_path / "requests.bin"
            # Signed once for the node's domain: every run's node takes the same requests.
            requests_file.write_bytes(build_requests(args.count, SENDER, 0, key, host=DOMAIN))
            for run, web in alternating(args.runs):
                with database(cluster, f"inbox_{web}_{run}") as url:
                    done = measure_inbox(
                        tmp_path / f"inbox-{web}-{run}",
                        url,
                        postmaster,
                        lambda: checkpoint(cluster),
                        web,
                        requests_file,
                        key,
                        args.connections,
                    )
                inbox_runs.append(done)
                problems += [f"inbox, {web} web, run {run + 1}: {p}" for p in done.problems]
        if not args.inbox_only:
            for run, workers in alternating(args.runs):
                with database(cluster, f"delivery_{workers}_{run}") as url:
                    done_d = measure_delivery(
                        tmp_path / f"delivery-{workers}-{run}",
                        url,
                        postmaster,
                        lambda: checkpoint(cluster),
                        workers,
                        args.followers,
                        args.hosts,
                    )
                delivery_runs.append(done_d)
                problems += [
                    f"delivery, {workers} workers, run {run + 1}: {p}" for p in done_d.problems
                ]

    inbox = report_inbox(inbox_runs, args) if inbox_runs else {}
    delivery = report_delivery(delivery_runs, args) if delivery_runs else {}
    summary(inbox, delivery, verify, signing, args)
    print(f"\nload average after: {load_average()}")
    if problems:
        print(f"PROBLEMS ({len(problems)}):")
        for problem in problems[:40]:
            print(f"  {problem}")
    else:
        print("no problems: every activity stored, every inbox delivered to once, no errors logged")


if __name__ == "__main__":
    main()
