"""A network that admits by vote: an application opens a network-wide proposal, one
co-op one ballot, hosted by the co-op whose node hosts the network; when it closes the
applicant is admitted if it passed, refused with the outcome's reason if not, and the
admin cannot decide it alone meanwhile."""

from __future__ import annotations

from datetime import timedelta

import pytest

from node.errors import Conflict
from node.governance import worker as governance_worker
from node.networks import admission, hosting, joining, reading
from node.networks.model import State
from tests.support.coops import Coop, make_coop
from tests.support.mastodon import Mastodon
from tests.support.network import Network

NETWORK = "https://hub.test/actors/reseau"


async def seated(network: Network, hub: Coop, *coops: Coop) -> None:
    """Members admitted by the admin, before the network turns to votes."""
    for coop in coops:
        await joining.join(coop.node.node, "reseau@hub.test", sector="food")
        await network.settle()
        await hosting.approve(hub.node.node, "reseau", f"{coop.node.base}/actors/coop")
        await network.settle()


async def vote_everywhere(network: Network, coops: list[Coop], choice: str) -> None:
    """Each co-op's admin accepts the invitation, and its members vote ``choice``."""
    for coop in coops:
        listed = await coop.node.request(
            "GET", "/api/v1/proposals/invitations", headers=coop.node.auth
        )
        for invitation in listed.json()["invitations"]:
            accepted = await coop.node.request(
                "POST", f"/api/v1/proposals/{invitation['id']}/accept", headers=coop.node.auth
            )
            assert accepted.status_code == 200, accepted.text
    await network.settle()
    for coop in coops:
        body = (
            await coop.node.request("GET", "/api/v1/proposals", headers=coop.local["m0"])
        ).json()
        if body["shared"]:
            key = body["shared"][-1]["mirror"]
        else:
            key = next(
                p["id"] for p in body["proposals"] if p["proposal"]["counting_mode"] == "open"
            )
        for who in coop.local:
            voted = await coop.vote(who, key, choice)
            assert voted.status_code == 201, voted.text
    await network.settle()


async def close_votes(network: Network, hub: Coop) -> None:
    network.clock.advance(timedelta(days=admission.VOTE_DAYS) - timedelta(minutes=15))
    await network.settle()
    network.clock.advance(timedelta(minutes=16))
    await network.settle()
    await governance_worker.run_once(hub.node.node)
    await network.settle()  # the networks' round applies the outcome


@pytest.mark.parametrize(("choice", "admitted"), [("For", True), ("Against", False)])
async def test_the_members_vote_on_an_applicant(
    network: Network, choice: str, admitted: bool
) -> None:
    mastodon = Mastodon(network, "mastodon.test")
    hub, food, market, farm = [
        await make_coop(network, local=1, remote=0, domain=f"{name}.test", mastodon=mastodon)
        for name in ("hub", "food", "market", "farm")
    ]
    await hosting.create_network(hub.node.node, name="reseau", title="Réseau")
    await seated(network, hub, hub, food, market)
    await hosting.change_network(hub.node.node, "reseau", admission="vote")

    await joining.join(farm.node.node, "reseau@hub.test", sector="food", region="Drôme")
    await network.settle()
    [waiting] = await reading.applications(hub.node.node, "reseau")
    assert waiting.proposal is not None
    # The admin cannot decide alone while the members vote.
    with pytest.raises(Conflict):
        await hosting.approve(hub.node.node, "reseau", "https://farm.test/actors/coop")
    # The applicant is not asked: the vote is the members'.
    asked = await farm.node.request("GET", "/api/v1/proposals/invitations", headers=farm.node.auth)
    assert asked.json()["invitations"] == []

    await vote_everywhere(network, [hub, food, market], choice)
    await close_votes(network, hub)

    mine, roster = await reading.membership(farm.node.node, NETWORK)
    if admitted:
        assert mine.state is State.MEMBER
        assert {e.actor for e in roster} == {
            "https://hub.test/actors/coop",
            "https://food.test/actors/coop",
            "https://market.test/actors/coop",
        }
    else:
        assert mine.state is State.REFUSED
        assert mine.reason.startswith("rejected")
