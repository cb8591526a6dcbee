"""The outbox lists what an actor published for everyone, as its objects are now, newest
first and a page at a time; ``following`` lists the follows that were accepted.

Every page is read over HTTP through the node's app, as a peer (Mastodon counting posts,
a server backfilling a profile) reads it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from node.follows import actions
from node.follows import store as follows
from node.services import identity, outbox
from node.storage.tables import outbox_activities
from tests.node.offers.test_federation import apples, publish
from tests.node.web.test_inbox import AS2
from tests.support.coops import make_coop, take_part_in
from tests.support.network import Network, TestNode

ACCEPT = {"Accept": AS2}
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def fetch(node: TestNode, url: str) -> dict[str, Any]:
    assert url.startswith(node.base), url
    response = await node.get(url[len(node.base) :], headers=ACCEPT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(AS2)
    document: dict[str, Any] = response.json()
    return document


async def walk(node: TestNode, collection_url: str) -> tuple[dict[str, Any], list[Any]]:
    """The collection, and every item of its pages, following ``next`` from ``first``."""
    collection = await fetch(node, collection_url)
    assert collection["type"] == "OrderedCollection"
    items: list[Any] = []
    url = collection.get("first")
    seen: set[str] = set()
    while url is not None:
        assert url not in seen, f"the pages loop back to {url}"
        seen.add(url)
        page = await fetch(node, url)
        assert page["type"] == "OrderedCollectionPage"
        assert page["id"] == url
        assert page["partOf"] == collection["id"]
        items.extend(page["orderedItems"])
        url = page.get("next")
    return collection, items


def objects(items: list[dict[str, Any]]) -> list[str]:
    return [item["object"]["id"] for item in items]


async def test_the_outbox_counts_and_lists_what_the_coop_published_for_everyone(
    network: Network,
) -> None:
    coop = await make_coop(network, local=2, remote=0)
    node = coop.node
    peer = await network.add("beta.test")
    await actions.follow(peer.node, "coop@alpha.test")  # a Follow, an Accept: not listed
    await network.settle()
    honey = await publish(node, apples(title={"en": "Lavender honey"}))
    pears = await publish(node, apples(title={"en": "Pears"}))
    changed = await node.request(
        "PATCH",
        f"/api/v1/offers/{honey['id']}",
        json={"price": {"amount": "9.10"}},
        headers=node.auth,
    )
    assert changed.status_code == 200, changed.text
    proposal = await coop.propose("m0", quorum="0%")
    await coop.vote("m0", proposal["id"], "For")
    network.clock.advance(timedelta(days=8))  # counts published, then the close
    await network.settle()
    renamed = await node.request(
        "PATCH", "/api/v1/profile", json={"name": "Renamed co-op"}, headers=node.auth
    )
    assert renamed.status_code == 200, renamed.text  # a public Update of the actor

    collection, items = await walk(node, "https://alpha.test/actors/coop/outbox")

    question = proposal["uri"]
    assert collection["totalItems"] == len(items) == 6
    assert collection["first"] == "https://alpha.test/actors/coop/outbox?page=true"
    # Newest first: the outcome, the proposal, then each offer's Note after its Proposal.
    assert objects(items) == [
        f"{question}/outcome",
        question,
        f"{pears['uri']}/note",
        pears["uri"],
        f"{honey['uri']}/note",
        honey["uri"],
    ]
    assert {item["type"] for item in items} == {"Create"}
    for item in items:
        assert item["actor"] == "https://alpha.test/actors/coop"
        assert PUBLIC in item["to"]
        assert item["id"].startswith("https://alpha.test/activities/")
        # Each object as its id serves it now, not as it first went out.
        served = await fetch(node, item["object"]["id"])
        served.pop("@context")
        assert item["object"] == served
    by_id = {item["object"]["id"]: item["object"] for item in items}
    assert by_id[honey["uri"]]["reciprocal"]["resourceQuantity"]["hasNumericalValue"] == "9.10"
    assert by_id[question]["closed"]
    # The whole page reads under one context, the objects' own included.
    page = await fetch(node, collection["first"])
    assert page["@context"][0] == "https://www.w3.org/ns/activitystreams"
    for entry in (await fetch(node, question))["@context"]:
        assert entry in page["@context"]


async def test_a_withdrawn_offers_activities_leave_the_outbox(network: Network) -> None:
    node = await network.add("alpha.test")
    kept = await publish(node, apples(title={"en": "Kept"}))
    gone = await publish(node, apples(title={"en": "Withdrawn"}))
    before, _ = await walk(node, "https://alpha.test/actors/coop/outbox")
    # More withdrawn offers in a row than a page holds items: a page reads past them.
    many = [await publish(node, apples(title={"en": f"Withdrawn {n}"})) for n in range(14)]
    newest = await publish(node, apples(title={"en": "Newest"}))

    for offer in (gone, *many):
        withdrawn = await node.request("DELETE", f"/api/v1/offers/{offer['id']}", headers=node.auth)
        assert withdrawn.status_code == 204

    collection, items = await walk(node, "https://alpha.test/actors/coop/outbox")
    assert before["totalItems"] == 4
    assert collection["totalItems"] == len(items) == 4
    assert objects(items) == [
        f"{newest['uri']}/note",
        newest["uri"],
        f"{kept['uri']}/note",
        kept["uri"],
    ]
    assert {item["type"] for item in items} == {"Create"}  # no Delete either
    first = await fetch(node, collection["first"])
    assert "next" not in first  # nothing older is listed
    # The withdrawn offers' Creates are no longer public rows: no page reads past them.
    listed = await node.node.db.read(
        lambda conn: conn.execute(
            select(func.count()).where(
                outbox_activities.c.type == "Create", outbox_activities.c.public == 1
            )
        ).scalar_one()
    )
    assert listed == 4


async def test_pages_chain_newest_first_with_nothing_missing_or_twice(network: Network) -> None:
    node = await network.add("alpha.test")
    published = []
    for n in range(23):
        published.append(await publish(node, apples(title={"en": f"Offer {n}"})))
    expected = [
        uri for offer in reversed(published) for uri in (f"{offer['uri']}/note", offer["uri"])
    ]
    url = "https://alpha.test/actors/coop/outbox"
    collection = await fetch(node, url)
    assert collection["totalItems"] == 46

    # Forward from the first page; an offer published and another withdrawn during the
    # walk move nothing that is still to come.
    first = await fetch(node, collection["first"])
    assert len(first["orderedItems"]) == 20
    late = await publish(node, apples(title={"en": "Published during the walk"}))
    last_one = published[0]
    response = await node.request("DELETE", f"/api/v1/offers/{last_one['id']}", headers=node.auth)
    assert response.status_code == 204
    items = list(first["orderedItems"])
    page = first
    pages = 1
    while "next" in page:
        page = await fetch(node, page["next"])
        assert page["partOf"] == url
        items.extend(page["orderedItems"])
        pages += 1
    assert pages == 3
    assert objects(items) == expected[:-2]  # the withdrawn offer is gone from the end

    # The newer page of the first one holds what was published since.
    newer = await fetch(node, first["prev"])
    assert objects(newer["orderedItems"]) == [f"{late['uri']}/note", late["uri"]]
    # Backward from the last page, through "prev", the same items in the same order.
    expected = [f"{late['uri']}/note", late["uri"], *expected[:-2]]
    page = await fetch(node, collection["last"])
    assert objects(page["orderedItems"]) == expected[-20:]
    assert "next" not in page
    backward = list(page["orderedItems"])
    while page["orderedItems"]:
        page = await fetch(node, page["prev"])
        backward[:0] = page["orderedItems"]
    assert objects(backward) == expected
    assert (await fetch(node, url))["totalItems"] == len(expected)


async def test_followers_only_direct_and_invitation_activities_are_never_listed(
    network: Network,
) -> None:
    tourism = await make_coop(network, local=1, remote=0, domain="tourism.test")
    food = await make_coop(network, local=1, remote=0, domain="food.test")
    await take_part_in(network, tourism, food)  # food's Follow, tourism's Accept
    shared = await tourism.propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="0%",
        electorate=["coop@food.test"],
    )
    await network.settle()
    # An invitation food has not answered: nothing of it is food's to list.
    _, food_items = await walk(food.node, "https://food.test/actors/coop/outbox")
    assert food_items == []
    invitations = await food.node.request(
        "GET", "/api/v1/proposals/invitations", headers=food.node.auth
    )
    [invitation] = invitations.json()["invitations"]
    declined = await food.node.request(
        "POST", f"/api/v1/proposals/{invitation['id']}/decline", headers=food.node.auth
    )
    assert declined.status_code == 200  # a Reject to the host alone
    # A Create addressed to followers only, of an object that is itself public.
    offer = await publish(food.node, apples())
    coop_pk = food.node.node.peers.coop_id
    followers_only = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://food.test/activities/followers-only",
        "type": "Create",
        "actor": "https://food.test/actors/coop",
        "to": ["https://food.test/actors/coop/followers"],
        "object": {"id": offer["uri"], "type": "Proposal"},
    }
    await food.node.node.db.write(
        lambda conn: outbox.publish(
            conn, followers_only, actor_id=coop_pk, inboxes=[], now=network.clock.now()
        )
    )
    await network.settle()

    food_collection, food_items = await walk(food.node, "https://food.test/actors/coop/outbox")
    assert food_collection["totalItems"] == 2
    assert objects(food_items) == [f"{offer['uri']}/note", offer["uri"]]
    assert "https://food.test/activities/followers-only" not in [i["id"] for i in food_items]
    # The host lists the proposal it shared: its Question is public at its id.
    _, tourism_items = await walk(tourism.node, "https://tourism.test/actors/coop/outbox")
    assert objects(tourism_items) == [shared["uri"]]


async def test_a_members_outbox_lists_their_public_activities_and_not_their_ballots(
    network: Network,
) -> None:
    tourism = await make_coop(network, local=1, remote=0, domain="tourism.test")
    food = await make_coop(network, local=1, remote=0, domain="food.test")
    await take_part_in(network, tourism, food)
    await tourism.propose(
        "m0", rule="majority", threshold=None, quorum="0%", electorate=["coop@food.test"]
    )
    await network.settle()
    invitations = await food.node.request(
        "GET", "/api/v1/proposals/invitations", headers=food.node.auth
    )
    [invitation] = invitations.json()["invitations"]
    accepted = await food.node.request(
        "POST", f"/api/v1/proposals/{invitation['id']}/accept", headers=food.node.auth
    )
    assert accepted.status_code == 200, accepted.text
    await network.settle()
    voted = await food.vote("m0", invitation["id"], "For")  # sent to the host, signed as m0
    assert voted.status_code == 201, voted.text
    await network.settle()
    await publish(food.node, apples())
    member_pk = await food.node.node.db.read(lambda conn: identity.find_actor_id(conn, "m0"))
    assert member_pk is not None
    sent = await food.node.node.db.read(
        lambda conn: conn.execute(
            select(outbox_activities.c.type, outbox_activities.c.public).where(
                outbox_activities.c.actor_id == member_pk
            )
        ).all()
    )
    assert [tuple(row) for row in sent] == [("Create", 0)]  # the ballot, to the host only
    # The member's one public activity: as the co-op's are, it is listed while its
    # object is public.
    offer = await publish(food.node, apples(title={"en": "Shared by m0"}))
    document = await fetch(food.node, offer["uri"])
    document.pop("@context")
    mine = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://food.test/activities/by-m0",
        "type": "Create",
        "actor": "https://food.test/actors/m0",
        "to": [PUBLIC],
        "object": document,
    }
    await food.node.node.db.write(
        lambda conn: outbox.publish(
            conn, mine, actor_id=member_pk, inboxes=[], now=network.clock.now(), public=True
        )
    )

    collection, items = await walk(food.node, "https://food.test/actors/m0/outbox")

    assert collection["id"] == "https://food.test/actors/m0/outbox"
    assert collection["totalItems"] == len(items) == 1
    assert [item["id"] for item in items] == ["https://food.test/activities/by-m0"]
    # The co-op's outbox has its own offers, and not the member's ballot nor activity.
    _, coop_items = await walk(food.node, "https://food.test/actors/coop/outbox")
    assert "https://food.test/activities/by-m0" not in [i["id"] for i in coop_items]
    assert all(i["actor"] == "https://food.test/actors/coop" for i in coop_items)
    assert (await food.node.get("/actors/nobody/outbox", headers=ACCEPT)).status_code == 404


async def test_following_lists_accepted_follows_only_and_pages_hold_during_a_walk(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")
    await network.add("gamma.test", follow_policy="approve")  # stays pending
    await network.add("delta.test", follow_policy="listed")  # answers Reject
    for target in ("coop@beta.test", "coop@gamma.test", "coop@delta.test"):
        await actions.follow(alpha.node, target)
    await network.settle()
    # Many more accepted follows than one page holds, with pending ones among them.
    coop_pk = alpha.node.peers.coop_id
    now = network.clock.now()

    def many(conn: Any) -> None:
        for n in range(80):
            followed = f"https://peer{n}.test/actors/coop"
            follow_id = f"https://alpha.test/activities/follow-{n}"
            follows.start_following(
                conn, actor_id=coop_pk, followed=followed, follow_id=follow_id, now=now
            )
            if n % 4:
                follows.settle_following(
                    conn, follow_id=follow_id, by=followed, state=follows.ACCEPTED, now=now
                )

    await alpha.node.db.write(many)
    accepted = [f"https://peer{n}.test/actors/coop" for n in reversed(range(80)) if n % 4]

    collection = await fetch(alpha, "https://alpha.test/actors/coop/following")
    first = await fetch(alpha, collection["first"])
    # A follow accepted during the walk, newer than every item of page one, pushes
    # none of them into page two.
    await alpha.node.db.write(
        lambda conn: follows.settle_following(
            conn,
            follow_id="https://alpha.test/activities/follow-76",
            by="https://peer76.test/actors/coop",
            state=follows.ACCEPTED,
            now=now,
        )
    )
    listed = list(first["orderedItems"])
    page = first
    while "next" in page:
        page = await fetch(alpha, page["next"])
        listed.extend(page["orderedItems"])

    assert collection["id"] == "https://alpha.test/actors/coop/following"
    assert collection["totalItems"] == len(accepted) + 1  # beta too
    assert len(first["orderedItems"]) == 50
    assert listed == [*accepted, "https://beta.test/actors/coop"]
    assert "https://gamma.test/actors/coop" not in listed  # pending
    assert "https://delta.test/actors/coop" not in listed  # rejected


async def test_hidden_collections_give_their_size_and_no_list(network: Network) -> None:
    alpha = await network.add("alpha.test", public_collections=False)
    await network.add("beta.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()

    for query in ("", "?page=1", "?page=true"):
        collection = await fetch(alpha, f"https://alpha.test/actors/coop/following{query}")
        assert collection["totalItems"] == 1
        assert "orderedItems" not in collection  # not "none", but not shown
        assert "first" not in collection


async def test_crafted_outbox_cursors_are_bad_requests(network: Network) -> None:
    node = await network.add("alpha.test")
    for query in (
        "page=%C2%B2",
        "page=2",
        "max_id=%C2%B2&page=true",
        "max_id=-1&page=true",
        "min_id=99999999999999999999999999&page=true",
        "max_id=5&min_id=3&page=true",
    ):
        response = await node.get(f"/actors/coop/outbox?{query}", headers=ACCEPT)
        assert response.status_code == 400, query
        assert json.loads(response.text)["error"] == "bad_request"
    for query in ("max_id=%C2%B2&page=1", "page=0"):
        response = await node.get(f"/actors/coop/following?{query}", headers=ACCEPT)
        assert response.status_code == 400, query
    # A number past what a row id can be is refused on both engines; the largest
    # row id is taken.
    for query in ("max_id=2147483648", "min_id=999999999999999999"):
        response = await node.get(f"/actors/coop/outbox?{query}", headers=ACCEPT)
        assert response.status_code == 400, query
    await publish(node, apples())
    widest = await fetch(node, "https://alpha.test/actors/coop/outbox?max_id=2147483647")
    assert len(widest["orderedItems"]) == 2
    beyond = await fetch(node, "https://alpha.test/actors/coop/outbox?min_id=2147483647")
    assert beyond["orderedItems"] == []
    assert "prev" not in beyond
    assert "next" not in beyond  # an empty page leads nowhere, as Mastodon's
