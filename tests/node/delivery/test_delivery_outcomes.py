"""What the delivery worker does with each kind of answer, and with failing domains."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from federation.delivery import RETRY_DELAYS
from node.delivery import worker as delivery_worker
from node.services import domains, outbox
from node.storage.tables import deliveries
from tests.support.network import Network, TestNode


class ScriptedPeer:
    """A peer whose inboxes answer as the test says, recording what it received."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, str]]]) -> None:
        self.answers = answers
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.hang = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append((scope["path"], headers, body))
        status, extra = self.answers.get(scope["path"], (202, {}))
        if status == 0:  # never answers
            await self.hang.wait()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def add_peer(network: Network, host: str, peer: ScriptedPeer) -> None:
    network.router.apps[host] = httpx.ASGITransport(app=peer)


async def queue(node: TestNode, *inboxes: str, n: int = 1) -> None:
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{node.base}/activities/test-{n}",
        "type": "Create",
        "actor": f"{node.base}/actors/coop",
        "object": {"id": f"{node.base}/notes/{n}", "type": "Note", "content": "hello"},
    }
    coop_id, now, policy = node.node.peers.coop_id, node.node.clock.now(), node.node.peers.policy
    await node.node.db.write(
        lambda c: outbox.publish(
            c, activity, actor_id=coop_id, inboxes=list(inboxes), now=now, policy=policy
        )
    )


async def rows(node: TestNode) -> dict[str, dict[str, Any]]:
    query = select(deliveries).order_by(deliveries.c.id)
    found = await node.node.db.read(lambda c: c.execute(query).all())
    return {r.inbox: dict(r._mapping) for r in found}


async def test_each_answer_is_handled_as_classified(network: Network) -> None:
    alpha = await network.add("alpha.test")
    peer = ScriptedPeer(
        {
            "/gone": (410, {}),
            "/busy": (429, {"Retry-After": "3600"}),
            "/broken": (500, {}),
            "/refuses": (403, {}),
        }
    )
    add_peer(network, "peer.test", peer)
    inboxes = [f"https://peer.test/{p}" for p in ("ok", "gone", "busy", "broken", "refuses")]
    await queue(alpha, *inboxes)
    now = network.clock.now()

    assert await delivery_worker.run_once(alpha.node) == 5
    found = await rows(alpha)

    assert found["https://peer.test/ok"]["state"] == "delivered"
    assert found["https://peer.test/gone"]["state"] == "failed"
    assert "410" in found["https://peer.test/gone"]["last_error"]
    assert found["https://peer.test/refuses"]["state"] == "failed"
    busy, broken = found["https://peer.test/busy"], found["https://peer.test/broken"]
    assert (busy["state"], busy["next_attempt_at"]) == ("pending", now + timedelta(hours=1))
    assert (broken["state"], broken["next_attempt_at"]) == ("pending", now + RETRY_DELAYS[0])
    # Each POST was signed by the co-op, with the activity as body.
    _, headers, body = peer.received[0]
    assert 'keyId="https://alpha.test/actors/coop#main-key"' in headers["signature"]
    assert json.loads(body)["id"] == "https://alpha.test/activities/test-1"


async def test_a_retry_happens_when_due_and_not_before(network: Network) -> None:
    alpha = await network.add("alpha.test")
    peer = ScriptedPeer({"/inbox": (503, {})})
    add_peer(network, "peer.test", peer)
    await queue(alpha, "https://peer.test/inbox")
    await delivery_worker.run_once(alpha.node)

    assert await delivery_worker.run_once(alpha.node) == 0  # not due yet
    peer.answers["/inbox"] = (202, {})
    network.clock.advance(RETRY_DELAYS[0])
    assert await delivery_worker.run_once(alpha.node) == 1

    assert (await rows(alpha))["https://peer.test/inbox"]["state"] == "delivered"
    assert len(peer.received) == 2


async def test_a_peer_that_never_answers_times_out_and_is_retried(network: Network) -> None:
    alpha = await network.add("alpha.test")
    peer = ScriptedPeer({"/inbox": (0, {})})
    add_peer(network, "peer.test", peer)
    await queue(alpha, "https://peer.test/inbox")
    alpha.node.settings = replace(alpha.node.settings, http_timeout=0.2)
    try:
        await delivery_worker.run_once(alpha.node)
    finally:
        peer.hang.set()

    row = (await rows(alpha))["https://peer.test/inbox"]
    assert row["state"] == "pending"
    assert "no answer" in row["last_error"]


async def test_deliveries_give_up_after_the_last_retry(network: Network) -> None:
    alpha = await network.add("alpha.test")
    add_peer(network, "peer.test", ScriptedPeer({"/inbox": (500, {})}))
    await queue(alpha, "https://peer.test/inbox")

    for delay in (*RETRY_DELAYS, timedelta(0)):
        await delivery_worker.run_once(alpha.node)
        network.clock.advance(delay)
        # An unavailable domain is probed less often: keep it available for this test.
        await alpha.node.db.write(
            lambda c: domains.record_success(c, "peer.test", now=network.clock.now())
        )

    row = (await rows(alpha))["https://peer.test/inbox"]
    assert row["state"] == "failed"
    assert row["attempts"] == len(RETRY_DELAYS) + 1
    assert "gave up" in row["last_error"]


async def test_a_domain_failing_for_a_day_is_marked_unavailable_then_cleared(
    network: Network,
) -> None:
    from tests.node.web.test_inbox import note_activity, post

    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    network.router.apps["beta.test"], real = (
        httpx.ASGITransport(app=ScriptedPeer({"/inbox": (502, {})})),
        network.router.apps["beta.test"],
    )
    await queue(alpha, "https://beta.test/inbox")
    for delay in (timedelta(hours=12), timedelta(hours=13)):
        await alpha.node.db.write(
            lambda c: c.execute(deliveries.update().values(next_attempt_at=network.clock.now()))
        )
        await delivery_worker.run_once(alpha.node)
        network.clock.advance(delay)
    await alpha.node.db.write(
        lambda c: c.execute(deliveries.update().values(next_attempt_at=network.clock.now()))
    )
    await delivery_worker.run_once(alpha.node)
    await delivery_worker.refresh_domains(alpha.node)

    assert "beta.test" in alpha.node.peers.policy.unavailable
    row = (await rows(alpha))["https://beta.test/inbox"]
    assert row["next_attempt_at"] == network.clock.now() + domains.UNAVAILABLE_PROBE

    # beta is back and signs a request to alpha: the domain is cleared, its queue due.
    network.router.apps["beta.test"] = real
    assert (await post(network, beta, alpha, note_activity(beta))).status_code == 202
    assert "beta.test" not in alpha.node.peers.policy.unavailable
    assert await delivery_worker.run_once(alpha.node) == 1
    assert (await rows(alpha))["https://beta.test/inbox"]["state"] == "delivered"


async def test_blocked_domains_are_not_queued_and_queued_ones_are_dropped(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    peer = ScriptedPeer({})
    add_peer(network, "peer.test", peer)
    add_peer(network, "spam.test", peer)
    await queue(alpha, "https://peer.test/inbox", n=1)
    await alpha.decide_domain("peer.test", "blocked")
    await alpha.decide_domain("spam.test", "blocked")
    await queue(alpha, "https://spam.test/inbox", n=2)

    await delivery_worker.run_once(alpha.node)

    found = await rows(alpha)
    assert found["https://peer.test/inbox"]["state"] == "dropped"
    assert "https://spam.test/inbox" not in found
    assert peer.received == []


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "169.254.169.254"])
async def test_an_inbox_on_a_private_address_is_given_up_not_contacted(
    network: Network, host: str
) -> None:
    from federation.poster import GuardedPoster, poster_for
    from node.runtime import make_http_client
    from node.settings import Settings

    alpha = await network.add("alpha.test")
    settings = Settings(data_dir=network.root, domain="alpha.test", name="x")
    async with make_http_client(settings) as guarded:
        # The node's guarded client, as production builds it, delivers on its own connections.
        alpha.node.poster, network_poster = poster_for(guarded), alpha.node.poster
        assert isinstance(alpha.node.poster, GuardedPoster)
        await queue(alpha, f"http://{host}:9/inbox")
        await delivery_worker.run_once(alpha.node)
    alpha.node.poster = network_poster

    row = (await rows(alpha))[f"http://{host}:9/inbox"]
    assert row["state"] == "failed"
    assert "forbidden address" in row["last_error"]
