"""The delivery queue with real processes: several ``coopnode worker`` processes sharing
it on PostgreSQL, and a node killed with SIGKILL in the middle of a fan-out.

The inboxes are a recording sink (:mod:`tests.support.sink`) on many loopback
addresses; it counts, per inbox, the requests and the distinct activity ids received. A
real inbox de-duplicates by activity id, so "one effect each" is one distinct activity
per inbox, while the requests show what was sent twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from federation.jsonld import AS_CONTEXT_URL
from node.delivery.worker import BATCH
from node.documents import PUBLIC
from node.follows import store as follows
from node.services import identity, outbox
from node.services.outbox import CLAIM_SECONDS
from node.settings import Settings, load_settings, write_config
from node.storage.database import Database
from node.storage.tables import deliveries
from node.urls import Urls
from tests.support.postgres import PostgresCluster
from tests.support.processes import (
    ROOT,
    coopnode_command,
    free_port,
    process_env,
    run_coopnode,
    start_serve,
)
from tests.support.sink import SinkProcess, start_sink

pytestmark = pytest.mark.e2e

T = TypeVar("T")

HOSTS = 50
# Moves a restarted node's clock past the claims its killed predecessor left.
PAST_THE_CLAIMS = CLAIM_SECONDS + 100


def _wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float, explain: Callable[[], str]
) -> T:
    """Poll ``probe`` until it answers something other than None (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s\n{explain()}")
        time.sleep(0.05)


@dataclass
class QueueNode:
    """A node's data directory and database, as the test sees them from outside."""

    settings: Settings
    db: Database
    coop_id: int

    @property
    def urls(self) -> Urls:
        return Urls(self.settings.base_url)

    def summary(self) -> dict[str, int]:
        return self.db.read_sync(outbox.queue_summary)

    def claims_held(self) -> set[datetime]:
        """The batches claimed and not yet finished, each known by its claim's expiry
        (one claim, one ``claimed_until``: a worker holds one batch at a time)."""
        query = select(deliveries.c.claimed_until).distinct()
        query = query.where(
            deliveries.c.state == "pending", deliveries.c.claimed_until.is_not(None)
        )
        return set(self.db.read_sync(lambda c: c.execute(query).scalars().all()))

    def describe(self, sink: SinkProcess) -> str:
        """The queue and the sink side by side, for a failure's message."""
        stats = sink.stats()
        query = (
            select(deliveries.c.id, deliveries.c.inbox, deliveries.c.claimed_until)
            .where(deliveries.c.state == "pending")
            .order_by(deliveries.c.id)
            .limit(10)
        )
        pending = [
            f"{row.id} {row.inbox} claimed until {row.claimed_until}; the inbox got "
            f"{stats['per_inbox'].get(row.inbox.split('://')[1], {})}"
            for row in self.db.read_sync(lambda c: c.execute(query).all())
        ]
        return (
            f"queue {self.summary()}; sink: {stats['requests']} requests, "
            f"{stats['deliveries']} distinct, duplicates {stats['duplicates']}; "
            "pending:\n  " + "\n  ".join(pending)
        )

    def attempts(self) -> dict[int, int]:
        """How many deliveries were attempted how many times."""
        query = select(deliveries.c.attempts, func.count()).group_by(deliveries.c.attempts)
        return {int(a): int(n) for a, n in self.db.read_sync(lambda c: c.execute(query).all())}

    def add_followers(self, sink: SinkProcess, count: int) -> None:
        """``count`` accepted followers, each with its own inbox on the sink."""
        now = datetime.now(UTC)

        def unit(conn: Connection) -> None:
            for n in range(count):
                inbox = sink.inbox(n)
                follower = inbox.replace("/inbox/", "/users/")
                follows.add_follower(
                    conn,
                    actor_id=self.coop_id,
                    follower=follower,
                    follow_id=f"{follower}/follows/{n}",
                    inbox=inbox,
                    shared_inbox=None,
                    state=follows.ACCEPTED,
                    now=now,
                )

        self.db.write_sync(unit)

    def publish_to_followers(self, count: int) -> list[str]:
        """Publish ``count`` activities to every follower in one unit of work, as a
        command of the node would; returns their ids."""
        urls, now = self.urls, datetime.now(UTC)
        actor = urls.actor(self.settings.handle)
        activities = []
        for _ in range(count):
            note = f"{urls.base}/notes/{uuid.uuid4()}"
            activities.append(
                {
                    "@context": AS_CONTEXT_URL,
                    "id": urls.activity(str(uuid.uuid4())),
                    "type": "Create",
                    "actor": actor,
                    "to": [PUBLIC],
                    "cc": [urls.followers(self.settings.handle)],
                    "object": {
                        "id": note,
                        "type": "Note",
                        "attributedTo": actor,
                        "content": "The co-op's news, for every follower.",
                    },
                }
            )

        def unit(conn: Connection) -> None:
            inboxes = follows.follower_inboxes(conn, actor_id=self.coop_id)
            for activity in activities:
                outbox.publish(
                    conn, activity, actor_id=self.coop_id, inboxes=inboxes, now=now, public=True
                )

        self.db.write_sync(unit)
        return [str(a["id"]) for a in activities]


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[[Path, int, str], QueueNode]]:
    """Makes a local node (loopback allowed) on ``127.0.0.1:PORT`` with its schema and
    co-op, as ``coopnode serve`` makes a new one, on the given database."""
    opened: list[Database] = []

    def make(data_dir: Path, port: int, database_url: str) -> QueueNode:
        write_config(
            Settings(
                data_dir=data_dir,
                domain=f"127.0.0.1:{port}",
                name="Fan-out co-op",
                local=True,
                database_url=database_url,
            )
        )
        migrated = run_coopnode("migrate", "--data-dir", str(data_dir))
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        settings = load_settings(data_dir)
        db = Database(settings.database_url, readers=1)
        opened.append(db)
        coop_id = db.read_sync(lambda conn: identity.get_actor(conn, settings.handle).actor.id)
        return QueueNode(settings=settings, db=db, coop_id=coop_id)

    yield make
    for db in opened:
        db.close()


@pytest.fixture
def shared_sink() -> Iterator[SinkProcess]:
    started = start_sink(free_port(), hosts=HOSTS, delay_ms=SHARED_PEER_MS)
    try:
        yield started
    finally:
        started.stop()


def _postgres_selected() -> bool:
    # The suite's backend selection (tests/conftest.py): COOPNODE_TEST_BACKENDS.
    chosen = os.environ.get("COOPNODE_TEST_BACKENDS", "sqlite,postgres").split(",")
    return "postgres" in {b.strip() for b in chosen}


# --- several workers share the queue (PostgreSQL) ---------------------------------------

WORKERS = 3
SHARED_FOLLOWERS = 1_000
# Enough for a batch per worker, each claiming BATCH deliveries at a time.
SHARED_ACTIVITIES = -(-WORKERS * BATCH // SHARED_FOLLOWERS)
# The sink answers each POST this much later: a batch lasts longer than a worker's idle
# poll (a second), so that every worker finds work, however fast one of them is.
SHARED_PEER_MS = 200


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def ready(self) -> bool:
        return "coopnode worker:" in self.output()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_worker(data_dir: Path, log: Path) -> WorkerProcess:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*coopnode_command(), "worker", "--data-dir", str(data_dir)],
            cwd=ROOT,
            env=process_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(process=process, log=log)


def test_several_workers_share_the_queue_and_send_each_row_once(
    tmp_path: Path,
    make_node: Callable[[Path, int, str], QueueNode],
    shared_sink: SinkProcess,
    request: pytest.FixtureRequest,
) -> None:
    if not _postgres_selected():
        pytest.skip("COOPNODE_TEST_BACKENDS leaves PostgreSQL out")
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    sink = shared_sink
    node = make_node(tmp_path / "node", free_port(), cluster.create_database())
    node.add_followers(sink, SHARED_FOLLOWERS)
    expected = SHARED_FOLLOWERS * SHARED_ACTIVITIES

    workers = [
        start_worker(node.settings.data_dir, tmp_path / f"worker-{i}.log") for i in range(WORKERS)
    ]
    try:

        def logs() -> str:
            return "\n".join(
                f"--- worker {i} (exit {w.process.poll()}):\n{w.output()[-3000:]}"
                for i, w in enumerate(workers)
            )

        def all_running() -> bool | None:
            for w in workers:
                assert w.process.poll() is None, "a worker exited early\n" + logs()
                assert "Traceback" not in w.output(), "a worker failed\n" + logs()
            return all(w.ready() for w in workers) or None

        _wait_for("the workers start", all_running, timeout=30, explain=logs)
        # The activities are published while the workers poll, as a command would.
        started = time.monotonic()
        activity_ids = node.publish_to_followers(SHARED_ACTIVITIES)
        # Batches held at the same moment: each by another worker.
        batches: set[datetime] = set()
        most_at_once = 0

        def drained() -> dict[str, int] | None:
            nonlocal most_at_once
            all_running()
            held = node.claims_held()
            batches.update(held)
            most_at_once = max(most_at_once, len(held))
            summary = node.summary()
            return summary if "pending" not in summary else None

        summary = _wait_for(
            "the workers empty the queue",
            drained,
            timeout=45,
            explain=lambda: f"{node.describe(sink)}\n{logs()}",
        )
        elapsed = time.monotonic() - started
    finally:
        codes = [w.stop() for w in workers]
    stats = sink.stats()
    print(
        f"\n{WORKERS} workers, {expected} deliveries in {elapsed:.1f} s; {len(batches)} "
        f"batches seen, at most {most_at_once} held at once; sink requests {stats['requests']}"
    )

    assert codes == [0] * WORKERS, logs()
    assert "failed a round" not in logs(), logs()
    assert stats["duplicates"] == {}, "a delivery was sent twice by live workers"
    assert stats["requests"] == stats["deliveries"] == expected, stats["requests"]
    assert stats["inboxes"] == SHARED_FOLLOWERS
    assert all(sorted(got) == sorted(activity_ids) for got in stats["per_inbox"].values())
    assert summary == {"delivered": expected}
    assert node.attempts() == {1: expected}
    # A worker holds one batch at a time: as many batches at once as workers means that
    # every worker had its share.
    assert most_at_once == WORKERS, f"the work was not shared: {sorted(batches)}"


# --- SIGKILL in the middle of a fan-out ------------------------------------------------

FANOUT_FOLLOWERS = 1_000
# The sink answers each POST this much later: the fan-out lasts long enough (seconds)
# for the test to kill the node in its middle, whatever the machine's speed.
SLOW_PEER_MS = 100
KILL_AFTER = 300  # requests received by the sink


@pytest.fixture
def slow_sink() -> Iterator[SinkProcess]:
    started = start_sink(free_port(), hosts=HOSTS, delay_ms=SLOW_PEER_MS)
    try:
        yield started
    finally:
        started.stop()


def _settled(sink: SinkProcess) -> dict[str, Any]:
    """The sink's figures once it has read what a dead sender had already written."""
    last = sink.stats()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = sink.stats()
        if now["requests"] == last["requests"]:
            return now
        last = now
    raise AssertionError(f"the sink kept receiving from a dead sender: {last['requests']}")


def _token(data_dir: Path) -> str:
    created = run_coopnode("tokens", "create", "--data-dir", str(data_dir))
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def _update_profile(base: str, token: str) -> None:
    import httpx

    answer = httpx.patch(
        f"{base}/api/v1/profile",
        json={"summary": "Now delivering to a thousand followers."},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_a_node_killed_mid_fan_out_delivers_everything_once_after_restart(
    tmp_path: Path,
    make_node: Callable[[Path, int, str], QueueNode],
    database_factory: Callable[[str], str],
    slow_sink: SinkProcess,
) -> None:
    sink = slow_sink
    port = free_port()
    data_dir = tmp_path / "node"
    node = make_node(data_dir, port, database_factory("node"))
    node.add_followers(sink, FANOUT_FOLLOWERS)
    token = _token(data_dir)
    served = start_serve(data_dir, port)
    restarted = None
    try:
        served.wait_ready()
        started = time.monotonic()
        # The co-op's profile changes: an Update is published to every follower.
        _update_profile(served.base, token)

        def mid_fan_out() -> dict[str, Any] | None:
            stats = sink.stats()
            return stats if stats["requests"] >= KILL_AFTER else None

        received = _wait_for(
            f"the sink receives {KILL_AFTER} requests",
            mid_fan_out,
            timeout=45,
            explain=lambda: f"{sink.stats()['requests']} received\n{served.read_output()}",
        )
        served.process.kill()
        served.process.wait(10)
        killed_after = time.monotonic() - started
        at_kill = _settled(sink)
        queue_at_kill = node.summary()
        assert received["requests"] < FANOUT_FOLLOWERS, "the fan-out ended before the kill"
        assert at_kill["deliveries"] < FANOUT_FOLLOWERS, "the fan-out ended before the kill"
        assert queue_at_kill.get("pending", 0) > 0

        # Restarted later than the claims the killed process held expire.
        restarted = start_serve(data_dir, port, env={"COOPNODE_CLOCK_OFFSET": str(PAST_THE_CLAIMS)})
        restarted.wait_ready()
        running = restarted

        def drained() -> dict[str, int] | None:
            summary = node.summary()
            return summary if "pending" not in summary else None

        summary = _wait_for(
            "the restarted node empties the queue",
            drained,
            timeout=45,
            explain=lambda: f"{node.summary()}\n{running.read_output()[-3000:]}",
        )
        elapsed = time.monotonic() - started
    finally:
        served.stop()
        if restarted is not None:
            restarted.stop()
    stats = sink.stats()
    duplicates = stats["requests"] - stats["deliveries"]
    print(
        f"\n{node.settings.database_url.split(':')[0]}: killed after {killed_after:.1f} s with "
        f"{at_kill['requests']} requests received and {queue_at_kill} in the queue; "
        f"after the restart {stats['requests']} requests, {stats['deliveries']} distinct, "
        f"{duplicates} sent twice; {elapsed:.1f} s in all"
    )
    activity_ids = {a for got in stats["per_inbox"].values() for a in got}
    assert len(activity_ids) == 1, activity_ids
    assert summary == {"delivered": FANOUT_FOLLOWERS}
    assert stats["inboxes"] == FANOUT_FOLLOWERS, "an inbox never received the activity"
    assert stats["deliveries"] == FANOUT_FOLLOWERS, "one effect per inbox"
    # Sent twice: only rows received before the kill whose outcome was not yet recorded,
    # at most one claimed batch.
    unrecorded = at_kill["requests"] - queue_at_kill.get("delivered", 0)
    assert duplicates <= unrecorded, (duplicates, unrecorded)
    assert duplicates <= BATCH, stats["duplicates"]
    assert all(times <= 2 for times in stats["duplicates"].values()), stats["duplicates"]
