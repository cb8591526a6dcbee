"""Following between co-ops, end to end through real apps, signatures and the outbox."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from node.delivery import worker as delivery_worker
from node.errors import NotFound
from node.follows import actions
from node.follows import store as follows
from node.inbox import worker as inbox_worker
from node.services import domains, remote_actors
from node.storage.tables import deliveries, inbox_activities
from tests.support.network import Network, TestNode


async def followers_of(node: TestNode, state: str | None = follows.ACCEPTED) -> list[str]:
    coop_id = node.node.peers.coop_id
    rows = await node.node.db.read(
        lambda c: follows.list_followers(c, actor_id=coop_id, state=state)
    )
    return [r.follower for r in rows]


async def following_of(node: TestNode, state: str | None = None) -> list[tuple[str, str]]:
    coop_id = node.node.peers.coop_id
    rows = await node.node.db.read(
        lambda c: follows.list_following(c, actor_id=coop_id, state=state)
    )
    return [(r.followed, r.state) for r in rows]


def coop(node: TestNode) -> str:
    return f"{node.base}/actors/coop"


async def delivery_states(node: TestNode) -> list[str]:
    query = select(deliveries.c.state).order_by(deliveries.c.id)
    return list(await node.node.db.read(lambda c: c.execute(query).scalars().all()))


async def test_a_follow_is_accepted_automatically_and_both_sides_agree(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")

    result = await actions.follow(alpha.node, "coop@beta.test")
    assert result.sent
    assert await following_of(alpha) == [(coop(beta), "pending")]

    await network.settle()

    assert await following_of(alpha) == [(coop(beta), "accepted")]
    assert await followers_of(beta) == [coop(alpha)]
    assert await delivery_states(alpha) == ["delivered"]  # the Follow
    assert await delivery_states(beta) == ["delivered"]  # the Accept


async def test_following_twice_sends_one_follow(network: Network) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")

    first = await actions.follow(alpha.node, "coop@beta.test")
    second = await actions.follow(alpha.node, "https://beta.test/actors/coop")

    assert not second.sent
    assert second.follow_id == first.follow_id
    assert len(await delivery_states(alpha)) == 1


async def test_an_admin_who_approves_follows_holds_them_until_approved(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test", follow_policy="approve")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()

    assert await followers_of(beta, state=follows.PENDING) == [coop(alpha)]
    assert await followers_of(beta) == []
    assert await following_of(alpha) == [(coop(beta), "pending")]

    await actions.answer_follower(beta.node, coop(alpha), accept=True)
    await network.settle()

    assert await followers_of(beta) == [coop(alpha)]
    assert await following_of(alpha) == [(coop(beta), "accepted")]


async def test_a_refused_follower_is_told_and_removed(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test", follow_policy="approve")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()

    await actions.answer_follower(beta.node, coop(alpha), accept=False)
    await network.settle()

    assert await followers_of(beta, state=None) == []
    assert await following_of(alpha) == [(coop(beta), "rejected")]


async def test_listed_mode_accepts_allowed_domains_and_rejects_the_rest(network: Network) -> None:
    alpha = await network.add("alpha.test")
    gamma = await network.add("gamma.test")
    beta = await network.add("beta.test", follow_policy="listed")
    await beta.decide_domain("alpha.test", "allowed")

    await actions.follow(alpha.node, "coop@beta.test")
    await actions.follow(gamma.node, "coop@beta.test")
    await network.settle()

    assert await followers_of(beta, state=None) == [coop(alpha)]
    assert await following_of(alpha) == [(coop(beta), "accepted")]
    assert await following_of(gamma) == [(coop(beta), "rejected")]


async def test_unfollowing_sends_an_undo_that_removes_the_follower(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()

    await actions.unfollow(alpha.node, "coop@beta.test")
    await network.settle()

    assert await following_of(alpha) == []
    assert await followers_of(beta, state=None) == []


async def test_unfollowing_someone_not_followed_is_an_error(network: Network) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")

    with pytest.raises(NotFound):
        await actions.unfollow(alpha.node, "coop@beta.test")


async def test_an_accept_from_someone_else_settles_nothing(network: Network) -> None:
    from tests.node.web.test_inbox import post

    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    mallory = await network.add("mallory.test")
    result = await actions.follow(alpha.node, "coop@beta.test")
    # Deliver nothing yet: mallory answers in beta's place.
    forged = {
        "id": f"{mallory.base}/activities/forged-accept",
        "type": "Accept",
        "actor": coop(mallory),
        "object": {"id": result.follow_id, "type": "Follow", "actor": coop(alpha)},
    }
    assert (await post(network, mallory, alpha, forged)).status_code == 202
    from node.inbox import worker as inbox_worker

    await inbox_worker.run_once(alpha.node)

    assert await following_of(alpha) == [(coop(beta), "pending")]


async def test_an_undo_by_someone_else_removes_no_follower(network: Network) -> None:
    from tests.node.web.test_inbox import post

    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    mallory = await network.add("mallory.test")
    result = await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()
    undo: dict[str, Any] = {
        "id": f"{mallory.base}/activities/forged-undo",
        "type": "Undo",
        "actor": coop(mallory),
        "object": {"id": result.follow_id, "type": "Follow", "actor": coop(alpha)},
    }
    assert (await post(network, mallory, beta, undo)).status_code == 202
    await network.settle()

    assert await followers_of(beta) == [coop(alpha)]


async def test_only_accepted_followers_are_delivered_to(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test", follow_policy="approve")
    gamma = await network.add("gamma.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await actions.follow(gamma.node, "coop@beta.test")
    await network.settle()
    await actions.answer_follower(beta.node, coop(gamma), accept=True)
    await network.settle()

    coop_id = beta.node.peers.coop_id
    inboxes = await beta.node.db.read(lambda c: follows.follower_inboxes(c, actor_id=coop_id))

    # gamma's shared inbox only: alpha is still pending.
    assert inboxes == ["https://gamma.test/inbox"]


async def test_the_collections_count_and_list_followers_and_following(network: Network) -> None:
    from tests.node.web.test_inbox import AS2

    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    gamma = await network.add("gamma.test")
    for follower in (alpha, gamma):
        await actions.follow(follower.node, "coop@beta.test")
    await network.settle()

    summary = (await beta.get("/actors/coop/followers", headers={"Accept": AS2})).json()
    page = (await beta.get("/actors/coop/followers?page=1", headers={"Accept": AS2})).json()
    following = (await alpha.get("/actors/coop/following?page=1", headers={"Accept": AS2})).json()

    assert summary["totalItems"] == 2
    assert summary["first"] == "https://beta.test/actors/coop/followers?page=1"
    assert page["type"] == "OrderedCollectionPage"
    assert sorted(page["orderedItems"]) == [coop(alpha), coop(gamma)]
    assert "next" not in page
    assert following["orderedItems"] == [coop(beta)]
    bad = await beta.get("/actors/coop/followers?page=0", headers={"Accept": AS2})
    assert bad.status_code == 400


async def test_hidden_collections_show_only_their_size(network: Network) -> None:
    from tests.node.web.test_inbox import AS2

    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test", public_collections=False)
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()

    summary = (await beta.get("/actors/coop/followers", headers={"Accept": AS2})).json()
    page = (await beta.get("/actors/coop/followers?page=1", headers={"Accept": AS2})).json()

    assert summary["totalItems"] == 1
    assert "first" not in summary
    assert page == summary


async def test_a_profile_change_reaches_every_follower_once_as_an_update(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    gamma = await network.add("gamma.test")
    await actions.follow(beta.node, "coop@alpha.test")
    await actions.follow(gamma.node, "coop@alpha.test")
    await network.settle()
    network.clock.advance(60)

    response = await alpha.request(
        "PATCH", "/api/v1/profile", headers=alpha.auth, json={"name": "Marché équitable"}
    )
    await network.settle()

    assert response.status_code == 200, response.text
    for follower in (beta, gamma):
        seen = await follower.node.db.read(lambda c: remote_actors.find(c, coop(alpha)))
        assert seen is not None
        assert seen[0]["name"] == "Marché équitable"
        updates = await follower.node.db.read(
            lambda c: c.execute(
                select(inbox_activities.c.state).where(inbox_activities.c.type == "Update")
            ).all()
        )
        assert [u.state for u in updates] == ["done"]
    # Two followers, two deliveries of the Update; the Follows' Accepts came before.
    assert (await delivery_states(alpha)).count("delivered") == 4


async def test_blocking_a_domain_severs_it_and_drops_what_was_queued(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await actions.follow(beta.node, "coop@alpha.test")
    await network.settle()
    # alpha's Update reaches beta's inbox but is not handled yet; beta's own Update to
    # alpha is queued but not sent.
    await actions.update_profile(alpha.node, name="Alpha renamed", summary=None)
    await delivery_worker.run_once(alpha.node)
    await actions.update_profile(beta.node, name="Beta renamed", summary=None)

    sent_before = len(network.router.log)
    await beta.decide_domain("alpha.test", "blocked")
    await network.settle()

    assert await followers_of(beta, state=None) == []
    assert await following_of(beta) == []
    assert await beta.node.db.read(lambda c: remote_actors.find(c, coop(alpha))) is None
    assert (await delivery_states(beta))[-1] == "dropped"
    updates = await beta.node.db.read(
        lambda c: c.execute(
            select(inbox_activities.c.state).where(inbox_activities.c.type == "Update")
        ).all()
    )
    assert [u.state for u in updates] == ["dropped"]
    # Nothing went out to the blocked domain after the block.
    after = network.router.log[sent_before:]
    assert [e for e in after if e[0] == "POST" and "alpha.test" in e[1]] == []


async def test_an_activity_accepted_before_the_node_saw_a_block_is_not_handled(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await actions.follow(alpha.node, "coop@beta.test")
    # The admin blocks alpha.test from the command line; the running node reloads its
    # policy every few seconds, and alpha's Follow comes in between.
    now = beta.node.clock.now()
    await beta.node.db.write(
        lambda c: domains.set_policy(c, "alpha.test", "blocked", reason="", now=now)
    )
    await delivery_worker.run_once(alpha.node)
    await delivery_worker.refresh_domains(beta.node)
    await inbox_worker.run_once(beta.node)

    assert await followers_of(beta, state=None) == []
    states = await beta.node.db.read(
        lambda c: c.execute(select(inbox_activities.c.state)).scalars().all()
    )
    assert states == ["dropped"]
