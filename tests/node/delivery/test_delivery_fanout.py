"""One activity to many followers, through the delivery worker and real sockets.

The inboxes are a recording sink (:mod:`tests.support.sink`) on loopback addresses,
each a host of its own; the node sends through the poster production uses (its own
connections behind the address guard, loopback allowed as for a local node).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from federation.netguard import GuardedBackend
from federation.poster import GuardedPoster
from node.delivery import worker as delivery_worker
from node.follows import store as follows
from node.services import outbox
from node.storage.tables import deliveries, followers
from tests.support.network import Network, TestNode
from tests.support.processes import free_port
from tests.support.sink import SinkProcess, start_sink

HOSTS = 50


@pytest.fixture
def sink() -> Iterator[SinkProcess]:
    started = start_sink(free_port(), hosts=HOSTS)
    try:
        yield started
    finally:
        started.stop()


async def add_followers(node: TestNode, count: int, inbox: Any, shared_inbox: Any = None) -> None:
    now = node.node.clock.now()
    rows = []
    for n in range(count):
        own = inbox(n)
        actor = own.rsplit("/inbox/", 1)[0] + f"/users/{n}"
        rows.append(
            {
                "actor_id": node.node.peers.coop_id,
                "follower": actor,
                "host": httpx.URL(actor).host,
                "follow_id": f"{actor}/follows/1",
                "state": follows.ACCEPTED,
                "inbox": own,
                "shared_inbox": shared_inbox(n) if shared_inbox else None,
                "created_at": now,
                "accepted_at": now,
            }
        )
    await node.node.db.write(lambda conn: conn.execute(followers.insert(), rows))


async def publish_to_followers(node: TestNode) -> int:
    """One Create to every follower, as features publish: returns the POSTs queued."""
    coop_id, now, policy = node.node.peers.coop_id, node.node.clock.now(), node.node.peers.policy
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{node.base}/activities/fan-out",
        "type": "Create",
        "actor": f"{node.base}/actors/coop",
        "object": {"id": f"{node.base}/notes/1", "type": "Note", "content": "hello"},
    }

    def publish(conn: Any) -> int:
        inboxes = follows.follower_inboxes(conn, actor_id=coop_id)
        return outbox.publish(
            conn, activity, actor_id=coop_id, inboxes=inboxes, now=now, policy=policy
        )

    return int(await node.node.db.write(publish))


async def deliver_all(node: TestNode, *, limit: int = delivery_worker.BATCH) -> int:
    rounds = 0
    while await delivery_worker.run_once(node.node, limit=limit):
        rounds += 1
    return rounds


async def states(node: TestNode) -> dict[str, int]:
    return dict(await node.node.db.read(outbox.queue_summary))


def over_loopback(node: TestNode) -> None:
    node.node.poster = GuardedPoster(guard=GuardedBackend(allow_loopback=True))


async def test_followers_behind_shared_inboxes_cost_one_post_per_server(
    network: Network, sink: SinkProcess
) -> None:
    alpha = await network.add("alpha.test")
    over_loopback(alpha)

    def shared_inbox(n: int) -> str:
        return sink.inbox(n).rsplit("/inbox/", 1)[0] + "/inbox"

    await add_followers(alpha, 5_000, sink.inbox, shared_inbox)

    assert await publish_to_followers(alpha) == HOSTS
    await deliver_all(alpha)

    stats = sink.stats()
    assert stats["requests"] == HOSTS
    assert stats["signed"] == HOSTS
    assert stats["inboxes"] == HOSTS
    assert stats["duplicates"] == {}
    assert all(inbox.endswith(f":{sink.port}/inbox") for inbox in stats["per_inbox"])
    assert await states(alpha) == {"delivered": HOSTS}


async def test_every_follower_inbox_gets_the_activity_once(
    network: Network, sink: SinkProcess
) -> None:
    alpha = await network.add("alpha.test")
    over_loopback(alpha)
    await add_followers(alpha, 600, sink.inbox)

    assert await publish_to_followers(alpha) == 600
    assert await deliver_all(alpha, limit=250) == 3

    stats = sink.stats()
    assert (stats["requests"], stats["inboxes"], stats["deliveries"]) == (600, 600, 600)
    assert stats["signed"] == 600
    assert stats["duplicates"] == {}
    assert await states(alpha) == {"delivered": 600}


class GatedPeer:
    """Answers 202 at once, except on /slow, which answers when the gate opens."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        if scope["path"] == "/slow":
            await self.gate.wait()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_outcomes_are_written_while_a_send_is_still_out(network: Network) -> None:
    alpha = await network.add("alpha.test")
    peer = GatedPeer()
    network.router.apps["peer.test"] = httpx.ASGITransport(app=peer)
    now: datetime = alpha.node.clock.now()
    inboxes = [f"https://peer.test/{n}" for n in range(149)] + ["https://peer.test/slow"]
    activity = {"id": f"{alpha.base}/activities/1", "type": "Create", "actor": "x"}
    coop_id = alpha.node.peers.coop_id
    await alpha.node.db.write(
        lambda c: outbox.publish(c, activity, actor_id=coop_id, inboxes=inboxes, now=now)
    )
    delivered = select(func.count()).where(deliveries.c.state == "delivered")

    round_ = asyncio.create_task(delivery_worker.run_once(alpha.node))
    try:
        for _ in range(200):
            if await alpha.node.db.read(lambda c: c.execute(delivered).scalar_one()) == 149:
                break
            await asyncio.sleep(0.02)
        # A worker dying now would leave one send to make again, not the round's 150.
        assert await alpha.node.db.read(lambda c: c.execute(delivered).scalar_one()) == 149
        assert not round_.done()
    finally:
        peer.gate.set()
    assert await round_ == 150
    assert await states(alpha) == {"delivered": 150}


async def test_sends_that_end_during_a_write_are_written_too(network: Network) -> None:
    alpha = await network.add("alpha.test")
    network.router.apps["peer.test"] = httpx.ASGITransport(app=GatedPeer())
    inboxes = [f"https://peer.test/{n}" for n in range(150)]
    activity = {"id": f"{alpha.base}/activities/1", "type": "Create", "actor": "x"}
    coop_id, now = alpha.node.peers.coop_id, alpha.node.clock.now()
    await alpha.node.db.write(
        lambda c: outbox.publish(c, activity, actor_id=coop_id, inboxes=inboxes, now=now)
    )
    db = alpha.node.db
    write = db.write

    async def slow_write(unit: Any) -> Any:
        await asyncio.sleep(0.2)  # the round's last sends end meanwhile
        return await write(unit)

    db.write = slow_write  # type: ignore[method-assign]
    try:
        assert await delivery_worker.run_once(alpha.node) == 150
    finally:
        db.write = write  # type: ignore[method-assign]

    assert await states(alpha) == {"delivered": 150}


@pytest.fixture
def slow_sink() -> Iterator[SinkProcess]:
    """Three hosts that answer each POST 100 ms after it came."""
    started = start_sink(free_port(), hosts=3, delay_ms=100)
    try:
        yield started
    finally:
        started.stop()


async def fanning_out(network: Network, sink: SinkProcess) -> TestNode:
    """A node with 60 followers on the sink (20 on each host) and an activity queued to
    them all."""
    alpha = await network.add("alpha.test")
    over_loopback(alpha)
    await add_followers(alpha, 60, sink.inbox)
    await publish_to_followers(alpha)
    return alpha


async def test_a_host_takes_at_most_four_sends_at_once(
    network: Network, slow_sink: SinkProcess
) -> None:
    alpha = await fanning_out(network, slow_sink)

    assert await delivery_worker.run_once(alpha.node) == 60

    stats = slow_sink.stats()
    assert stats["deliveries"] == 60
    # Each host as busy as it may be, and no busier: every host's sends at once.
    assert stats["most_open"] == {slow_sink.host(n): delivery_worker.PER_HOST for n in range(3)}
    assert stats["most_open_in_all"] == 3 * delivery_worker.PER_HOST
    assert await states(alpha) == {"delivered": 60}


async def test_a_worker_has_at_most_its_limit_of_sends_out(
    network: Network, slow_sink: SinkProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_worker, "IN_FLIGHT", 6)
    alpha = await fanning_out(network, slow_sink)

    assert await delivery_worker.run_once(alpha.node) == 60

    stats = slow_sink.stats()
    assert stats["deliveries"] == 60
    assert stats["most_open_in_all"] == 6
    assert max(stats["most_open"].values()) <= delivery_worker.PER_HOST
    assert await states(alpha) == {"delivered": 60}


async def test_a_round_cancelled_leaves_no_send_behind(
    network: Network, slow_sink: SinkProcess
) -> None:
    alpha = await fanning_out(network, slow_sink)
    before = asyncio.all_tasks()

    round_ = asyncio.create_task(delivery_worker.run_once(alpha.node))
    for _ in range(100):
        if slow_sink.stats()["requests"]:
            break
        await asyncio.sleep(0.01)
    round_.cancel()
    with pytest.raises(asyncio.CancelledError):
        await round_

    # The worker stopping mid-round leaves none of the round's senders running.
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()
    sent = slow_sink.stats()["requests"]
    await asyncio.sleep(0.3)
    assert slow_sink.stats()["requests"] == sent
    # What was not recorded stays claimed, for a later round once the claim expires.
    assert await states(alpha) == {"pending": 60}
