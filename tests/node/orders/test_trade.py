"""Trade between two co-ops, end to end through real apps, signatures and the outbox: a
member of the food network orders honey from the marketplace's offer, the marketplace's
node holds the stock, its admin accepts, the member sees the agreement with its total;
the stock the marketplace's followers see drops; refusals come back with their reason."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from federation.errors import FetchError
from node.follows import actions
from node.offers import store as offers_store
from node.orders import buying, selling, wire
from node.orders import store as orders_store
from node.orders.model import Terms
from node.storage.tables import outbox_activities
from tests.support.coops import add_member, post_as_coop, token_for
from tests.support.network import Network, TestNode
from tests.support.trade import honey, publish


async def available(node: TestNode, uri: str) -> str | None:
    """How many the catalogue of ``node`` says are left of the offer ``uri``."""
    shown = await node.node.db.read(lambda conn: offers_store.shown_by_uri(conn, uri))
    assert shown is not None
    quantity = json.loads(shown.document)["publishes"].get("availableQuantity")
    return None if quantity is None else str(quantity["hasNumericalValue"])


async def market_and_food(
    network: Network,
) -> tuple[TestNode, TestNode, dict[str, str], dict[str, Any]]:
    market = await network.add("market.test")
    food = await network.add("food.test")
    await actions.follow(food.node, "coop@market.test")
    await network.settle()
    offer = await publish(market, honey())
    await network.settle()
    paula = await add_member(food, username="paula", joined_at="2026-01-01")
    return market, food, await token_for(food, paula["id"]), offer


async def order(food: TestNode, member: dict[str, str], offer: str, **fields: Any) -> Any:
    body = {"offer": offer, "quantity": "6", "delivery": "pickup", "payment": "cash", **fields}
    return await food.request("POST", "/api/v1/orders", json=body, headers=member)


async def test_an_order_is_held_accepted_and_the_stock_drops_for_followers(
    network: Network,
) -> None:
    market, food, paula, offer = await market_and_food(network)
    assert await available(food, offer["uri"]) == "40"

    placed = await order(food, paula, offer["uri"], note="Pour samedi")
    assert placed.status_code == 201, placed.text
    mine = placed.json()
    assert mine["said"] == "waiting for the seller"
    assert (mine["quantity"], mine["total"], mine["currency"]) == ("6", "51.00", "EUR")
    await network.settle()

    received = (
        await market.get("/api/v1/orders", params={"received": "1"}, headers=market.auth)
    ).json()["received"]
    assert [(r["state"], r["quantity"], r["note"]) for r in received] == [
        ("pending", "6", "Pour samedi")
    ]
    key = received[0]["key"]
    accepted = await market.request(
        "POST", f"/api/v1/orders/{key}/accept", json={"note": "Samedi 10h"}, headers=market.auth
    )
    assert accepted.status_code == 200, accepted.text
    await network.settle()

    shown = (await food.get(f"/api/v1/orders/{mine['key']}", headers=paula)).json()
    assert shown["state"] == "accepted"
    assert shown["answer"] == "Samedi 10h"
    assert shown["total"] == "51.00"
    assert shown["agreement"].startswith("https://market.test/agreements/")

    # A minute later the marketplace tells its followers how many are left.
    network.clock.advance(timedelta(minutes=1))
    await network.settle()
    assert await available(food, offer["uri"]) == "34"


async def test_refusals_come_back_with_their_reason_and_hold_nothing(network: Network) -> None:
    market, food, paula, offer = await market_and_food(network)

    # What the buyer's node can tell at once is said at once.
    under = await order(food, paula, offer["uri"], quantity="1")
    assert under.status_code == 422
    assert under.json()["reason"] == "under the minimum quantity of this offer"
    unknown = await order(food, paula, offer["uri"], delivery="drone")
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "delivery"

    # The seller withdraws before the order arrives: it is refused there, with why.
    placed = (await order(food, paula, offer["uri"])).json()
    withdrawn = await market.request("DELETE", f"/api/v1/offers/{offer['id']}", headers=market.auth)
    assert withdrawn.status_code in (200, 204), withdrawn.text
    await network.settle()
    shown = (await food.get(f"/api/v1/orders/{placed['key']}", headers=paula)).json()
    assert shown["state"] == "rejected"
    assert shown["answer"] == "this offer was withdrawn"


async def test_the_same_offer_delivered_twice_makes_one_order(network: Network) -> None:
    market, food, paula, offer = await market_and_food(network)
    placed = (await order(food, paula, offer["uri"])).json()
    await network.settle()
    # The delivery is made again (a retry after a lost answer).
    from sqlalchemy import update

    from node.storage.tables import deliveries

    await food.node.db.write(
        lambda conn: conn.execute(update(deliveries).values(state="pending", attempts=0))
    )
    await network.settle()

    received = (
        await market.get("/api/v1/orders", params={"received": "1"}, headers=market.auth)
    ).json()["received"]
    assert len(received) == 1
    assert placed["key"]


async def received_orders(market: TestNode) -> list[dict[str, Any]]:
    response = await market.get("/api/v1/orders", params={"received": "1"}, headers=market.auth)
    assert response.status_code == 200, response.text
    return list(response.json()["received"])


async def decide(market: TestNode, key: str, decision: str, note: str = "") -> Any:
    return await market.request(
        "POST", f"/api/v1/orders/{key}/{decision}", json={"note": note}, headers=market.auth
    )


async def stock(market: TestNode, uri: str) -> Decimal | None:
    def read(conn: Any) -> Decimal | None:
        shown = offers_store.shown_local(conn, uri)
        assert shown is not None
        return orders_store.stock_of(conn, shown.id)[0]

    return await market.node.db.read(read)


async def forged_order(
    network: Network, food: TestNode, market: TestNode, uri: str, n: int, **changes: Any
) -> Any:
    """An order as the food co-op itself would send it, with ``changes`` to its terms:
    what the seller must check, whatever the buyer's node checked."""
    terms = Terms(
        offer_uri=uri,
        quantity=Decimal("6"),
        unit="one",
        total=Decimal("51.00"),
        currency="EUR",
        delivery="pickup",
        payment="cash",
    )
    terms = replace(terms, **changes)
    activity = wire.order_offer(
        terms,
        id=f"{food.base}/orders/forged-{n}",
        actor=f"{food.base}/actors/coop",
        seller=f"{market.base}/actors/coop",
        published=network.clock.now(),
    )
    return await post_as_coop(network, food, activity, f"{market.base}/actors/coop/inbox")


async def test_the_seller_checks_every_order_whatever_the_buyer_checked(network: Network) -> None:
    market, food, _, offer = await market_and_food(network)
    cases = {
        "out_of_stock": {"quantity": Decimal(41), "total": Decimal("348.50")},
        "wrong_price": {"total": Decimal("1.00")},
        "under_minimum": {"quantity": Decimal(1), "total": Decimal("8.50")},
        "not_whole_units": {"quantity": Decimal("2.5"), "total": Decimal("21.25")},
        "unknown_payment": {"payment": "bitcoin"},
        "unknown_delivery": {"delivery": None},
        "wrong_unit": {"unit": "kilogram"},
        "no_such_offer": {"offer_uri": f"{market.base}/offers/nothing"},
    }
    for n, changes in enumerate(cases.values()):
        answer = await forged_order(network, food, market, offer["uri"], n, **changes)
        assert answer.status_code == 202, answer.text
    await network.settle()

    found = {r["reason"]: r for r in await received_orders(market)}
    assert set(found) == set(cases)
    assert {r["state"] for r in found.values()} == {"rejected"}
    assert found["out_of_stock"]["answer"] == "out of stock: fewer units are left than ordered"
    # Nothing was held: the stock is whole.
    assert await stock(market, offer["uri"]) == Decimal(40)


async def test_an_offer_on_auto_accepts_while_in_stock(network: Network) -> None:
    market, food, paula, offer = await market_and_food(network)
    path = f"/api/v1/offers/{offer['id']}/order-policy"
    wrong = await market.request("PUT", path, json={"policy": "sometimes"}, headers=market.auth)
    assert (wrong.status_code, wrong.json()["field"]) == (422, "policy")
    chosen = await market.request("PUT", path, json={"policy": "auto"}, headers=market.auth)
    assert chosen.status_code == 200, chosen.text

    placed = (await order(food, paula, offer["uri"], quantity="30")).json()
    await network.settle()
    second = (await order(food, paula, offer["uri"], quantity="20")).json()
    await network.settle()

    first = (await food.get(f"/api/v1/orders/{placed['key']}", headers=paula)).json()
    late = (await food.get(f"/api/v1/orders/{second['key']}", headers=paula)).json()
    assert first["state"] == "accepted"
    assert (late["state"], late["answer"]) == (
        "rejected",
        "out of stock: fewer units are left than ordered",
    )
    assert await stock(market, offer["uri"]) == Decimal(10)


async def test_a_cancelled_rejected_or_expired_order_gives_its_stock_back(network: Network) -> None:
    market, food, paula, offer = await market_and_food(network)
    keys = [(await order(food, paula, offer["uri"], note=n)).json()["key"] for n in "abc"]
    await network.settle()
    assert await stock(market, offer["uri"]) == Decimal(22)
    seller_key = {r["note"]: r["key"] for r in await received_orders(market)}

    # The buyer cancels the first; the seller rejects the second, saying why.
    cancelled = await food.request("POST", f"/api/v1/orders/{keys[0]}/cancel", headers=paula)
    assert cancelled.status_code == 200, cancelled.text
    rejected = await decide(market, seller_key["b"], "reject", "Plus de pots de 500 g")
    assert rejected.status_code == 200, rejected.text
    await network.settle()
    assert await stock(market, offer["uri"]) == Decimal(34)
    shown = (await food.get(f"/api/v1/orders/{keys[1]}", headers=paula)).json()
    assert (shown["state"], shown["answer"]) == ("rejected", "Plus de pots de 500 g")

    # The third waits longer than the hold: it expires, and the buyer is told.
    network.clock.advance(selling.HOLD + timedelta(minutes=1))
    await network.settle()
    assert await stock(market, offer["uri"]) == Decimal(40)
    shown = (await food.get(f"/api/v1/orders/{keys[2]}", headers=paula)).json()
    assert shown["state"] == "rejected"
    assert shown["answer"] == "the seller did not answer in time; the stock was released"
    states = sorted(r["state"] for r in await received_orders(market))
    assert states == ["cancelled", "expired", "rejected"]


async def test_fulfilment_and_a_late_answer_are_told_to_the_buyer(network: Network) -> None:
    market, food, paula, offer = await market_and_food(network)
    placed = (await order(food, paula, offer["uri"])).json()
    await network.settle()
    (seller,) = await received_orders(market)

    # The seller cannot fulfil what it has not accepted.
    early = await decide(market, seller["key"], "fulfil")
    assert early.status_code == 409
    assert "pending" in early.json()["reason"]

    # The buyer's node is down when the answer is sent: it shows it once back.
    food_app = network.router.apps.pop("food.test")
    assert (await decide(market, seller["key"], "accept", "Samedi")).status_code == 200
    await network.settle()
    network.router.apps["food.test"] = food_app
    network.clock.advance(timedelta(hours=1))
    await network.settle()
    shown = (await food.get(f"/api/v1/orders/{placed['key']}", headers=paula)).json()
    assert shown["state"] == "accepted"

    assert (await decide(market, seller["key"], "fulfil")).status_code == 200
    await network.settle()
    shown = (await food.get(f"/api/v1/orders/{placed['key']}", headers=paula)).json()
    assert shown["state"] == "fulfilled"
    # Fulfilled: the stock stays spent.
    assert await stock(market, offer["uri"]) == Decimal(34)


async def test_the_stock_is_announced_at_most_once_a_minute(network: Network) -> None:
    market, food, paula, offer = await market_and_food(network)

    async def updates() -> int:
        def count(conn: Any) -> int:
            rows = conn.execute(
                select(outbox_activities.c.body).where(outbox_activities.c.type == "Update")
            ).all()
            return sum(offer["uri"] in row.body and "Proposal" in row.body for row in rows)

        return int(await market.node.db.read(count))

    for _ in range(3):
        await order(food, paula, offer["uri"], quantity="2")
    await network.settle()
    assert await updates() == 0  # held, but not a minute yet
    network.clock.advance(timedelta(seconds=61))
    await network.settle()
    assert await updates() == 1
    assert await available(food, offer["uri"]) == "34"

    for _ in range(2):
        await order(food, paula, offer["uri"], quantity="2")
    await network.settle()
    network.clock.advance(timedelta(seconds=30))
    await network.settle()
    assert await updates() == 1  # a minute has not passed since the last one
    network.clock.advance(timedelta(seconds=31))
    await network.settle()
    assert await updates() == 2
    assert await available(food, offer["uri"]) == "30"


async def test_an_order_to_a_seller_that_blocks_the_buyer_ends_rejected_saying_so(
    network: Network,
) -> None:
    market, food, paula, offer = await market_and_food(network)
    await market.decide_domain("food.test", "blocked")

    placed = (await order(food, paula, offer["uri"])).json()
    await network.settle()

    shown = (await food.get(f"/api/v1/orders/{placed['key']}", headers=paula)).json()
    assert shown["state"] == "rejected"
    assert shown["reason"] == "undelivered"
    assert shown["answer"].startswith("the seller's server did not take the order (it refuses")
    assert await received_orders(market) == []
    assert await stock(market, offer["uri"]) == Decimal(40)


async def test_a_member_cannot_order_from_a_coop_her_node_blocks(network: Network) -> None:
    _, food, paula, offer = await market_and_food(network)
    await food.decide_domain("market.test", "blocked")

    refused = await order(food, paula, offer["uri"])

    # Blocking a co-op removes its offers from the catalogue: nothing to order from.
    assert refused.status_code in (404, 422), refused.text


async def test_an_order_signed_by_another_actor_than_its_own_is_refused(network: Network) -> None:
    market, food, _, offer = await market_and_food(network)
    terms = Terms(offer["uri"], Decimal(6), "one", Decimal("51.00"), "EUR", "pickup", "cash")
    activity = wire.order_offer(
        terms,
        id=f"{food.base}/orders/not-mine",
        actor=f"{food.base}/actors/paula",  # signed below with the co-op's key
        seller=f"{market.base}/actors/coop",
        published=network.clock.now(),
    )

    answer = await post_as_coop(network, food, activity, f"{market.base}/actors/coop/inbox")

    assert answer.status_code == 401
    assert "signed by" in answer.json()["reason"]
    await network.settle()
    assert await received_orders(market) == []


async def test_an_order_a_seller_never_answers_is_closed_after_a_week(network: Network) -> None:
    _, food, paula, offer = await market_and_food(network)
    placed = (await order(food, paula, offer["uri"])).json()
    await network.settle()
    # The marketplace's server is gone for good: no answer will ever come.
    network.router.apps.pop("market.test")
    network.nodes.pop("market.test")

    network.clock.advance(buying.UNANSWERED_AFTER - timedelta(minutes=1))
    await network.settle()
    waiting = (await food.get(f"/api/v1/orders/{placed['key']}", headers=paula)).json()
    assert waiting["state"] == "pending"
    network.clock.advance(timedelta(minutes=2))
    await network.settle()

    shown = (await food.get(f"/api/v1/orders/{placed['key']}", headers=paula)).json()
    assert (shown["state"], shown["reason"]) == ("expired", "unanswered")
    assert shown["answer"] == "the seller never answered; the order is closed"
    assert shown["actions"] == []


async def test_each_party_and_no_one_else_reads_the_orders_documents(network: Network) -> None:
    market, food, paula, offer = await market_and_food(network)
    stranger = await network.add("stranger.test")
    placed = (await order(food, paula, offer["uri"])).json()
    await network.settle()
    (received,) = await received_orders(market)
    assert (await decide(market, received["key"], "accept")).status_code == 200
    await network.settle()
    agreement_uri = (await food.get(f"/api/v1/orders/{placed['key']}", headers=paula)).json()[
        "agreement"
    ]
    order_uri = f"{food.base}/orders/{placed['key']}"

    # Each side's server fetches the other's document, signed as its co-op.
    agreement = await food.node.peers.fetch(agreement_uri)
    assert wire.parse_agreement(agreement).id == agreement_uri
    offered = await market.node.peers.fetch(order_uri)
    assert wire.parse_order_offer(offered).offer_uri == offer["uri"]

    # Anyone else, signed or not, learns nothing.
    for uri in (agreement_uri, order_uri):
        unsigned = await network.http.get(uri, headers={"Accept": "application/activity+json"})
        assert unsigned.status_code == 404
        with pytest.raises(FetchError):
            await stranger.node.peers.fetch(uri)
