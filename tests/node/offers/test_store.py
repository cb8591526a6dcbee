"""The offers table as the pages and the API read it: the co-op's own offers at their
ids, in their collection and under their hashtags, a member's list, and any offer of
the catalogue with what its page needs."""

from __future__ import annotations

import json
from typing import Any

from node.catalogue import search
from node.follows import actions
from node.offers import reading, store
from node.offers.publish import create_offer
from node.storage.ids import MAX_ROW_ID
from tests.node.web.test_media import png, upload
from tests.support.network import Network, TestNode


def offer(title: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": {"fr": title},
        "categories": ["apples"],
        "price": {"amount": "12.50", "currency": "EUR"},
        "unit": "kg",
    }
    data.update(changes)
    return data


async def publish(coop: TestNode, data: dict[str, Any]) -> str:
    response = await coop.request("POST", "/api/v1/offers", json=data, headers=coop.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["uri"])


async def withdraw(coop: TestNode, uri: str) -> None:
    key = uri.rsplit("/", 1)[-1]
    response = await coop.request("DELETE", f"/api/v1/offers/{key}", headers=coop.auth)
    assert response.status_code == 204, response.text


async def test_the_coops_offers_are_read_at_their_ids_in_the_collection_and_by_tag(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    db = coop.node.db
    actor = "https://alpha.test/actors/coop"
    first = await publish(coop, offer("Pommes"))
    second = await publish(coop, offer("Poires", categories=["pears"]))
    third = await publish(coop, offer("Prunes"))
    await withdraw(coop, third)

    found = await db.read(lambda c: store.find_published(c, first))
    gone = await db.read(lambda c: store.find_published(c, third))
    editable = await db.read(lambda c: store.find_editable(c, second))
    count = await db.read(lambda c: store.count_listed(c, actor))
    page = await db.read(lambda c: store.listed_page(c, actor, before=None, limit=10))
    older = await db.read(lambda c: store.listed_page(c, actor, before=page[0][0], limit=10))
    unbounded = await db.read(
        lambda c: store.listed_page(c, actor, before=MAX_ROW_ID + 1, limit=10)
    )
    apples = await db.read(lambda c: store.tagged(c, "apples", limit=10))

    assert found is not None
    assert not found.withdrawn
    assert json.loads(found.document)["id"] == first
    assert found.source is not None
    assert json.loads(found.source)["title"] == {"fr": "Pommes"}
    assert gone is not None
    assert gone.withdrawn
    assert editable is not None
    assert editable.author_id is None
    assert not editable.withdrawn
    assert await db.read(lambda c: store.find_published(c, first + "x")) is None
    assert count == 2
    assert [json.loads(document)["id"] for _, document in page] == [second, first]
    assert [row_id for row_id, _ in older] == [page[1][0]]
    assert unbounded == page
    assert apples == [first]  # the withdrawn one is not listed


async def test_a_members_list_holds_their_offers_and_an_admins_all(network: Network) -> None:
    coop = await network.add("alpha.test")
    node = coop.node
    await create_offer(node, offer("Pommes"), author_id=7)
    await create_offer(node, offer("Poires"), author_id=8)
    await create_offer(node, offer("Prunes"), author_id=7)

    mine = await node.db.read(lambda c: store.list_authored(c, author_id=7, limit=10))
    everyone = await node.db.read(lambda c: store.list_authored(c, author_id=None, limit=10))
    first = await node.db.read(lambda c: store.list_authored(c, author_id=None, limit=1))

    assert [o.title for o in mine] == ["Prunes", "Pommes"]
    assert [o.title for o in everyone] == ["Prunes", "Poires", "Pommes"]
    assert [o.title for o in first] == ["Prunes"]
    assert str(mine[0].price) == "12.5"
    assert mine[0].currency == "EUR"
    assert mine[0].unit == "kg"
    assert not mine[0].withdrawn
    assert mine[0].end_time is None


async def test_a_photo_is_in_use_while_an_offer_names_it(network: Network) -> None:
    coop = await network.add("alpha.test")
    sent = await upload(coop, png())
    assert sent.status_code == 201, sent.text
    key = sent.json()["id"]
    db = coop.node.db

    before = await db.read(lambda c: store.photo_in_use(c, key))
    await publish(coop, offer("Pommes", images=[{"media_id": key, "description": "Apples"}]))
    after = await db.read(lambda c: store.photo_in_use(c, key))

    assert (before, after) == (False, True)


async def test_the_catalogues_pages_read_links_labels_and_the_coops_name(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test", name="Alpha Market")
    beta = await network.add("beta.test", name="Beta Farm")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()
    ours = await publish(alpha, offer("Pain"))
    theirs = await publish(beta, offer("Miel"))
    await network.settle()
    node = alpha.node
    now = node.clock.now()
    query = search.parse_query({})
    local_actor = "https://alpha.test/actors/coop"

    read = await node.db.read(
        lambda c: reading.read_catalogue(c, query, now=now, local_actor=local_actor, handle="coop")
    )

    assert {hit.uri for hit in read.page.hits} == {ours, theirs}
    assert read.linked[ours].local
    assert not read.linked[theirs].local
    assert list(read.labels) == ["https://beta.test/actors/coop"]
    assert read.labels["https://beta.test/actors/coop"].name == "Beta Farm"
    assert read.coop_name == "Alpha Market"

    peer = await node.db.read(
        lambda c: reading.read_catalogue_offer(c, read.linked[theirs].id, handle="coop")
    )
    own = await node.db.read(lambda c: reading.read_local_offer(c, ours, handle="coop"))
    assert peer.offer is not None
    assert peer.offer.uri == theirs
    assert not peer.offer.local
    assert peer.label is not None
    assert peer.label.name == "Beta Farm"
    assert peer.coop_name == "Alpha Market"
    assert own.offer is not None
    assert own.offer.local
    assert own.label is None
    assert own.offer.title == "Pain"
    assert str(own.offer.price) == "12.5"
    # A peer's offer is not the co-op's own, and no row has an id out of range.
    assert (await node.db.read(lambda c: store.shown_local(c, theirs))) is None
    for offer_id in (0, MAX_ROW_ID + 1):
        nothing = await node.db.read(
            lambda c, offer_id=offer_id: reading.read_catalogue_offer(c, offer_id, handle="coop")
        )
        assert nothing.offer is None
        assert nothing.coop_name == "Alpha Market"
