"""Questions under the co-op's offers, where it takes them (``offer_questions``): a
buyer replies from Mastodon, a member answers; where it does not, neither is kept."""

from __future__ import annotations

from node.discussion import store
from tests.support.coops import make_coop
from tests.support.network import Network
from tests.support.trade import honey, publish


async def test_an_offer_takes_questions_where_the_coop_wants_them(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0, offer_questions=True)
    offer = await publish(coop.node, honey())
    buyer = coop.mastodon.add_user("buyer")
    await coop.mastodon.reply(
        buyer, f"{coop.node.base}/actors/coop/inbox", offer["uri"], "<p>Livrez-vous à Brest ?</p>"
    )
    await network.settle()
    listed = await coop.node.request("GET", f"/api/v1/offers/{offer['id']}/comments")
    assert listed.status_code == 200, listed.text
    [question] = listed.json()["comments"]
    assert question["server"] == "mastodon.test"
    answer = await coop.node.request(
        "POST",
        f"/api/v1/offers/{offer['id']}/comments",
        json={"text": "Oui, le mardi.", "reply_to": question["key"]},
        headers=coop.local["m0"],
    )
    assert answer.status_code == 201, answer.text
    await network.settle()
    listed = await coop.node.request("GET", f"/api/v1/offers/{offer['id']}/comments")
    assert [c["content"] for c in listed.json()["comments"]] == [
        "<p>Livrez-vous à Brest ?</p>",
        "<p>Oui, le mardi.</p>",
    ]
    assert listed.json()["comments"][1]["in_reply_to"] == question["id"]


async def test_an_offer_takes_no_question_where_the_coop_does_not(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    offer = await publish(coop.node, honey())
    buyer = coop.mastodon.add_user("buyer")
    note = await coop.mastodon.reply(
        buyer, f"{coop.node.base}/actors/coop/inbox", offer["uri"], "<p>Prix ?</p>"
    )
    await network.settle()
    refused = await coop.node.request(
        "POST",
        f"/api/v1/offers/{offer['id']}/comments",
        json={"text": "Hello"},
        headers=coop.local["m0"],
    )
    assert refused.status_code == 403
    listed = await coop.node.request("GET", f"/api/v1/offers/{offer['id']}/comments")
    assert listed.status_code == 404
    kept = await coop.node.node.db.read(lambda conn: store.by_uri(conn, note["id"]))
    assert kept is None
