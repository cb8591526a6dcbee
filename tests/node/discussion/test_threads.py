"""Discussion threads under proposals, through real apps and signatures: members
comment and reply; the co-op relays their comments to its followers; a reply from
Mastodon joins the thread, marked as from outside, as its origin published it, and never
as a vote; a shared proposal's thread reaches every co-op taking part; the admin hides
and removes, members and servers report; a blocked server's comments are not shown."""

from __future__ import annotations

from typing import Any

from node.discussion import store as comments_store
from node.governance.store import ballots as ballot_store
from node.governance.store import proposals as proposal_store
from tests.support.coops import Coop, make_coop, take_part_in
from tests.support.mastodon import Mastodon, MastodonUser
from tests.support.network import Network, TestNode

AS2 = {"Accept": "application/activity+json"}


async def comment(
    coop: Coop, who: str, key: str, text: str, reply_to: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if reply_to is not None:
        body["reply_to"] = reply_to
    response = await coop.node.request(
        "POST", f"/api/v1/proposals/{key}/comments", json=body, headers=coop.local[who]
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def thread(node: TestNode, key: str, headers: dict[str, str] | None = None) -> list[Any]:
    response = await node.request("GET", f"/api/v1/proposals/{key}/comments", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["comments"])


async def follow(mastodon: Mastodon, user: MastodonUser, node: TestNode) -> None:
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{user.actor}#follows/1",
        "type": "Follow",
        "actor": user.actor,
        "object": f"{node.base}/actors/coop",
    }
    response = await mastodon.post(user, f"{node.base}/actors/coop/inbox", activity)
    assert response.status_code == 202, response.text


async def test_members_comment_and_reply_and_followers_see_it(network: Network) -> None:
    coop = await make_coop(network, local=2, remote=0)
    fan = coop.mastodon.add_user("fan")
    await follow(coop.mastodon, fan, coop.node)
    await network.settle()
    created = await coop.propose("m0", title="Ouvrir un second point de retrait")
    first = await comment(coop, "m0", created["id"], "Pourquoi **samedi** ?")
    second = await comment(coop, "m1", created["id"], "Parce que le marché.", first["key"])
    await network.settle()

    listed = await thread(coop.node, created["id"])
    assert [c["key"] for c in listed] == [first["key"], second["key"]]
    assert listed[0]["content"] == "<p>Pourquoi <strong>samedi</strong> ?</p>"
    assert listed[0]["in_reply_to"] == created["uri"]
    assert listed[1]["in_reply_to"] == first["id"]
    assert all(c["local"] and c["member"] for c in listed)

    # The comment is a Note at its id, in reply to the proposal, public.
    note = (await coop.node.get(f"/comments/{first['key']}", headers=AS2)).json()
    assert note["type"] == "Note"
    assert note["id"] == first["id"]
    assert note["inReplyTo"] == created["uri"]
    assert note["attributedTo"] == f"{coop.node.base}/actors/m0"
    assert note["context"] == created["uri"]
    assert "https://www.w3.org/ns/activitystreams#Public" in note["to"]
    # A browser is sent to the thread, at the comment.
    page = await coop.node.get(f"/comments/{first['key']}", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"].endswith(f"/proposals/{created['id']}#comment-{first['key']}")

    # The follower on Mastodon got the co-op's boost of each comment.
    announced = [a for a in coop.mastodon.received if a["type"] == "Announce"]
    assert [a["object"]["id"] for a in announced] == [first["id"], second["id"]]
    assert all(a["actor"] == f"{coop.node.base}/actors/coop" for a in announced)


async def test_a_reply_from_mastodon_joins_the_thread_from_outside_and_is_no_vote(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=1)
    created = await coop.propose("m0", title="Tariff", options=["For", "Against"])
    await network.settle()
    stranger = coop.mastodon.add_user("stranger")
    member = coop.remote["r0"]
    inbox = f"{coop.node.base}/actors/coop/inbox"
    await coop.mastodon.reply(
        stranger,
        inbox,
        created["uri"],
        '<p><span class="h-card"><a href="https://alpha.test/@coop" class="u-url mention">'
        "@coop</a></span> Je suis contre<script>alert(1)</script>"
        '<img src=x onerror="alert(2)"></p>',
    )
    await coop.mastodon.reply(member, inbox, created["uri"], "<p>Moi aussi.</p>")
    # A vote from the member stays a vote, and is no comment.
    await coop.mastodon.vote(member, created["uri"], "Against")
    await network.settle()

    outside, ours = await thread(coop.node, created["id"])
    assert outside["server"] == "mastodon.test"
    assert outside["member"] is False
    assert outside["partner"] is False
    assert outside["local"] is False
    assert outside["author_name"] == "Stranger"
    assert "script" not in outside["content"]
    assert "onerror" not in outside["content"]
    assert "Je suis contre" in outside["content"]
    assert ours["member"] is True
    assert ours["local"] is False
    pk = await coop.node.node.db.read(lambda conn: proposal_store.get(conn, created["id"]).id)
    assert await coop.node.node.db.read(lambda conn: ballot_store.count(conn, pk)) == 1


async def test_what_a_peer_may_not_send_is_refused_or_left_out(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0", title="Tariff")
    await network.settle()
    masto = coop.mastodon
    user = masto.add_user("someone")
    other = masto.add_user("other")
    inbox = f"{coop.node.base}/actors/coop/inbox"

    def create(note: dict[str, Any], actor: str = user.actor) -> dict[str, Any]:
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{note.get('id', user.actor + '/x')}/activity",
            "type": "Create",
            "actor": actor,
            "object": note,
        }

    base = masto.status(user, created["uri"], "<p>fine</p>")
    sent = [
        # Someone else's note, sent by this account: origin spoofing.
        create({**masto.status(other, created["uri"], "<p>spoofed</p>")}),
        # Followers-only and direct replies are not shown to a whole co-op.
        create(
            masto.status(
                user, created["uri"], "<p>private</p>", to=[f"{user.actor}/followers"], cc=[]
            )
        ),
        # Wrong types, NUL, an answer to nothing of ours.
        create({**base, "id": base["id"] + "1", "content": ["<p>a list</p>"]}),
        create({**base, "id": base["id"] + "2", "inReplyTo": 12}),
        create({**base, "id": base["id"] + "3", "content": "<p>nul\u0000</p>"}),
        create({**base, "id": base["id"] + "4", "content": "<p>" + "x" * 200_000 + "</p>"}),
        create({**base, "id": base["id"] + "5", "inReplyTo": "https://elsewhere.test/p/1"}),
        create({**base, "id": "https://evil.test/notes/1"}),  # the id on another server
    ]
    for activity in sent:
        response = await masto.post(user, inbox, activity)
        assert response.status_code in (202, 400, 413), response.text
    await network.settle()
    assert await thread(coop.node, created["id"]) == []
    # The same note, well formed and sent by its author, is taken.
    response = await masto.post(user, inbox, create(base))
    assert response.status_code == 202
    await network.settle()
    assert [c["content"] for c in await thread(coop.node, created["id"])] == ["<p>fine</p>"]


async def test_a_shared_proposals_thread_reaches_every_coop_taking_part(
    network: Network,
) -> None:
    mastodon = Mastodon(network, "mastodon.test")
    tourism = await make_coop(network, local=1, remote=0, domain="tourism.test", mastodon=mastodon)
    food = await make_coop(
        network,
        local=1,
        remote=0,
        domain="food.test",
        mastodon=mastodon,
        accept_shared_from=["coop@tourism.test"],
    )
    market = await make_coop(
        network,
        local=1,
        remote=0,
        domain="market.test",
        mastodon=mastodon,
        accept_shared_from=["coop@tourism.test"],
    )
    await take_part_in(network, tourism, food, market)
    created = await tourism.propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="0%",
        electorate=["coop@food.test", "coop@market.test"],
    )
    await network.settle()
    shared = (await food.node.request("GET", "/api/v1/proposals", headers=food.local["m0"])).json()[
        "shared"
    ]
    [food_key] = [s["id"] for s in shared]
    asked = await comment(food, "m0", food_key, "What does it cost us?")
    await network.settle()
    answer = await comment(tourism, "m0", created["id"], "Nothing the first year.", None)
    await network.settle()

    on_host = await thread(tourism.node, created["id"])
    # A member of a co-op taking part is no stranger: marked as from a partner.
    assert [(c["server"], c["member"], c["partner"]) for c in on_host] == [
        ("food.test", False, True),
        ("tourism.test", True, False),
    ]
    shared_market = (
        await market.node.request("GET", "/api/v1/proposals", headers=market.local["m0"])
    ).json()["shared"]
    [market_key] = [s["id"] for s in shared_market]
    on_market = await thread(market.node, market_key, market.local["m0"])
    assert [c["id"] for c in on_market] == [asked["id"], answer["id"]]
    assert on_market[0]["content"] == "<p>What does it cost us?</p>"
    assert [c["partner"] for c in on_market] == [True, True]
    on_food = await thread(food.node, food_key, food.local["m0"])
    # Hosted elsewhere, it is shown to members only, as on the pages.
    anonymous = await food.node.request("GET", f"/api/v1/proposals/{food_key}/comments")
    assert anonymous.status_code == 401
    assert [c["id"] for c in on_food] == [asked["id"], answer["id"]]


async def test_the_admin_hides_and_removes_and_the_removal_federates(network: Network) -> None:
    coop = await make_coop(network, local=2, remote=0)
    fan = coop.mastodon.add_user("fan")
    await follow(coop.mastodon, fan, coop.node)
    created = await coop.propose("m0", title="Tariff")
    await network.settle()
    mine = await comment(coop, "m1", created["id"], "Rude words")
    outsider = coop.mastodon.add_user("outsider")
    theirs = await coop.mastodon.reply(
        outsider, f"{coop.node.base}/actors/coop/inbox", created["uri"], "<p>Spam</p>"
    )
    await network.settle()
    admin = coop.node.auth

    async def decide(key: str, decision: str) -> Any:
        response = await coop.node.request(
            "POST", f"/api/v1/comments/{key}/{decision}", headers=admin
        )
        assert response.status_code == 200, response.text
        return response.json()

    keys = {c["id"]: c["key"] for c in await thread(coop.node, created["id"], admin)}
    await decide(keys[mine["id"]], "hide")
    assert [c["id"] for c in await thread(coop.node, created["id"])] == [theirs["id"]]
    as_admin = await thread(coop.node, created["id"], admin)
    assert [c["state"] for c in as_admin] == ["hidden", "visible"]
    # A member may not decide.
    refused = await coop.node.request(
        "POST", f"/api/v1/comments/{keys[theirs['id']]}/remove", headers=coop.local["m0"]
    )
    assert refused.status_code == 403
    await decide(keys[mine["id"]], "unhide")
    before = len(coop.mastodon.received)
    await decide(keys[mine["id"]], "remove")
    await decide(keys[theirs["id"]], "remove")
    await network.settle()
    assert await thread(coop.node, created["id"]) == []
    gone = await coop.node.get(f"/comments/{mine['key']}", headers=AS2)
    assert gone.status_code == 410
    assert gone.json()["type"] == "Tombstone"
    sent = coop.mastodon.received[before:]
    delete = [a for a in sent if a["type"] == "Delete"]
    undo = [a for a in sent if a["type"] == "Undo"]
    assert [d["object"]["id"] for d in delete] == [mine["id"]]
    assert delete[0]["actor"] == f"{coop.node.base}/actors/m1"
    assert [u["object"]["object"] for u in undo] == [theirs["id"]]
    # The same Create again brings nothing back.
    await coop.mastodon.post(
        outsider,
        f"{coop.node.base}/actors/coop/inbox",
        {
            "id": theirs["id"] + "/again",
            "type": "Create",
            "actor": outsider.actor,
            "object": theirs,
        },
    )
    await network.settle()
    assert await thread(coop.node, created["id"]) == []


async def test_reports_from_members_and_from_other_servers_reach_the_queue(
    network: Network,
) -> None:
    coop = await make_coop(network, local=2, remote=0)
    created = await coop.propose("m0", title="Tariff")
    await network.settle()
    said = await comment(coop, "m0", created["id"], "Buy my product")
    report = await coop.node.request(
        "POST",
        f"/api/v1/comments/{said['key']}/report",
        json={"reason": "advertising"},
        headers=coop.local["m1"],
    )
    assert report.status_code == 201, report.text
    again = await coop.node.request(
        "POST",
        f"/api/v1/comments/{said['key']}/report",
        json={"reason": "advertising"},
        headers=coop.local["m1"],
    )
    assert again.json() == {"reported": False}
    # Mastodon's Flag: from its instance actor, the account and the notes, a reason.
    moderator = coop.mastodon.add_user("actor")
    flag = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://mastodon.test/0d4c9a1e",
        "type": "Flag",
        "actor": moderator.actor,
        "content": "Spam <b>again</b>",
        "object": [f"{coop.node.base}/actors/m0", said["id"], "https://elsewhere.test/n/1"],
    }
    for _ in range(2):  # a replay is one report
        response = await coop.mastodon.post(moderator, f"{coop.node.base}/inbox", flag)
        assert response.status_code == 202
    await network.settle()
    queue = await coop.node.request("GET", "/api/v1/comments?reported=1", headers=coop.node.auth)
    reports = queue.json()["reports"]
    assert [(r["origin"], r["reason"]) for r in reports] == [
        ("member", "advertising"),
        ("flag", "Spam again"),
    ]
    assert {r["comment"]["id"] for r in reports} == {said["id"]}
    dismissed = await coop.node.request(
        "POST", f"/api/v1/comments/{said['key']}/dismiss", headers=coop.node.auth
    )
    assert dismissed.json() == {"closed": 2}


async def test_a_blocked_servers_comments_are_not_shown(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0", title="Tariff")
    await network.settle()
    troll = coop.mastodon.add_user("troll")
    await coop.mastodon.reply(
        troll, f"{coop.node.base}/actors/coop/inbox", created["uri"], "<p>noise</p>"
    )
    await network.settle()
    assert len(await thread(coop.node, created["id"])) == 1
    await coop.node.decide_domain("mastodon.test", "blocked")
    assert await thread(coop.node, created["id"]) == []


async def test_only_its_author_deletes_a_comment(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0", title="Tariff")
    await network.settle()
    author = coop.mastodon.add_user("author")
    intruder = coop.mastodon.add_user("intruder")
    note = await coop.mastodon.reply(
        author, f"{coop.node.base}/actors/coop/inbox", created["uri"], "<p>mine</p>"
    )
    await network.settle()
    inbox = f"{coop.node.base}/actors/coop/inbox"

    def delete(actor: MastodonUser) -> dict[str, Any]:
        return {
            "id": f"{actor.actor}#delete/{note['id']}",
            "type": "Delete",
            "actor": actor.actor,
            "object": {"id": note["id"], "type": "Tombstone"},
        }

    await coop.mastodon.post(intruder, inbox, delete(intruder))
    await network.settle()
    assert len(await thread(coop.node, created["id"])) == 1
    await coop.mastodon.post(author, inbox, delete(author))
    await network.settle()
    assert await thread(coop.node, created["id"]) == []
    stored = await coop.node.node.db.read(lambda conn: comments_store.by_uri(conn, note["id"]))
    assert stored is not None
    assert stored.state == "removed"
    assert stored.content == ""


async def test_one_account_cannot_flood_a_thread(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0", title="Tariff")
    await network.settle()
    spammer = coop.mastodon.add_user("spammer")
    for i in range(25):
        await coop.mastodon.reply(
            spammer, f"{coop.node.base}/actors/coop/inbox", created["uri"], f"<p>buy {i}</p>"
        )
    await network.settle()
    kept = await thread(coop.node, created["id"])
    assert len(kept) == 20
    # Another account is not held back by it.
    other = coop.mastodon.add_user("other")
    await coop.mastodon.reply(
        other, f"{coop.node.base}/actors/coop/inbox", created["uri"], "<p>a real question</p>"
    )
    await network.settle()
    assert len(await thread(coop.node, created["id"])) == 21


async def test_the_question_names_its_replies_and_they_can_be_read(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0", title="Tariff")
    await network.settle()
    said = await comment(coop, "m0", created["id"], "First")
    visitor = coop.mastodon.add_user("visitor")
    theirs = await coop.mastodon.reply(
        visitor, f"{coop.node.base}/actors/coop/inbox", created["uri"], "<p>Second</p>"
    )
    await network.settle()
    question = (await coop.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    assert question["replies"] == f"{created['uri']}/replies"
    replies = question["replies"].removeprefix(coop.node.base)
    collection = (await coop.node.get(replies, headers=AS2)).json()
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == 2
    page = (
        await coop.node.get(collection["first"].removeprefix(coop.node.base), headers=AS2)
    ).json()
    assert page["orderedItems"] == [said["id"], theirs["id"]]
    assert "next" not in page
    await coop.node.decide_domain("mastodon.test", "blocked")
    page = (
        await coop.node.get(collection["first"].removeprefix(coop.node.base), headers=AS2)
    ).json()
    assert page["orderedItems"] == [said["id"]]
    for bad in ("0", "-1", "x", "9" * 40):
        answer = await coop.node.get(f"{replies}?page={bad}", headers=AS2)
        assert answer.status_code == 400
    missing = await coop.node.get("/proposals/nope/replies", headers=AS2)
    assert missing.status_code == 404


async def test_a_peers_date_cannot_put_its_comment_first_for_ever(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0", title="Tariff")
    await network.settle()
    ours = await comment(coop, "m0", created["id"], "Ours, first")
    masto = coop.mastodon
    user = masto.add_user("dated")
    inbox = f"{coop.node.base}/actors/coop/inbox"
    for published in ("1900-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "not a date"):
        note = {**masto.status(user, created["uri"], f"<p>{published}</p>"), "published": published}
        response = await masto.post(
            user,
            inbox,
            {"id": note["id"] + "/activity", "type": "Create", "actor": user.actor, "object": note},
        )
        assert response.status_code == 202
    await network.settle()
    listed = await thread(coop.node, created["id"])
    assert listed[0]["id"] == ours["id"]
    assert len(listed) == 4
