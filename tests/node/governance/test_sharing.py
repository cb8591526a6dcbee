"""Shared proposals in open mode across four nodes: a host, two co-ops taking part and
one outside the electorate. Members vote at home (their node signs and sends each
ballot to the host) or from Mastodon; every node ends with the same outcome."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from node.governance.audit.run import audit
from node.services.metrics import REGISTRY
from node.storage.tables import actor_keys, actors
from tests.support.coops import Coop, link_remote, make_coop, take_part_in
from tests.support.mastodon import Mastodon
from tests.support.network import Network

AS2 = {"Accept": "application/activity+json"}


async def network_of_coops(network: Network) -> dict[str, Coop]:
    mastodon = Mastodon(network, "mastodon.test")
    coops = {
        "tourism": await make_coop(
            network,
            local=2,
            remote=1,
            domain="tourism.test",
            mastodon=mastodon,
            remote_prefix="tourist",
        ),
        "food": await make_coop(
            network,
            local=2,
            remote=0,
            domain="food.test",
            mastodon=mastodon,
            accept_shared_from=("https://tourism.test/actors/coop",),
        ),
        "delivery": await make_coop(
            network,
            local=1,
            remote=0,
            domain="delivery.test",
            mastodon=mastodon,
            accept_shared_from=("https://tourism.test/actors/coop",),
        ),
        "outsider": await make_coop(
            network, local=1, remote=0, domain="outsider.test", mastodon=mastodon
        ),
    }
    # One person is a member of both the food and the delivery co-ops.
    both = mastodon.add_user("both")
    await link_remote(coops["food"].node, both)
    await link_remote(coops["delivery"].node, both)
    coops["food"].remote["both"] = both
    await take_part_in(network, coops["tourism"], coops["food"], coops["delivery"])
    return coops


async def shared_proposal(coops: dict[str, Coop], **fields: Any) -> dict[str, Any]:
    return await coops["tourism"].propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="50%",
        electorate=["coop@food.test", "https://delivery.test/actors/coop"],
        **fields,
    )


async def shared_list(coop: Coop, who: str) -> list[dict[str, Any]]:
    response = await coop.node.request("GET", "/api/v1/proposals", headers=coop.local[who])
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["shared"]
    return found


async def test_members_of_three_coops_vote_at_home_and_every_node_has_the_outcome(
    network: Network,
) -> None:
    coops = await network_of_coops(network)
    tourism, food, delivery = coops["tourism"], coops["food"], coops["delivery"]
    created = await shared_proposal(coops)
    assert created["state"] == "scheduled"
    await network.settle()

    doc = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    assert doc["electorate"] == [
        "https://tourism.test/actors/coop",
        "https://food.test/actors/coop",
        "https://delivery.test/actors/coop",
    ]
    # 3 of the host's, 3 of food's, 2 of delivery's, "both" counted once.
    shown = (
        await tourism.node.request(
            "GET", f"/api/v1/proposals/{created['id']}", headers=tourism.local["m0"]
        )
    ).json()
    assert shown["state"] == "open"
    assert shown["eligible"] == 7
    [at_food] = await shared_list(food, "m0")
    [at_delivery] = await shared_list(delivery, "m0")
    assert at_food["uri"] == at_delivery["uri"] == created["uri"]
    assert at_food["title"] == "Join the regional mobility fund"
    assert await shared_list(coops["outsider"], "m0") == []

    sent_before = REGISTRY.get_sample_value("coopnode_votes_sent_total") or 0.0
    votes = [
        (tourism, "m0", "For"),
        (tourism, "m1", "Against"),
        (food, "m0", "For"),
        (food, "m1", "For"),
        (delivery, "m0", "Against"),
    ]
    for coop, who, choice in votes:
        key = created["id"] if coop is tourism else at_food["id"]
        response = await coop.vote(who, key, choice)
        assert response.status_code == 201, response.text
    both = food.remote["both"]
    await tourism.mastodon.vote(both, created["uri"], "For", inbox="https://tourism.test/inbox")
    await network.settle()
    mine = await shared_list(food, "m1")
    assert mine[0]["your_ballot"]["choices"] == ["For"]
    # The three ballots cast at food and delivery went to the host: counted as sent.
    assert REGISTRY.get_sample_value("coopnode_votes_sent_total") == sent_before + 3

    network.clock.advance(timedelta(days=7))
    await network.settle()

    closed = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    outcome = closed["outcome"]
    assert outcome["counts"] == {"For": 4, "Against": 2, "Abstain": 0}
    assert outcome["eligible"] == 7
    assert outcome["result"] == "passed"
    assert outcome["participation"] == [
        {"coop": "https://tourism.test/actors/coop", "state": "host", "eligible": 3, "voted": 2},
        # "both" is listed by delivery and food: one voter, kept with the first read.
        {"coop": "https://delivery.test/actors/coop", "state": "listed", "eligible": 2, "voted": 2},
        {"coop": "https://food.test/actors/coop", "state": "listed", "eligible": 2, "voted": 2},
    ]
    for coop in (food, delivery):
        [there] = await shared_list(coop, "m0")
        assert there["state"] == "closed"
        assert there["outcome"] == outcome
    # The host is a coopnode: members' ballots went there signed (RFC 9421) with the
    # Ed25519 key every member has, and no member needed an RSA key made for it.
    for coop in (food, delivery):
        made = await coop.node.node.db.read(
            lambda conn: conn.execute(
                select(func.count())
                .select_from(actor_keys.join(actors, actors.c.id == actor_keys.c.actor_id))
                .where(actor_keys.c.kind == "rsa", actors.c.username != "coop")
            ).scalar_one()
        )
        assert made == 0
    # Every ballot sent from a member's home node carries a proof that checks.
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert report.ok, report
    ballots_page = (
        await tourism.node.get(f"/proposals/{created['id']}/ballots?page=1", headers=AS2)
    ).json()
    voters = {item["voter"] for item in ballots_page["orderedItems"]}
    assert "https://food.test/actors/m1" in voters
    assert all(
        "proof" in note
        for item in ballots_page["orderedItems"]
        if item["voter"].startswith("https://food.test/")
        for note in item["votes"]
    )


async def test_a_coop_that_declines_is_recorded_and_its_members_do_not_vote(
    network: Network,
) -> None:
    coops = await network_of_coops(network)
    tourism, delivery = coops["tourism"], coops["delivery"]
    now = network.clock.now()
    created = await shared_proposal(coops, opens_at=(now + timedelta(hours=1)).isoformat())
    await network.settle()
    [invited] = await shared_list(delivery, "m0")

    declined = await delivery.node.request(
        "POST", f"/api/v1/proposals/{invited['id']}/decline", headers=delivery.node.auth
    )
    await network.settle()
    network.clock.advance(timedelta(hours=1))
    await network.settle()
    refused = await delivery.vote("m0", invited["id"], "For")

    assert declined.status_code == 200
    assert refused.status_code == 409
    shown = (
        await tourism.node.request(
            "GET", f"/api/v1/proposals/{created['id']}", headers=tourism.local["m0"]
        )
    ).json()
    assert shown["eligible"] == 6  # the host's 3, food's 3 ("both" through food now)
    network.clock.advance(timedelta(days=7))
    await network.settle()
    closed = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    states = {p["coop"]: p["state"] for p in closed["outcome"]["participation"]}
    assert states["https://delivery.test/actors/coop"] == "declined"


async def test_a_coop_whose_roster_cannot_be_read_has_no_voters_and_says_why(
    network: Network,
) -> None:
    mastodon = Mastodon(network, "mastodon.test")
    tourism = await make_coop(network, local=2, remote=0, domain="tourism.test", mastodon=mastodon)
    hidden = await network.add("hidden.test", public_roster=False)
    await network.settle()

    created = await tourism.propose(
        "m0", rule="majority", threshold=None, quorum="0%", electorate=["coop@hidden.test"]
    )
    await network.settle()
    network.clock.advance(timedelta(days=7))
    await network.settle()

    closed = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    [_, other] = closed["outcome"]["participation"]
    assert other["coop"] == "https://hidden.test/actors/coop"
    assert other["state"] == "failed"
    assert "does not show its roster to this co-op" in other["reason"]
    assert closed["outcome"]["eligible"] == 2
    assert hidden.settings.public_roster is False
    json.dumps(closed)  # the whole outcome is plain JSON


async def test_a_member_of_a_coop_outside_the_electorate_is_refused_with_a_reason(
    network: Network,
) -> None:
    coops = await network_of_coops(network)
    tourism, outsider = coops["tourism"], coops["outsider"]
    stranger = tourism.mastodon.add_user("stranger")
    await link_remote(outsider.node, stranger)  # a member, but of a co-op not invited
    created = await shared_proposal(coops)
    await network.settle()

    await tourism.mastodon.vote(stranger, created["uri"], "For", inbox="https://tourism.test/inbox")
    await network.settle()

    [reply] = tourism.mastodon.replies_to(stranger)
    assert "not an eligible member as of the opening" in reply["content"]
    network.clock.advance(timedelta(days=7))
    await network.settle()
    closed = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    assert closed["outcome"]["turnout"] == 0
    coops_listed = [p["coop"] for p in closed["outcome"]["participation"]]
    assert "https://outsider.test/actors/coop" not in coops_listed


async def test_a_member_who_moves_between_coops_during_the_vote_votes_once(
    network: Network,
) -> None:
    coops = await network_of_coops(network)
    tourism, food, delivery = coops["tourism"], coops["food"], coops["delivery"]
    mover = tourism.mastodon.add_user("mover")
    await link_remote(food.node, mover)
    created = await shared_proposal(coops, allow_change=False)
    await network.settle()
    # During the vote the mover leaves food and joins delivery.
    members = (await food.node.request("GET", "/api/v1/members", headers=food.node.auth)).json()
    [entry] = [m for m in members["items"] if m["actor"] == mover.actor]
    left = await food.node.request(
        "DELETE", f"/api/v1/members/{entry['id']}", headers=food.node.auth
    )
    assert left.status_code == 200
    await link_remote(delivery.node, mover)

    await tourism.mastodon.vote(mover, created["uri"], "For", inbox="https://tourism.test/inbox")
    network.clock.advance(timedelta(minutes=1))
    await tourism.mastodon.vote(
        mover, created["uri"], "Against", inbox="https://tourism.test/inbox"
    )
    await network.settle()
    network.clock.advance(timedelta(days=7))
    await network.settle()

    closed = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    outcome = closed["outcome"]
    # Eligibility was fixed at the opening: the mover votes once, as food's member.
    assert outcome["eligible"] == 8
    assert outcome["counts"] == {"For": 1, "Against": 0, "Abstain": 0}
    voted = {p["coop"]: p["voted"] for p in outcome["participation"]}
    assert voted["https://food.test/actors/coop"] == 1
    assert voted["https://delivery.test/actors/coop"] == 0


async def test_a_participant_down_during_the_vote_catches_up_before_the_close(
    network: Network,
) -> None:
    coops = await network_of_coops(network)
    tourism, food = coops["tourism"], coops["food"]
    created = await shared_proposal(coops)
    await network.settle()
    [at_food] = await shared_list(food, "m0")
    await tourism.vote("m0", created["id"], "For")

    # food is down for a day: the host's count updates to it fail and wait.
    food_app = network.router.apps.pop("food.test")
    network.clock.advance(timedelta(minutes=1))
    await network.settle()
    network.clock.advance(timedelta(days=1))
    network.router.apps["food.test"] = food_app
    await food.vote("m0", at_food["id"], "Against")
    await food.vote("m1", at_food["id"], "Against")
    for _ in range(3):  # retries come due as the clock moves on
        network.clock.advance(timedelta(hours=1))
        await network.settle()
    [seen] = await shared_list(food, "m0")
    assert seen["voters"] == 3  # the latest counts reached food again

    network.clock.advance(timedelta(days=6))
    await network.settle()
    closed = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    assert closed["outcome"]["counts"] == {"For": 1, "Against": 2, "Abstain": 0}
    [final] = await shared_list(food, "m0")
    assert final["outcome"] == closed["outcome"]


async def test_colleges_weigh_across_coops_and_weighted_and_plain_results_differ(
    network: Network,
) -> None:
    mastodon = Mastodon(network, "mastodon.test")
    tourism = await make_coop(
        network,
        local=2,
        remote=0,
        domain="tourism.test",
        mastodon=mastodon,
        colleges={"producers": "50%", "workers": "30%", "consumers": "20%"},
        college_of=lambda i, _: ["producers", "workers"][i],
    )
    food = await make_coop(
        network,
        local=3,
        remote=0,
        domain="food.test",
        mastodon=mastodon,
        colleges={"consumers": "60%", "producers": "40%"},
        college_of=lambda i, _: ["consumers", "consumers", "producers"][i],
        accept_shared_from=("https://tourism.test/actors/coop",),
    )
    delivery = await make_coop(
        network, local=2, remote=0, domain="delivery.test", mastodon=mastodon,
        colleges={"workers": "50%", "couriers": "50%"},
        college_of=lambda i, _: ["workers", "couriers"][i],
        accept_shared_from=("https://tourism.test/actors/coop",),
    )  # fmt: skip
    await take_part_in(network, tourism, food, delivery)
    created = await tourism.propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="0%",
        electorate=["coop@food.test", "coop@delivery.test"],
        colleges_weigh=True,
        colleges={"producers": "50%", "workers": "30%", "consumers": "20%"},
    )
    await network.settle()
    [at_food] = await shared_list(food, "m0")
    for coop, who, choice in (
        (tourism, "m0", "Against"),  # producers
        (food, "m2", "Against"),  # producers
        (tourism, "m1", "For"),  # workers
        (delivery, "m0", "For"),  # workers
        (food, "m0", "For"),  # consumers
        (food, "m1", "For"),  # consumers
        (delivery, "m1", "For"),  # a courier: no college of this proposal
    ):
        key = created["id"] if coop is tourism else at_food["id"]
        assert (await coop.vote(who, key, choice)).status_code == 201

    await network.settle()
    network.clock.advance(timedelta(days=7))
    await network.settle()

    closed = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    outcome = closed["outcome"]
    assert closed["colleges"] == [
        {"name": "producers", "weight": "1/2"},
        {"name": "workers", "weight": "3/10"},
        {"name": "consumers", "weight": "1/5"},
    ]
    # Each member keeps the college their own co-op gave them.
    assert {c["name"]: (c["voters"], c["counts"]["For"]) for c in outcome["colleges"]} == {
        "producers": (2, 0),
        "workers": (2, 2),
        "consumers": (2, 2),
    }
    # Plain: 4 for, 2 against (66.7 %) would pass; weighted: 1/2 x 0 + 3/10 x 1
    # + 1/5 x 1 = 1/2, not more than half.
    assert outcome["support"] == "2/3"
    assert outcome["weightedSupport"] == "1/2"
    assert outcome["result"] == "rejected"
    assert outcome["eligible"] == 6
    courier = [p for p in outcome["participation"] if p["coop"].startswith("https://delivery")]
    assert courier[0]["reason"] == (
        "1 member in none of the colleges consumers, producers, workers left out"
    )
    [final] = await shared_list(food, "m0")
    assert final["outcome"]["weightedSupport"] == "1/2"


async def test_a_shared_proposal_with_bad_colleges_or_mode_is_refused_and_nothing_is_sent(
    network: Network,
) -> None:
    coops = await network_of_coops(network)
    tourism = coops["tourism"]
    now = network.clock.now()
    base = {
        "title": "Join the regional mobility fund",
        "options": ["For", "Against"],
        "closes_at": (now + timedelta(days=7)).isoformat(),
        "electorate": ["coop@food.test"],
    }
    cases = [
        ({"colleges_weigh": True, "colleges": {"a": "50%", "b": "40%"}}, "colleges"),
        ({"colleges": {"a": 0.5, "b": 0.5}}, "colleges.a"),
        ({"counting_mode": "secret"}, "counting_mode"),
        ({"counting_mode": "subtotal", "electorate": []}, "counting_mode"),
        ({"electorate": ["nobody@nowhere.test"]}, "electorate[0]"),
        ({"electorate": ["https://mastodon.test/users/both"]}, "electorate[0]"),
    ]
    for extra, field in cases:
        response = await tourism.node.request(
            "POST", "/api/v1/proposals", json={**base, **extra}, headers=tourism.local["m0"]
        )
        assert response.status_code == 422, (extra, response.text)
        assert response.json()["field"] == field, response.text
    listed = await tourism.node.request("GET", "/api/v1/proposals", headers=tourism.local["m0"])
    assert listed.json()["proposals"] == []
