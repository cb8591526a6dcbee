"""What a network or a stranger cannot do: make a member take an offer its author did
not publish (altered, or of a co-op the network does not list), relay through a network
the co-op does not belong to, make a member publish anything, or fill a network's
tables with hostile applications."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from node.networks import hosting, joining, reading
from node.networks import store as network_store
from node.networks.model import State
from node.offers import store as offers_store
from node.services import identity
from node.storage.tables import inbox_activities, network_members, outbox_activities
from tests.node.networks.test_relaying import NETWORK, a_network, admitted, listed
from tests.support.coops import add_member, post_as, post_as_coop
from tests.support.network import Network, TestNode
from tests.support.trade import honey, publish

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def signed_offer(node: TestNode, key: str) -> dict[str, Any]:
    response = await node.get(f"/offers/{key}", headers={"Accept": "application/activity+json"})
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    assert "proof" in document
    return document


def announce(hub: TestNode, name: str, inner: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{hub.base}/activities/relay-{name}-{n}",
        "type": "Announce",
        "actor": f"{hub.base}/actors/{name}",
        "object": inner,
        "to": [PUBLIC],
    }


def create(document: dict[str, Any], actor: str, n: int) -> dict[str, Any]:
    return {
        "id": f"{actor.rsplit('/actors/', 1)[0]}/activities/forged-create-{n}",
        "type": "Create",
        "actor": actor,
        "to": [PUBLIC],
        "object": document,
    }


async def outcome(node: TestNode, activity_id: str) -> tuple[str, str | None]:
    row = await node.node.db.read(
        lambda conn: conn.execute(
            select(inbox_activities.c.state, inbox_activities.c.last_error).where(
                inbox_activities.c.activity_id == activity_id
            )
        ).first()
    )
    assert row is not None, f"{activity_id} was not received"
    return str(row.state), row.last_error


async def published(node: TestNode) -> int:
    return await node.node.db.read(
        lambda conn: int(
            conn.execute(select(func.count()).select_from(outbox_activities)).scalar_one()
        )
    )


async def members_and_offer(
    network: Network,
) -> tuple[TestNode, TestNode, TestNode, TestNode, dict[str, Any]]:
    hub, market, food, farm = await a_network(network)
    await admitted(network, hub, (market, "crafts", "Occitanie"), (food, "food", "Bretagne"))
    offer = await publish(market, honey())
    await network.settle()
    return hub, market, food, farm, offer


async def test_an_altered_offer_is_refused_and_an_unsigned_one_is_read_from_its_origin(
    network: Network,
) -> None:
    hub, market, food, _, offer = await members_and_offer(network)
    document = await signed_offer(market, offer["id"])
    before = await published(food)

    # The network changes the price of a signed offer, under a new id: the proof fails.
    forged = copy.deepcopy(document)
    forged["id"] = "https://market.test/offers/forged"
    forged["reciprocal"]["resourceQuantity"]["hasNumericalValue"] = "0.01"
    relayed = announce(hub, "reseau", create(forged, "https://market.test/actors/coop", 1), 1)
    response = await post_as(network, hub, "reseau", relayed, "https://food.test/inbox")
    assert response.status_code == 202, response.text
    await network.settle()
    assert not await listed(food, "https://market.test/offers/forged")
    state, error = await outcome(food, relayed["id"])
    assert state == "failed"
    assert error is not None
    assert "proof" in error

    # Without a proof, the offer is taken as the market serves it, not as relayed.
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    unsigned["name"] = "Miel gratuit"
    relayed = announce(hub, "reseau", create(unsigned, "https://market.test/actors/coop", 2), 2)
    network.router.log.clear()
    response = await post_as(network, hub, "reseau", relayed, "https://food.test/inbox")
    assert response.status_code == 202
    await network.settle()
    assert ("GET", offer["uri"]) in network.router.log
    shown = await food.node.db.read(lambda conn: offers_store.shown_by_uri(conn, offer["uri"]))
    assert shown is not None
    assert shown.title == "Miel de lavande"
    # And the member published nothing in all this.
    assert await published(food) == before


async def test_a_non_members_offer_or_a_foreign_network_is_ignored(network: Network) -> None:
    hub, _market, food, farm, _ = await members_and_offer(network)
    # The farm is no member: its own, validly signed offer relayed by the network.
    own = await publish(farm, honey(title={"fr": "Miel de la ferme"}))
    document = await signed_offer(farm, own["id"])
    relayed = announce(hub, "reseau", create(document, "https://farm.test/actors/coop", 3), 3)
    response = await post_as(network, hub, "reseau", relayed, "https://food.test/inbox")
    assert response.status_code == 202
    await network.settle()
    assert not await listed(food, own["uri"])

    # A network the food co-op does not belong to, which lists the farm, relays it.
    await hosting.create_network(hub.node, name="autre")
    await joining.join(farm.node, "autre@hub.test")
    await network.settle()
    await hosting.approve(hub.node, "autre", "https://farm.test/actors/coop")
    await network.settle()
    relayed = announce(hub, "autre", create(document, "https://farm.test/actors/coop", 4), 4)
    response = await post_as(network, hub, "autre", relayed, "https://food.test/inbox")
    assert response.status_code == 202
    await network.settle()
    state, _ = await outcome(food, relayed["id"])
    assert state == "done"  # looked at and left
    assert not await listed(food, own["uri"])
    mine = await reading.memberships(food.node)
    assert [m.network for m in mine] == [NETWORK]


async def test_a_person_cannot_join_and_hostile_applications_change_nothing(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, _, _, farm = await a_network(network)
    paula = await add_member(farm, username="paula", joined_at="2026-01-01")
    now = farm.node.clock.now()
    await farm.node.db.write(
        lambda conn: identity.ensure_rsa_key(conn, int(paula["id"]) + 1, now=now)
    )
    join = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://farm.test/activities/join-paula",
        "type": "Join",
        "actor": "https://farm.test/actors/paula",
        "object": NETWORK,
    }
    response = await post_as(network, farm, "paula", join, "https://hub.test/actors/reseau/inbox")
    assert response.status_code == 202, response.text
    await network.settle()
    assert await reading.applications(hub.node, "reseau", states=tuple(State)) == []

    hostile: list[Any] = [
        ["food"],
        {"@value": "food"},
        "food\x00",
        "\ud800",
        "x" * 10_000,
        12,
    ]
    for n, value in enumerate(hostile):
        activity = {
            **join,
            "id": f"https://farm.test/activities/join-{n}",
            "actor": "https://farm.test/actors/coop",
            "sector": value,
        }
        response = await post_as_coop(
            network, farm, activity, "https://hub.test/actors/reseau/inbox"
        )
        assert response.status_code in (202, 400), response.text
    await network.settle()
    assert await reading.applications(hub.node, "reseau", states=tuple(State)) == []

    # Applications waiting are capped: one more is refused and stored nowhere.
    monkeypatch.setattr(network_store, "PENDING_MAX", 0)
    activity = {
        **join,
        "id": "https://farm.test/activities/join-ok",
        "actor": "https://farm.test/actors/coop",
    }
    await post_as_coop(network, farm, activity, "https://hub.test/actors/reseau/inbox")
    await network.settle()
    rows = await hub.node.db.read(
        lambda conn: int(
            conn.execute(select(func.count()).select_from(network_members)).scalar_one()
        )
    )
    assert rows == 0
    state, error = await outcome(hub, activity["id"])
    assert state == "failed"
    assert error is not None
    assert "wait" in error


async def test_only_the_network_can_answer_an_application(network: Network) -> None:
    """A third party's Accept naming our Join settles nothing."""
    _hub, market, food, _ = await a_network(network)
    result = await joining.join(food.node, "reseau@hub.test", sector="food")
    await network.settle()
    accept = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://market.test/activities/fake-accept",
        "type": "Accept",
        "actor": "https://market.test/actors/coop",
        "object": {
            "id": result.join_id,
            "type": "Join",
            "actor": "https://food.test/actors/coop",
            "object": NETWORK,
        },
    }
    await post_as_coop(network, market, accept, "https://food.test/inbox")
    await network.settle()
    mine, _ = await reading.membership(food.node, NETWORK)
    assert mine.state is State.PENDING


async def test_hostile_announces_are_refused_one_by_one_and_the_round_goes_on(
    network: Network,
) -> None:
    hub, market, food, _, offer = await members_and_offer(network)
    document = await signed_offer(market, offer["id"])
    market_actor = "https://market.test/actors/coop"
    odd: list[Any] = [
        "https://market.test/activities/only-an-id",
        [create(document, market_actor, 10)],
        {"type": "Create", "actor": 12, "id": "x", "object": document},
        {"type": "Create", "actor": market_actor, "id": "https://market.test/a/1"},
        {**create(document, market_actor, 11), "object": {**document, "name": "\ud800"}},
        {**create(document, market_actor, 12), "object": {**document, "attributedTo": [1]}},
        {**create(document, market_actor, 13), "object": {**document, "proof": "\x00"}},
        {"type": "Delete", "actor": market_actor, "id": "https://market.test/a/2", "object": 7},
    ]
    ids = []
    for n, inner in enumerate(odd):
        relayed = announce(hub, "reseau", inner, 100 + n)
        ids.append(relayed["id"])
        response = await post_as(network, hub, "reseau", relayed, "https://food.test/inbox")
        assert response.status_code in (202, 400), response.text
    # A good one after them all is still taken.
    later = await publish(market, honey(title={"fr": "Miel de bruyère"}))
    await network.settle()
    assert await listed(food, later["uri"])
    shown = await food.node.db.read(lambda conn: offers_store.shown_by_uri(conn, offer["uri"]))
    assert shown is not None
    assert shown.title == "Miel de lavande"


async def test_an_offer_whose_authors_key_cannot_be_fetched_now_is_tried_again(
    network: Network,
) -> None:
    """The author's server down when a member checks a relayed offer's proof: the key
    cannot be read now, which is not a false proof. The Announce is tried again later
    and taken then, rather than refused and lost to that member."""
    hub, market, food, _, offer = await members_and_offer(network)
    document = await signed_offer(market, offer["id"])
    # What the member knows of the market is stale a day on, and its key forgotten.
    network.clock.advance(timedelta(days=1, minutes=1))
    food.node.peers.keys.forget_actor("https://market.test/actors/coop")
    relayed = announce(hub, "reseau", create(document, "https://market.test/actors/coop", 5), 5)
    market_app = network.router.apps.pop("market.test")
    try:
        response = await post_as(network, hub, "reseau", relayed, "https://food.test/inbox")
        assert response.status_code == 202, response.text
        await network.settle()
        state, error = await outcome(food, relayed["id"])
        assert state == "pending", error  # not refused: tried again later
        assert error is not None
        assert "cannot be fetched now" in error
    finally:
        network.router.apps["market.test"] = market_app

    network.clock.advance(timedelta(minutes=1))
    await network.settle()
    assert (await outcome(food, relayed["id"]))[0] == "done"
