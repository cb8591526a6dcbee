"""Offers between co-ops, end to end through real apps, signatures and the outbox: B
publishes, changes and withdraws an offer; A, which follows B, sees each step in its
catalogue; C, which does not own the offer, cannot change it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.catalogue import store
from node.delivery import worker as delivery_worker
from node.follows import actions
from node.follows import store as follows
from node.inbox import worker as inbox_worker
from node.offers import backfill, backfill_store
from node.offers import publish as publishing
from node.services import outbox, remote_actors
from node.storage.tables import deliveries, inbox_activities, outbox_activities
from tests.node.web.test_inbox import post
from tests.support.network import Network, TestNode


def apples(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": {"en": "Organic apples, 1 kg", "fr": "Pommes bio"},
        "description": {"en": "Picked **this morning** in Lyon. <script>alert(1)</script>"},
        "categories": ["apples"],
        "price": {"amount": "3.50", "currency": "EUR"},
        "unit": "kg",
        "quantity": {"available": "40", "minimum": "1"},
        "location": {"name": "Lyon", "latitude": 45.764, "longitude": 4.8357},
        "end_time": "2027-06-30T18:00:00+02:00",
        "claims": ["fair_trade", "organic"],
    }
    data.update(changes)
    return data


async def search(node: TestNode, **params: str) -> list[dict[str, Any]]:
    response = await node.get("/api/v1/catalogue", params=params, headers=node.auth)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def publish(node: TestNode, data: dict[str, Any]) -> dict[str, Any]:
    response = await node.request("POST", "/api/v1/offers", json=data, headers=node.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_followed_coops_offer_reaches_the_catalogue_through_each_step(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    gamma = await network.add("gamma.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await actions.follow(alpha.node, "coop@gamma.test")
    await network.settle()

    created = await publish(beta, apples())
    honey = await publish(
        gamma, apples(title={"fr": "Miel de lavande"}, categories=["honey"], claims=[])
    )
    await network.settle()
    found = await search(alpha, q="pommes")
    assert [f["uri"] for f in found] == [created["uri"]]
    assert [f["uri"] for f in await search(alpha, q="miel")] == [honey["uri"]]
    assert found[0]["coop"] == f"{beta.base}/actors/coop"
    # The price keeps the euro's two decimals, as it was written ("3.50", not "3.5").
    assert found[0]["price"] == {"amount": "3.50", "currency": "EUR", "unit": "kg"}
    # The title in the reader's language where the offer has one, as the pages choose.
    assert (found[0]["title"], found[0]["title_language"]) == ("Organic apples, 1 kg", None)
    response = await alpha.get(
        "/api/v1/catalogue",
        params={"q": "pommes"},
        headers={**alpha.auth, "Accept-Language": "de, fr-CA;q=0.9, en;q=0.5"},
    )
    [french] = response.json()["items"]
    assert (french["title"], french["title_language"]) == ("Pommes bio", "fr")
    response = await alpha.get(
        "/api/v1/catalogue", params={"q": "miel"}, headers={**alpha.auth, "Accept-Language": "en"}
    )
    [only_french] = response.json()["items"]  # no English title: the one it has
    assert (only_french["title"], only_french["title_language"]) == ("Miel de lavande", "fr")
    assert [f["uri"] for f in await search(alpha, q="apples", claim="organic")] == [created["uri"]]
    # The script never reached the stored HTML.
    assert "<script" not in created["proposal"]["content"]

    changed = await beta.request(
        "PATCH",
        f"/api/v1/offers/{created['id']}",
        json={"quantity": {"available": "12"}, "price": {"amount": "3.20"}},
        headers=beta.auth,
    )
    assert changed.status_code == 200, changed.text
    await network.settle()
    found = await search(alpha, q="pommes")
    assert found[0]["price"]["amount"] == "3.20"

    gone = await beta.request("DELETE", f"/api/v1/offers/{created['id']}", headers=beta.auth)
    assert gone.status_code == 204
    await network.settle()
    assert await search(alpha, q="pommes") == []
    assert [f["uri"] for f in await search(alpha, q="miel")] == [honey["uri"]]
    assert [f["status"] for f in await search(alpha, q="pommes", status="withdrawn")] == [
        "withdrawn"
    ]
    tomb = await beta.get(
        f"/offers/{created['id']}", headers={"Accept": "application/activity+json"}
    )
    assert tomb.status_code == 410
    assert tomb.json()["type"] == "Tombstone"


async def test_a_coop_not_followed_fills_no_catalogue(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await actions.follow(beta.node, "coop@alpha.test")  # beta follows alpha, not back
    await network.settle()

    await publish(beta, apples())
    await network.settle()

    assert await search(alpha, q="pommes") == []


async def test_another_coop_cannot_update_an_offer_it_does_not_own(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    gamma = await network.add("gamma.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await actions.follow(alpha.node, "coop@gamma.test")
    await network.settle()
    created = await publish(beta, apples())
    await network.settle()

    spoof = {
        **created["proposal"],
        "attributedTo": f"{gamma.base}/actors/coop",
        "name": "Rotten apples",
        "nameMap": {"en": "Rotten apples"},
    }
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{gamma.base}/activities/spoof",
        "type": "Update",
        "actor": f"{gamma.base}/actors/coop",
        "object": spoof,
    }
    response = await post(network, gamma, alpha, activity)
    await network.settle()

    assert response.status_code == 202
    found = await search(alpha, q="apples")
    assert [f["title"] for f in found] == ["Organic apples, 1 kg"]
    rows = await alpha.node.db.read(
        lambda c: c.execute(
            select(inbox_activities.c.state, inbox_activities.c.last_error).where(
                inbox_activities.c.activity_id == activity["id"]
            )
        ).all()
    )
    assert rows[0].state == "failed"
    assert "refused" in rows[0].last_error


async def test_invalid_offers_are_refused_with_the_field(network: Network) -> None:
    beta = await network.add("beta.test")

    for data, field in [
        (apples(price={"amount": "-1", "currency": "EUR"}), "price.amount"),
        (apples(categories=["apples"] * 1_000), "categories"),
        (apples(unknown="x"), "unknown"),
    ]:
        response = await beta.request("POST", "/api/v1/offers", json=data, headers=beta.auth)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field

    # A 10,000-item list does not even fit the size a JSON body may have.
    huge = await beta.request(
        "POST", "/api/v1/offers", json=apples(categories=["apples"] * 10_000), headers=beta.auth
    )
    assert huge.status_code == 413
    assert "over 65536" in huge.json()["reason"]
    collection = await beta.get(
        "/actors/coop/offers", headers={"Accept": "application/activity+json"}
    )
    assert collection.json()["totalItems"] == 0


async def test_a_new_follower_imports_every_existing_offer(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    for n in range(500):
        await publishing.create_offer(
            beta.node, apples(title={"en": f"Apples, crate {n}"}, end_time=None)
        )
    beta_coop = f"{beta.base}/actors/coop"

    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle(rounds=40)

    walk = await alpha.node.db.read(
        lambda c: backfill_store.progress(c, actor_id=alpha.node.peers.coop_id, followed=beta_coop)
    )
    assert walk is not None
    assert (walk["state"], walk["imported"], walk["total"], walk["pages"]) == ("done", 500, 500, 5)
    found = await search(alpha, q="crate", coop=beta_coop, limit="100")
    assert len(found) == 100
    count = await alpha.node.db.read(lambda c: store.count(c, actor=beta_coop))
    assert count == 500


async def test_an_interrupted_backfill_resumes_where_it_was(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    for n in range(250):
        await publishing.create_offer(beta.node, apples(title={"en": f"Pears {n}"}, end_time=None))
    beta_coop = f"{beta.base}/actors/coop"
    await actions.follow(alpha.node, "coop@beta.test")
    # The Follow, its Accept, and one page of the walk; then the node "stops".
    for _ in range(3):
        await delivery_worker.run_once(alpha.node)
        await inbox_worker.run_once(beta.node)
        await delivery_worker.run_once(beta.node)
        await inbox_worker.run_once(alpha.node)
    with monkeypatch.context() as patch:
        patch.setattr(backfill, "PAGES_PER_ROUND", 1)
        assert await backfill.run_once(alpha.node) == 1
    network.router.log.clear()

    await network.settle()

    walk = await alpha.node.db.read(
        lambda c: backfill_store.progress(c, actor_id=alpha.node.peers.coop_id, followed=beta_coop)
    )
    assert walk is not None
    assert (walk["state"], walk["imported"], walk["pages"]) == ("done", 250, 3)
    pages = [url for method, url in network.router.log if "/offers?" in url]
    assert len(pages) == 2  # the first page was not fetched again


async def test_servers_without_our_vocabulary_also_get_a_readable_note(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")  # a coopnode: declares the vocabulary
    beta = await network.add("beta.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()
    toot = {
        "id": "https://toot.test/users/ana",
        "type": "Person",
        "inbox": "https://toot.test/users/ana/inbox",
        "endpoints": {"sharedInbox": "https://toot.test/inbox"},
    }
    now = beta.node.clock.now()
    coop_id = beta.node.peers.coop_id

    def mastodon_follower(conn: Any) -> None:
        remote_actors.store(conn, toot, now=now)
        follows.add_follower(
            conn,
            actor_id=coop_id,
            follower=toot["id"],
            follow_id="https://toot.test/follows/1",
            inbox=toot["inbox"],
            shared_inbox="https://toot.test/inbox",
            state=follows.ACCEPTED,
            now=now,
        )

    await beta.node.db.write(mastodon_follower)

    created = await publish(beta, apples())

    query = (
        select(deliveries.c.inbox, outbox_activities.c.body)
        .join(outbox_activities, outbox_activities.c.id == deliveries.c.activity_pk)
        .where(outbox_activities.c.type == "Create")
    )
    rows = await beta.node.db.read(lambda c: c.execute(query).all())
    sent = sorted((r.inbox, json.loads(r.body)["object"]["type"]) for r in rows)
    assert sent == [
        (f"{alpha.base}/inbox", "Proposal"),
        ("https://toot.test/inbox", "Note"),
        ("https://toot.test/inbox", "Proposal"),
    ]
    note = next(json.loads(r.body)["object"] for r in rows if "Note" in r.body)
    assert created["uri"] in note["content"]  # a link Mastodon shows
    assert f"{beta.base}/tags/apples" in note["content"]  # the category as a hashtag
    tagged = await beta.get("/tags/apples", headers={"Accept": "application/activity+json"})
    assert tagged.json()["orderedItems"] == [created["uri"]]
    assert (await beta.get("/tags/no-such-thing")).status_code == 404


async def test_activities_about_one_offer_reach_an_inbox_in_order(network: Network) -> None:
    beta = await network.add("beta.test")
    now = beta.node.clock.now()
    coop_id = beta.node.peers.coop_id
    inbox = "https://slow.test/inbox"

    def queue(conn: Any) -> None:
        for n, kind in enumerate(["Create", "Update", "Delete"]):
            activity = {"id": f"https://beta.test/activities/{n}", "type": kind}
            outbox.publish(
                conn,
                activity,
                actor_id=coop_id,
                inboxes=[inbox, "https://other.test/inbox"],
                now=now,
                ordering_key="https://beta.test/offers/1",
            )

    await beta.node.db.write(queue)

    def claimed() -> list[tuple[str, str]]:
        batch = beta.node.db.write_sync(lambda c: outbox.claim(c, now=now))
        return sorted((d.inbox, d.activity_id.rsplit("/", 1)[1]) for d in batch)

    # One per inbox at a time, the oldest first; the next only once it is settled.
    first = claimed()
    assert first == [("https://other.test/inbox", "0"), ("https://slow.test/inbox", "0")]
    assert claimed() == []  # both still claimed: nothing overtakes them
    batch_ids = await beta.node.db.read(
        lambda c: c.execute(
            select(deliveries.c.id, deliveries.c.inbox).order_by(deliveries.c.id)
        ).all()
    )
    slow_first = next(r.id for r in batch_ids if r.inbox == inbox)
    other_first = next(r.id for r in batch_ids if r.inbox != inbox)
    await beta.node.db.write(
        lambda c: outbox.retry(c, slow_first, at=now, status=500, error="HTTP 500")
    )
    await beta.node.db.write(
        lambda c: outbox.finish(c, [other_first], state="delivered", now=now, status=202)
    )
    # The slow inbox gets its Create again before anything else; the other moves on.
    assert claimed() == [("https://other.test/inbox", "1"), ("https://slow.test/inbox", "0")]


async def test_a_mitra_shaped_offer_arrives_through_the_inbox(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()
    mitra = (Path(__file__).parents[2] / "data" / "offers" / "mitra_proposal.json").read_text()
    proposal = json.loads(
        mitra.replace("https://mitra.example/users/lena", f"{beta.base}/actors/coop")
    )
    activity = {
        "@context": proposal["@context"],
        "id": f"{beta.base}/activities/mitra-1",
        "type": "Create",
        "actor": f"{beta.base}/actors/coop",
        "object": proposal,
    }

    response = await post(network, beta, alpha, activity)
    await network.settle()

    assert response.status_code == 202
    found = await search(alpha, q="subscription", coop=f"{beta.base}/actors/coop")
    assert [f["uri"] for f in found] == [proposal["id"]]
    # Its currency (a CAIP-19 asset, piconeros) is no ISO 4217 code: kept as the peer
    # named it.
    assert found[0]["price"] == {
        "amount": "11574",
        "currency": "caip:19:monero:418015bb9ae982a1975da7d79277c270/slip44:128",
        "unit": found[0]["price"]["unit"],
    }


async def test_an_offer_shows_a_photo_uploaded_to_the_node(network: Network) -> None:
    from tests.node.web.test_media import png

    beta = await network.add("beta.test")
    upload = await beta.request(
        "POST",
        "/api/v1/media?description=A%20crate%20of%20apples",
        content=png(),
        headers={**beta.auth, "Content-Type": "image/png"},
    )
    assert upload.status_code == 201, upload.text
    key = upload.json()["id"]

    created = await publish(beta, apples(images=[{"media_id": key}]))
    unknown = await beta.request(
        "POST",
        "/api/v1/offers",
        json=apples(images=[{"media_id": "x" * 22}]),
        headers=beta.auth,
    )

    attachment = created["proposal"]["attachment"][0]
    assert attachment["url"] == upload.json()["url"]
    assert attachment["mediaType"] == "image/png"
    assert attachment["name"] == "A crate of apples"
    served = await beta.get(attachment["url"].removeprefix(beta.base))
    assert served.content == png()
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "images[0].media_id"
