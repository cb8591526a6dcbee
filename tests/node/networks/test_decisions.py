"""Network-wide decisions: a member co-op opens a shared proposal whose electorate is
"every member co-op of the network at the opening". Each member co-op is invited (as
from a co-op it follows, though it follows none of them) and its admin answers; its
members vote at home; the host counts and anyone can audit the tally. A co-op outside
the network is not asked, and a co-op cannot open a vote in a network it is not part of."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from node.governance.audit.run import audit
from node.networks import hosting
from tests.node.networks.test_relaying import NETWORK, admitted
from tests.support.coops import Coop, make_coop
from tests.support.mastodon import Mastodon
from tests.support.network import Network

AS2 = {"Accept": "application/activity+json"}


async def network_of_three(network: Network) -> tuple[dict[str, Coop], Coop]:
    hub = await network.add("hub.test")
    await hosting.create_network(hub.node, name="reseau", title="Plateformes en communs")
    mastodon = Mastodon(network, "mastodon.test")
    coops = {
        name: await make_coop(network, local=2, remote=0, domain=f"{name}.test", mastodon=mastodon)
        for name in ("food", "market", "farm")
    }
    outsider = await make_coop(
        network, local=1, remote=0, domain="outsider.test", mastodon=mastodon
    )
    await admitted(
        network,
        hub,
        (coops["food"].node, "food", "Bretagne"),
        (coops["market"].node, "crafts", "Occitanie"),
        (coops["farm"].node, "food", "Drôme"),
    )
    return coops, outsider


async def invitations(coop: Coop) -> list[dict[str, Any]]:
    response = await coop.node.request(
        "GET", "/api/v1/proposals/invitations", headers=coop.node.auth
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["invitations"]
    return found


async def accept_invitations(*coops: Coop) -> list[dict[str, Any]]:
    """Each co-op's admin accepts its one invitation; the invitations, in order."""
    accepted_ones = []
    for coop in coops:
        [invitation] = await invitations(coop)
        accepted = await coop.node.request(
            "POST", f"/api/v1/proposals/{invitation['id']}/accept", headers=coop.node.auth
        )
        assert accepted.status_code == 200, accepted.text
        accepted_ones.append(invitation)
    return accepted_ones


async def test_every_member_co_op_is_invited_votes_at_home_and_the_tally_audits(
    network: Network,
) -> None:
    coops, outsider = await network_of_three(network)
    food, market, farm = coops["food"], coops["market"], coops["farm"]
    created = await food.propose(
        "m0",
        title="Adopter la charte commune",
        rule="majority",
        threshold=None,
        quorum="50%",
        network="reseau@hub.test",
    )
    await network.settle()
    doc = (await food.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    assert doc["network"] == NETWORK
    assert doc["electorate"][0] == "https://food.test/actors/coop"
    assert sorted(doc["electorate"][1:]) == [
        "https://farm.test/actors/coop",
        "https://market.test/actors/coop",
    ]
    # Invited as from a followed co-op: each admin decides. The outsider is not asked.
    assert await invitations(outsider) == []
    for invitation in await accept_invitations(market, farm):
        assert invitation["host"] == "https://food.test/actors/coop"
    await network.settle()

    shown = (
        await food.node.request(
            "GET", f"/api/v1/proposals/{created['id']}", headers=food.local["m0"]
        )
    ).json()
    assert shown["state"] == "open"
    assert shown["eligible"] == 6  # two members in each of the three co-ops
    for coop, who, choice in [
        (food, "m0", "For"),
        (food, "m1", "For"),
        (market, "m0", "For"),
        (market, "m1", "Against"),
        (farm, "m0", "For"),
    ]:
        key = created["id"]
        if coop is not food:
            response = await coop.node.request("GET", "/api/v1/proposals", headers=coop.local[who])
            [shared] = response.json()["shared"]
            key = shared["id"]
        voted = await coop.vote(who, key, choice)
        assert voted.status_code == 201, voted.text
    await network.settle()
    network.clock.advance(timedelta(days=7, minutes=1))
    await network.settle()

    closed = (await food.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    outcome = closed["outcome"]
    assert outcome["counts"] == {"For": 4, "Against": 1, "Abstain": 0}
    assert outcome["result"] == "passed"
    assert {p["coop"] for p in outcome["participation"]} == {
        "https://food.test/actors/coop",
        "https://market.test/actors/coop",
        "https://farm.test/actors/coop",
    }
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert report.ok, report


async def test_a_co_op_outside_the_network_cannot_open_a_vote_in_it(network: Network) -> None:
    _, outsider = await network_of_three(network)
    now = outsider.node.node.clock.now()
    response = await outsider.node.request(
        "POST",
        "/api/v1/proposals",
        json={
            "title": "Prendre la main",
            "text": "...",
            "options": ["For", "Against"],
            "closes_at": (now + timedelta(days=7)).isoformat(),
            "network": "reseau@hub.test",
        },
        headers=outsider.local["m0"],
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "network"


async def test_one_co_op_one_vote_across_the_network(network: Network) -> None:
    """Counted by co-op: each member co-op's own members decide its one ballot."""
    coops, _ = await network_of_three(network)
    food, market, farm = coops["food"], coops["market"], coops["farm"]
    created = await food.propose(
        "m0",
        title="Cotisation au réseau",
        rule="majority",
        threshold=None,
        quorum="0%",
        counting_mode="coop",
        network=NETWORK,
    )
    await network.settle()
    await accept_invitations(market, farm)
    await network.settle()
    ballots = [
        (food, {"m0": "For", "m1": "For"}),
        (market, {"m0": "Against", "m1": "Against"}),
        (farm, {"m0": "For", "m1": "Against", "m2": "For"}),
    ]
    for coop, votes in ballots:
        response = await coop.node.request("GET", "/api/v1/proposals", headers=coop.local["m0"])
        body = response.json()
        key = (
            body["shared"][0]["mirror"]
            if body["shared"]
            else next(
                p["id"] for p in body["proposals"] if p["proposal"]["counting_mode"] == "open"
            )
        )
        for who, choice in votes.items():
            if who not in coop.local:
                continue
            voted = await coop.vote(who, key, choice)
            assert voted.status_code == 201, voted.text
    await network.settle()
    network.clock.advance(timedelta(days=7) - timedelta(minutes=15))
    await network.settle()
    network.clock.advance(timedelta(minutes=15))
    await network.settle()

    outcome = (await food.node.get(f"/proposals/{created['id']}", headers=AS2)).json()["outcome"]
    assert outcome["eligible"] == 3
    # food for, market against, farm's tie abstains (the default).
    assert outcome["counts"] == {"For": 1, "Against": 1, "Abstain": 1}
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert report.ok, report


async def test_counted_by_subtotals_across_the_network(network: Network) -> None:
    """Counted by subtotals: each member co-op counts its own members' ballots on its
    mirror and sends the host its counts; the host adds them, and the tally audits."""
    coops, _ = await network_of_three(network)
    food, market, farm = coops["food"], coops["market"], coops["farm"]
    created = await food.propose(
        "m0",
        title="Ouvrir un fonds commun",
        rule="majority",
        threshold=None,
        quorum="50%",
        counting_mode="subtotal",
        network=NETWORK,
    )
    await network.settle()
    await accept_invitations(market, farm)
    await network.settle()
    for coop, who, choice in [
        (food, "m0", "For"),
        (market, "m0", "Against"),
        (market, "m1", "Against"),
        (farm, "m0", "For"),
        (farm, "m1", "For"),
    ]:
        key = created["id"]
        if coop is not food:
            response = await coop.node.request("GET", "/api/v1/proposals", headers=coop.local[who])
            [shared] = response.json()["shared"]
            assert shared["counting_mode"] == "subtotal"
            key = shared["id"]
        voted = await coop.vote(who, key, choice)
        assert voted.status_code == 201, voted.text
    await network.settle()
    network.clock.advance(timedelta(days=7))
    await network.settle()
    network.clock.advance(timedelta(minutes=15))
    await network.settle()

    outcome = (await food.node.get(f"/proposals/{created['id']}", headers=AS2)).json()["outcome"]
    assert outcome["counts"] == {"For": 3, "Against": 2, "Abstain": 0}
    assert outcome["eligible"] == 6
    assert outcome["result"] == "passed"
    voted = {p["coop"]: p["voted"] for p in outcome["participation"]}
    assert voted == {
        "https://food.test/actors/coop": 1,
        "https://market.test/actors/coop": 2,
        "https://farm.test/actors/coop": 2,
    }
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert report.ok, report
