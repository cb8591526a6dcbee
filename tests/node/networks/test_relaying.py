"""A network of co-ops across real nodes: co-ops apply and are admitted, each member's
offers reach every other member through the network's Announces (trusted by their
author's proof, never by the network's word), an offer that arrives both ways is one
row, and a co-op that leaves or is removed stops receiving and being relayed at once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from federation.jsonld import AS_CONTEXT_URL
from node.catalogue import store as catalogue
from node.follows import actions
from node.networks import hosting, joining, reading
from node.networks.model import State
from node.offers import store as offers_store
from tests.node.test_published_vocabulary import VF, check_all, outbox_bodies
from tests.support.network import Network, TestNode
from tests.support.trade import honey, publish

NETWORK = "https://hub.test/actors/reseau"


async def listed(node: TestNode, uri: str) -> bool:
    """Whether ``node``'s catalogue shows the offer ``uri`` (not withdrawn)."""
    shown = await node.node.db.read(lambda conn: offers_store.shown_by_uri(conn, uri))
    return shown is not None and not shown.withdrawn


async def admitted(network: Network, hub: TestNode, *coops: tuple[TestNode, str, str]) -> None:
    for coop, sector, region in coops:
        result = await joining.join(coop.node, "reseau@hub.test", sector=sector, region=region)
        assert result.sent
        assert result.state is State.PENDING
        await network.settle()
        await hosting.approve(hub.node, "reseau", f"{coop.base}/actors/coop")
        await network.settle()


async def a_network(network: Network) -> tuple[TestNode, TestNode, TestNode, TestNode]:
    hub = await network.add("hub.test")
    market = await network.add("market.test")
    food = await network.add("food.test")
    farm = await network.add("farm.test")
    await hosting.create_network(
        hub.node, name="reseau", title="Plateformes en communs", charter="Entraide."
    )
    return hub, market, food, farm


async def test_a_co_op_applies_waits_and_is_admitted_with_the_roster(network: Network) -> None:
    hub, market, food, _ = await a_network(network)
    result = await joining.join(food.node, "reseau@hub.test", sector="food", region="Bretagne")
    assert (result.network, result.sent) == (NETWORK, True)
    await network.settle()
    waiting = await reading.applications(hub.node, "reseau")
    assert [(m.actor, m.sector, m.region) for m in waiting] == [
        ("https://food.test/actors/coop", "food", "Bretagne")
    ]
    mine, _ = await reading.membership(food.node, NETWORK)
    assert mine.state is State.PENDING
    # Applying again sends nothing more.
    again = await joining.join(food.node, "reseau@hub.test", sector="food", region="Bretagne")
    assert not again.sent

    await hosting.approve(hub.node, "reseau", "https://food.test/actors/coop")
    await network.settle()
    mine, roster = await reading.membership(food.node, NETWORK)
    assert mine.state is State.MEMBER
    assert roster == []

    await admitted(network, hub, (market, "crafts", "Occitanie"))
    # The earlier member learnt of the new one (Add), the new one read the collection.
    _, food_roster = await reading.membership(food.node, NETWORK)
    _, market_roster = await reading.membership(market.node, NETWORK)
    assert [(e.actor, e.sector) for e in food_roster] == [
        ("https://market.test/actors/coop", "crafts")
    ]
    assert [(e.actor, e.sector, e.region) for e in market_roster] == [
        ("https://food.test/actors/coop", "food", "Bretagne")
    ]
    actor = (
        await hub.get("/actors/reseau", headers={"Accept": "application/activity+json"})
    ).json()
    assert actor["type"] == "Group"
    assert actor["members"] == f"{NETWORK}/members"
    assert actor["admission"] == "admin"
    assert actor["charter"] == "Entraide."
    assert "offers" not in actor
    assert "proposals" not in actor
    page = (await hub.get("/actors/reseau/members?page=1")).json()
    assert [item["actor"] for item in page["orderedItems"]] == [
        "https://market.test/actors/coop",
        "https://food.test/actors/coop",
    ]


async def test_a_members_offer_reaches_the_others_by_its_proof_without_a_fetch(
    network: Network,
) -> None:
    hub, market, food, farm = await a_network(network)
    await admitted(
        network,
        hub,
        (market, "crafts", "Occitanie"),
        (food, "food", "Bretagne"),
        (farm, "food", "Bretagne"),
    )
    network.router.log.clear()
    offer = await publish(market, honey())
    await network.settle()
    for member in (food, farm):
        assert await listed(member, offer["uri"])
    # Nobody fetched the offer: the proof vouched for it.
    assert not [
        url for method, url in network.router.log if method == "GET" and url == offer["uri"]
    ]
    # The network's directory lists it under the market.
    _, relayed = await reading.member_profile(hub.node, "reseau", "https://market.test/actors/coop")
    assert relayed == [(offer["uri"], "Miel de lavande")]
    # One Announce per server, not one per member.
    announces = [
        url for method, url in network.router.log if method == "POST" and "hub.test" not in url
    ]
    assert sorted(announces).count("https://food.test/inbox") == 1
    # The Announce speaks ActivityStreams; the offer inside brings its own context (the
    # one its proof covers), which a processor with the standard contexts alone reads.
    [announce] = [body for body in await outbox_bodies(hub) if body["type"] == "Announce"]
    assert announce["@context"] == AS_CONTEXT_URL
    assert VF + "publishes" in check_all([announce])


async def test_an_offer_that_comes_both_ways_is_one_row_and_withdrawals_travel_too(
    network: Network,
) -> None:
    hub, market, food, _ = await a_network(network)
    await admitted(network, hub, (market, "crafts", "Occitanie"), (food, "food", "Bretagne"))
    await actions.follow(food.node, "coop@market.test")
    await network.settle()
    offer = await publish(market, honey())
    await network.settle()
    found = await food.node.db.read(
        lambda conn: catalogue.count(conn, actor="https://market.test/actors/coop")
    )
    assert found == 1
    await actions.unfollow(food.node, "https://market.test/actors/coop")
    await network.settle()
    # Unfollowed, but the network still lists the market: its offers stay.
    assert await listed(food, offer["uri"])
    response = await market.request("DELETE", f"/api/v1/offers/{offer['id']}", headers=market.auth)
    assert response.status_code in (200, 204), response.text
    await network.settle()
    assert not await listed(food, offer["uri"])


async def test_a_removed_or_leaving_co_op_stops_receiving_and_being_relayed(
    network: Network,
) -> None:
    hub, market, food, farm = await a_network(network)
    await admitted(
        network,
        hub,
        (market, "crafts", "Occitanie"),
        (food, "food", "Bretagne"),
        (farm, "food", "Bretagne"),
    )
    first = await publish(market, honey())
    await network.settle()
    assert await listed(food, first["uri"])

    removed = await hosting.remove(
        hub.node, "reseau", "https://market.test/actors/coop", reason="Statuts non respectés"
    )
    assert removed.state is State.REMOVED
    await network.settle()
    mine, _ = await reading.membership(market.node, NETWORK)
    assert (mine.state, mine.reason) == (State.REMOVED, "Statuts non respectés")
    # Its offers left the others' catalogues; what it publishes now is not relayed.
    assert not await listed(food, first["uri"])
    later = await publish(market, honey(title={"fr": "Miel de châtaignier"}))
    await network.settle()
    assert not await listed(food, later["uri"])
    _, food_roster = await reading.membership(food.node, NETWORK)
    assert "https://market.test/actors/coop" not in [e.actor for e in food_roster]

    # The farm leaves: it gets nothing more, and its offers are not relayed.
    await joining.leave(farm.node, NETWORK)
    await network.settle()
    own = await publish(farm, honey(title={"fr": "Miel de la ferme"}))
    await network.settle()
    assert not await listed(food, own["uri"])
    members = await reading.applications(hub.node, "reseau", states=(State.MEMBER,))
    assert [m.actor for m in members] == ["https://food.test/actors/coop"]


def _announce(hub: TestNode, inner: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{hub.base}/activities/forged-{len(json.dumps(inner))}",
        "type": "Announce",
        "actor": NETWORK,
        "object": inner,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
    }


async def test_a_newcomers_existing_offers_are_introduced_by_the_network(
    network: Network,
) -> None:
    """Offers published before joining reach the members through the network, which
    reads the newcomer's offers once: no member reads the newcomer's server."""
    hub, market, food, farm = await a_network(network)
    await admitted(network, hub, (food, "food", "Bretagne"), (farm, "food", "Drôme"))
    before = await publish(market, honey())
    own = await publish(food, honey(title={"fr": "Miel du réseau"}))
    await network.settle()
    network.router.log.clear()
    await admitted(network, hub, (market, "crafts", "Occitanie"))
    for member in (food, farm):
        assert await listed(member, before["uri"])
    # The newcomer itself reads the members' offers, as a new follower would.
    assert await listed(market, own["uri"])
    market_reads = [
        url for method, url in network.router.log if method == "GET" and "market.test" in url
    ]
    assert market_reads, "the network read the newcomer's offers"
    assert all(
        "/offers" not in url or "page" in url or url.endswith("/offers") for url in market_reads
    )
    # Two members, but the newcomer's offers collection was read once, by the network.
    assert market_reads.count("https://market.test/actors/coop/offers") == 1


async def test_an_answer_waits_for_a_roster_that_cannot_be_read_now(network: Network) -> None:
    """The network's members collection unreachable when the Accept arrives: the
    Accept is tried again later, rather than the co-op becoming a member that knows no
    other (and would ignore every relayed offer)."""
    hub, market, food, _ = await a_network(network)
    await admitted(network, hub, (market, "crafts", "Occitanie"))
    await joining.join(food.node, "reseau@hub.test", sector="food", region="Bretagne")
    await network.settle()
    network.router.down.add(f"{NETWORK}/members")
    await hosting.approve(hub.node, "reseau", "https://food.test/actors/coop")
    await network.settle()
    mine, _ = await reading.membership(food.node, NETWORK)
    assert mine.state is State.PENDING  # the Accept waits for its next try

    network.router.down.clear()
    network.clock.advance(timedelta(minutes=1))
    await network.settle()
    mine, roster = await reading.membership(food.node, NETWORK)
    assert mine.state is State.MEMBER
    assert [entry.actor for entry in roster] == ["https://market.test/actors/coop"]


async def test_a_newcomers_offers_are_introduced_once_its_server_answers_again(
    network: Network,
) -> None:
    hub, market, food, _ = await a_network(network)
    await admitted(network, hub, (food, "food", "Bretagne"))
    before = await publish(market, honey())
    await network.settle()
    network.router.down.add("https://market.test/actors/coop/offers")
    await admitted(network, hub, (market, "crafts", "Occitanie"))
    assert not await listed(food, before["uri"])

    network.router.down.clear()
    network.clock.advance(timedelta(minutes=2))
    await network.settle()
    assert await listed(food, before["uri"])
