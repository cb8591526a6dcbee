"""Delivery faults with real processes: a receiver that goes away and comes back with the
clock moved on, and peers that answer 410, 429, 500 or nothing at all.

Time is moved with ``COOPNODE_CLOCK_OFFSET`` (processes restarted to take it), never by
sleeping: a retry due in two hours is sent as soon as the nodes run two hours ahead.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from node.settings import load_settings
from node.storage.database import Database
from node.storage.tables import (
    deliveries,
    domains,
    followers,
    following,
    inbox_activities,
    outbox_activities,
    remote_actors,
)
from tests.support.processes import ServeProcess, free_port, run_coopnode, start_serve
from tests.support.scripted_peer import ScriptedPeerProcess, start_scripted_peer

pytestmark = pytest.mark.e2e

T = TypeVar("T")


def read(data_dir: Path, fn: Callable[[Connection], T]) -> T:
    """Read a node's database from the test process (SQLite in WAL mode allows it)."""
    db = Database(load_settings(data_dir).database_url, readers=1)
    try:
        return db.read_sync(fn)
    finally:
        db.close()


def rows(data_dir: Path, query: Select[Any]) -> list[dict[str, Any]]:
    return read(data_dir, lambda conn: [dict(r._mapping) for r in conn.execute(query)])


def wait_for(condition: Callable[[], bool], timeout: float, explain: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s:\n{explain()}")
        time.sleep(0.1)


def cli(*args: str, node: ServeProcess) -> str:
    done = run_coopnode(*args, "--data-dir", str(node.data_dir))
    assert done.returncode == 0, done.stdout + done.stderr + node.read_output()
    return done.stdout


def clis(*calls: tuple[ServeProcess, tuple[str, ...]]) -> list[str]:
    """Several commands at once (each costs a Python start-up): their outputs, in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: cli(*call[1], node=call[0]), calls))


def pending_deliveries(data_dir: Path) -> list[dict[str, Any]]:
    return rows(data_dir, select(deliveries).where(deliveries.c.state == "pending"))


# --- a receiver down, then back with the clock moved on ------------------------------

TWO_HOURS = {"COOPNODE_CLOCK_OFFSET": str(int(timedelta(hours=2).total_seconds()))}


@pytest.fixture
def started() -> Iterator[list[ServeProcess]]:
    """Processes a test starts (restarts included), all stopped at its end."""
    processes: list[ServeProcess] = []
    yield processes
    for process in reversed(processes):
        process.stop()


def test_a_receiver_back_hours_later_gets_each_activity_once(
    tmp_path: Path, started: list[ServeProcess]
) -> None:
    a = start_serve(tmp_path / "a")
    b = start_serve(tmp_path / "b")
    started += [a, b]
    a.wait_ready()
    b.wait_ready()
    a_actor, b_actor = f"{a.base}/actors/coop", f"{b.base}/actors/coop"
    followed = clis(
        (a, ("follow", f"coop@127.0.0.1:{b.port}")), (b, ("follow", f"coop@127.0.0.1:{a.port}"))
    )
    assert all("accepted" in out for out in followed), followed

    # B goes away. A stops following it and follows it again (an Undo(Follow) and a new
    # Follow, by actor URL: A keeps B's document, B's WebFinger is down) and renames
    # itself (an Update to its followers, B among them).
    b.stop()
    cli("unfollow", b_actor, node=a)
    cli("follow", b_actor, "--wait", "0", node=a)
    assert "sent to 1 inbox" in cli("profile", "--name", "Renamed co-op", node=a)
    wait_for(
        lambda: sum(r["attempts"] > 0 for r in pending_deliveries(a.data_dir)) == 3,
        15,
        lambda: f"{pending_deliveries(a.data_dir)}\n{a.read_output()}",
    )
    queued = pending_deliveries(a.data_dir)
    summary = cli("deliveries", node=a)

    assert {r["host"] for r in queued} == {"127.0.0.1"}
    assert all(r["inbox"].startswith(f"{b.base}/") for r in queued)
    assert all(r["last_status"] is None and "no answer" in r["last_error"] for r in queued)
    assert "Queue: 3 pending, 2 delivered, 0 failed" in summary
    assert "Failing peers:\n  127.0.0.1: 3 waiting, 1 attempts, next " in summary
    # The reason shown is the latest failure's (whichever of the three came last).
    assert any(f"UTC: {r['last_error']}\n" in summary for r in queued)

    # B comes back; A and B run two hours ahead, past the next retry (1 minute), so A
    # sends its queue at once. Both move together: B checks the date A signs with.
    a.stop()
    b = start_serve(b.data_dir, b.port, env=TWO_HOURS)
    started.append(b)
    b.wait_ready()
    a = start_serve(a.data_dir, a.port, env=TWO_HOURS)
    started.append(a)
    a.wait_ready()
    sent = rows(a.data_dir, select(outbox_activities).order_by(outbox_activities.c.id))
    from_a = select(inbox_activities).where(inbox_activities.c.actor == a_actor)

    def settled() -> bool:
        handled = [r for r in rows(b.data_dir, from_a) if r["state"] != "pending"]
        return (
            len(handled) == len(sent)
            and not pending_deliveries(a.data_dir)
            and not pending_deliveries(b.data_dir)
        )

    wait_for(
        settled,
        30,
        lambda: (
            f"A: {pending_deliveries(a.data_dir)}\nB: {pending_deliveries(b.data_dir)}\n"
            f"{rows(b.data_dir, from_a)}\n{a.read_output()}\n{b.read_output()}"
        ),
    )
    arrived = rows(b.data_dir, from_a)
    resent = rows(
        a.data_dir,
        select(deliveries.c.state, deliveries.c.attempts, outbox_activities.c.type)
        .join(outbox_activities, outbox_activities.c.id == deliveries.c.activity_pk)
        .where(deliveries.c.id.in_([r["id"] for r in queued])),
    )
    b_followers = rows(b.data_dir, select(followers))
    a_following = rows(a.data_dir, select(following))
    a_seen_by_b = rows(b.data_dir, select(remote_actors).where(remote_actors.c.uri == a_actor))
    collection = httpx.get(
        f"{b.base}/actors/coop/followers", headers={"Accept": "application/activity+json"}
    ).json()
    b_listed, summary, a_domains = clis(
        (b, ("followers", "list")), (a, ("deliveries",)), (a, ("domains", "list"))
    )

    # A sent its Follow and its Accept of B's (in either order: the two follows ran at
    # once), then what B missed.
    types = [r["type"] for r in sent]
    assert sorted(types[:2]) == ["Accept", "Follow"]
    assert types[2:] == ["Undo", "Follow", "Update"]
    new_follow = sent[3]["activity_id"]
    # Every activity arrived once and was handled.
    assert Counter(r["activity_id"] for r in arrived) == Counter(r["activity_id"] for r in sent)
    assert {r["state"] for r in arrived} == {"done"}
    # What B missed went out once each: one failed attempt while B was down, one success.
    assert sorted((r["type"], r["state"], r["attempts"]) for r in resent) == [
        ("Follow", "delivered", 2),
        ("Undo", "delivered", 2),
        ("Update", "delivered", 2),
    ]
    # Each took effect once: A follows B again, under the new Follow, counted once...
    assert [(r["follower"], r["state"], r["follow_id"]) for r in b_followers] == [
        (a_actor, "accepted", new_follow)
    ]
    assert collection["totalItems"] == 1
    assert b_listed == f"accepted\t{b_followers[0]['created_at']:%Y-%m-%d %H:%M}\t{a_actor}\n"
    assert [(r["followed"], r["state"], r["follow_id"]) for r in a_following] == [
        (b_actor, "accepted", new_follow)
    ]
    # ... and B shows A under its new name.
    assert json.loads(a_seen_by_b[0]["document"])["name"] == "Renamed co-op"
    assert summary.startswith(f"Queue: 0 pending, {len(sent)} delivered, 0 failed, 0 dropped\n")
    assert "Failing peers" not in summary
    assert a_domains == "127.0.0.1\t-\t-\t\n"  # healthy again


# --- peers answering 410, 429, 500 and nothing ---------------------------------------

# Each scripted peer on its own loopback address: a host of its own to the node, with
# its own delivery health (the node tells hosts apart by name, not by port).
PEER_HOSTS = {"410": "127.0.3.1", "429": "127.0.3.2", "500": "127.0.3.3", "hang": "127.0.3.4"}
RETRY_AFTER = 120
HTTP_TIMEOUT = {"COOPNODE_HTTP_TIMEOUT": "1"}
# Past the first retry (1 minute) and the Retry-After (2 minutes), before the second
# retry (5 minutes).
MOVED = timedelta(seconds=150)


@dataclass(frozen=True)
class Snapshot:
    """What the node and the peers show after a round of attempts."""

    # The node's time bounds of the round: every attempt was made between them.
    earliest: datetime
    latest: datetime
    rows: dict[str, dict[str, Any]]  # per answer, the delivery of the Follow
    domains: dict[str, dict[str, Any]]  # per answer, the peer's domain row (if any)
    posts: dict[str, int]  # per answer, the POSTs the peer received
    signed: dict[str, int]
    deliveries_output: str
    domains_output: str

    def next_attempt_within(self, answer: str, wait: timedelta) -> bool:
        due = self.rows[answer]["next_attempt_at"]
        return bool(self.earliest + wait <= due <= self.latest + wait)


@dataclass(frozen=True)
class FaultDrill:
    peers: dict[str, ScriptedPeerProcess]
    first: Snapshot  # after the first attempt
    moved: Snapshot  # after the node restarted with its clock MOVED on


def snapshot(
    node: ServeProcess,
    peers: dict[str, ScriptedPeerProcess],
    earliest: datetime,
    offset: timedelta,
) -> Snapshot:
    by_host = {host: answer for answer, host in PEER_HOSTS.items()}
    found = rows(node.data_dir, select(deliveries))
    health = rows(node.data_dir, select(domains))
    stats = {answer: peer.stats() for answer, peer in peers.items()}
    deliveries_output, domains_output = clis((node, ("deliveries",)), (node, ("domains", "list")))
    return Snapshot(
        earliest=earliest,
        latest=datetime.now(UTC) + offset,
        rows={by_host[r["host"]]: r for r in found},
        domains={by_host[r["host"]]: r for r in health if r["host"] in by_host},
        posts={answer: s["posts"] for answer, s in stats.items()},
        signed={answer: s["signed"] for answer, s in stats.items()},
        deliveries_output=deliveries_output,
        domains_output=domains_output,
    )


def attempted(node: ServeProcess, times: int, answers: list[str]) -> Callable[[], bool]:
    hosts = {PEER_HOSTS[a] for a in answers}

    def check() -> bool:
        found = rows(node.data_dir, select(deliveries.c.host, deliveries.c.attempts))
        return {r["host"] for r in found if r["attempts"] >= times} >= hosts

    return check


@pytest.fixture(scope="module")
def fault_drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultDrill]:
    """One node follows four scripted peers; each answers its Follow its way. Then the
    node restarts with its clock moved on, so that what is due is tried again."""
    data_dir = tmp_path_factory.mktemp("faults") / "node"
    processes: list[ServeProcess | ScriptedPeerProcess] = []
    try:
        node = start_serve(data_dir, env=HTTP_TIMEOUT)
        processes.append(node)
        peers: dict[str, ScriptedPeerProcess] = {}
        for answer, host in PEER_HOSTS.items():
            retry_after = RETRY_AFTER if answer == "429" else None
            peers[answer] = start_scripted_peer(
                answer, host=host, port=free_port(), retry_after=retry_after
            )
            processes.append(peers[answer])
        node.wait_ready()

        earliest = datetime.now(UTC)
        sent = clis(*((node, ("follow", peer.acct, "--wait", "0")) for peer in peers.values()))
        assert all(out.startswith("Follow sent to ") for out in sent), sent
        wait_for(attempted(node, 1, list(PEER_HOSTS)), 15, node.read_output)
        first = snapshot(node, peers, earliest, timedelta(0))

        node.stop()
        earliest = datetime.now(UTC) + MOVED
        env = {**HTTP_TIMEOUT, "COOPNODE_CLOCK_OFFSET": str(MOVED.total_seconds())}
        node = start_serve(data_dir, node.port, env=env)
        processes.append(node)
        node.wait_ready()
        wait_for(attempted(node, 2, ["429", "500", "hang"]), 15, node.read_output)
        moved = snapshot(node, peers, earliest, MOVED)

        yield FaultDrill(peers=peers, first=first, moved=moved)
    finally:
        for process in reversed(processes):
            process.stop()


def test_a_peer_answering_410_is_given_up_at_once(fault_drill: FaultDrill) -> None:
    first, moved = fault_drill.first, fault_drill.moved
    row = first.rows["410"]

    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 1, 410)
    assert row["last_error"] == "HTTP 410: gone for good"
    assert "1 failed" in first.deliveries_output
    # Gone is an answer, not an outage: the domain is not failing.
    assert first.domains.get("410", {}).get("failing_since") is None
    # Never tried again, even with the clock moved past every retry that was due.
    assert (first.posts["410"], moved.posts["410"]) == (1, 1)
    assert moved.rows["410"] == row


def test_a_peer_answering_429_is_retried_after_its_retry_after(fault_drill: FaultDrill) -> None:
    first, moved = fault_drill.first, fault_drill.moved
    row = first.rows["429"]

    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, 429)
    assert row["last_error"] == "HTTP 429, to retry"
    # Retry-After (2 minutes) wins over the first step of the schedule (1 minute).
    assert first.next_attempt_within("429", timedelta(seconds=RETRY_AFTER))
    # A busy peer is not a failing one.
    assert first.domains.get("429", {}).get("failing_since") is None
    assert f"{PEER_HOSTS['429']}\t-\tfailing" not in first.domains_output
    assert moved.domains.get("429", {}).get("failing_since") is None
    # Tried again once it was due, then on the schedule (5 minutes).
    assert (first.posts["429"], moved.posts["429"]) == (1, 2)
    assert (moved.rows["429"]["state"], moved.rows["429"]["attempts"]) == ("pending", 2)
    assert moved.next_attempt_within("429", timedelta(minutes=5))


def test_a_peer_answering_500_is_retried_on_the_schedule(fault_drill: FaultDrill) -> None:
    first, moved = fault_drill.first, fault_drill.moved
    row = first.rows["500"]
    host = PEER_HOSTS["500"]

    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, 500)
    assert row["last_error"] == "HTTP 500, to retry"
    assert first.next_attempt_within("500", timedelta(minutes=1))
    # The host is failing, with the reason, in the domains and in the queue summary.
    assert first.domains["500"]["failing_since"] is not None
    assert first.domains["500"]["unavailable"] == 0
    assert f"{host}\t-\tfailing\tHTTP 500, to retry" in first.domains_output
    assert f"  {host}: 1 waiting, 1 attempts, next " in first.deliveries_output
    assert "UTC: HTTP 500, to retry" in first.deliveries_output
    # Tried again after a minute, then after five more.
    assert (first.posts["500"], moved.posts["500"]) == (1, 2)
    assert (moved.rows["500"]["state"], moved.rows["500"]["attempts"]) == ("pending", 2)
    assert moved.next_attempt_within("500", timedelta(minutes=5))
    assert moved.domains["500"]["failing_since"] == first.domains["500"]["failing_since"]


def test_a_peer_that_never_answers_times_out_and_is_retried(fault_drill: FaultDrill) -> None:
    first, moved = fault_drill.first, fault_drill.moved
    row = first.rows["hang"]
    host = PEER_HOSTS["hang"]

    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, None)
    assert row["last_error"] == "no answer: no answer within 1 s"
    assert first.next_attempt_within("hang", timedelta(minutes=1))
    assert f"{host}\t-\tfailing\tno answer: no answer within 1 s" in first.domains_output
    assert (first.posts["hang"], moved.posts["hang"]) == (1, 2)
    assert moved.next_attempt_within("hang", timedelta(minutes=5))


def test_every_attempt_was_signed(fault_drill: FaultDrill) -> None:
    assert fault_drill.moved.signed == fault_drill.moved.posts


# --- the drill knob itself -----------------------------------------------------------


@pytest.mark.parametrize("offset", ["two hours", "nan", "1e12"])
def test_an_unreadable_clock_offset_stops_coopnode_before_it_starts(
    tmp_path: Path, offset: str
) -> None:
    data_dir = tmp_path / "node"
    served = run_coopnode(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(data_dir),
        env={"COOPNODE_CLOCK_OFFSET": offset},
        timeout=20,
    )

    assert served.returncode != 0
    assert f"Error: COOPNODE_CLOCK_OFFSET={offset!r}" in served.stderr
    assert "Traceback" not in served.stderr
    assert not data_dir.exists()
