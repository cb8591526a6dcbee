"""The federation as the admin's page reads it: the follows both ways with the peers'
names, the domains decided, and each peer's health, failing ones first."""

from __future__ import annotations

from typing import Any

from node.follows import actions, overview
from node.follows import store as follows
from node.services import domains, outbox
from tests.support.network import Network


async def test_the_follows_are_shown_with_names_and_the_decisions_by_domain(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test", name="Alpha Market")
    beta = await network.add("beta.test", name="Beta Farm")
    await network.add("gamma.test", name="Gamma", follow_policy="approve")
    await actions.follow(alpha.node, "coop@beta.test")
    await actions.follow(alpha.node, "coop@gamma.test")
    await actions.follow(beta.node, "coop@alpha.test")
    await network.settle()
    node = alpha.node
    now = node.clock.now()
    await node.db.write(
        lambda c: domains.set_policy(c, "spam.test", domains.BLOCKED, reason="spam", now=now)
    )

    view = await node.db.read(lambda c: overview.read_federation(c, node.peers.coop_id))

    states = {f.followed: f.state for f in view.following}
    assert states == {
        "https://beta.test/actors/coop": follows.ACCEPTED,
        "https://gamma.test/actors/coop": follows.PENDING,
    }
    assert [f.follower for f in view.accepted] == ["https://beta.test/actors/coop"]
    assert view.pending == []
    assert view.name("https://beta.test/actors/coop") == "Beta Farm (coop@beta.test)"
    assert view.name("https://nowhere.test/actors/x") == "https://nowhere.test/actors/x"
    assert [(d.host, d.policy, d.reason) for d in view.policies] == [
        ("spam.test", domains.BLOCKED, "spam")
    ]
    assert {p.host for p in view.peers} >= {"beta.test", "gamma.test"}
    assert not view.importing


async def test_peers_are_listed_unavailable_then_failing_with_what_waits(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    node = coop.node
    now = node.clock.now()

    def queue(conn: Any) -> None:
        outbox.publish(
            conn,
            {"id": "https://alpha.test/activities/1", "type": "Update"},
            actor_id=node.peers.coop_id,
            inboxes=["https://down.test/inbox", "https://new.test/inbox"],
            now=now,
        )
        domains.record_failure(conn, "gone.test", "refused", now=now - domains.UNAVAILABLE_AFTER)
        domains.record_failure(conn, "gone.test", "refused", now=now)
        domains.record_failure(conn, "down.test", "HTTP 500", now=now)
        domains.record_failure(conn, "back.test", "HTTP 502", now=now)
        domains.record_success(conn, "back.test", now=now)

    await node.db.write(queue)

    peers = await node.db.read(overview.peer_health)

    assert [(p.host, p.unavailable, p.failing, p.waiting) for p in peers] == [
        ("gone.test", True, True, 0),
        ("down.test", False, True, 1),
        ("back.test", False, False, 0),
        ("new.test", False, False, 1),
    ]
    assert peers[1].last_error == "HTTP 500"
    assert peers[2].last_success_at == now
