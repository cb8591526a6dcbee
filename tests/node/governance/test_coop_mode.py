"""Shared proposals in co-op mode: each co-op decides its ballot on a vote of its own,
then casts it, signed by the co-op, with the weight the proposal gives it; a tie among
a co-op's members follows the rule the proposal states."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from node.governance.audit.run import audit
from tests.support.coops import Coop, deliver_as_coop, make_coop, take_part_in
from tests.support.mastodon import Mastodon
from tests.support.network import Network

AS2 = {"Accept": "application/activity+json"}


async def three_coops(network: Network) -> dict[str, Coop]:
    mastodon = Mastodon(network, "mastodon.test")
    coops = {
        name: await make_coop(
            network,
            local=local,
            remote=0,
            domain=f"{name}.test",
            mastodon=mastodon,
            accept_shared_from=("https://tourism.test/actors/coop",),
        )
        for name, local in (("tourism", 3), ("food", 2), ("delivery", 2))
    }
    await take_part_in(network, coops["tourism"], coops["food"], coops["delivery"])
    return coops


async def own_vote_key(coop: Coop) -> str:
    """The key members vote on: the co-op's own proposal mirroring the shared one."""
    response = await coop.node.request("GET", "/api/v1/proposals", headers=coop.local["m0"])
    body = response.json()
    if body["shared"]:
        key: str = body["shared"][0]["mirror"]
        return key
    [own] = [p for p in body["proposals"] if p["proposal"]["counting_mode"] == "open"]
    return str(own["id"])


async def test_each_coop_casts_one_weighted_ballot_decided_by_its_members(
    network: Network,
) -> None:
    coops = await three_coops(network)
    tourism, food, delivery = coops["tourism"], coops["food"], coops["delivery"]
    created = await tourism.propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="0%",
        counting_mode="coop",
        coop_tie="against",
        electorate=["coop@food.test", "coop@delivery.test"],
        coop_weights={
            "coop@tourism.test": "50%",
            "coop@food.test": "30%",
            "https://delivery.test/actors/coop": "20%",
        },
    )
    await network.settle()
    shared = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    assert shared["countingMode"] == "coop"
    assert shared["coopTie"] == "against"
    assert {c["name"]: c["weight"] for c in shared["colleges"]} == {
        "https://tourism.test/actors/coop": "1/2",
        "https://food.test/actors/coop": "3/10",
        "https://delivery.test/actors/coop": "1/5",
    }

    ballots = [
        (tourism, {"m0": "For", "m1": "Against", "m2": "Against"}),  # the co-op: against
        (food, {"m0": "For", "m1": "For"}),  # for
        (delivery, {"m0": "For", "m1": "Against"}),  # a tie: against, as the proposal says
    ]
    for coop, votes in ballots:
        key = await own_vote_key(coop)
        for who, choice in votes.items():
            response = await coop.vote(who, key, choice)
            assert response.status_code == 201, response.text
    await network.settle()

    network.clock.advance(timedelta(days=7) - timedelta(minutes=15))
    await network.settle()  # each co-op's own vote closes and its ballot goes out
    network.clock.advance(timedelta(minutes=15))
    await network.settle()

    closed = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    outcome = closed["outcome"]
    assert outcome["eligible"] == 3
    assert outcome["counts"] == {"For": 1, "Against": 2, "Abstain": 0}
    assert outcome["weightedSupport"] == "3/10"
    assert outcome["result"] == "rejected"
    assert outcome["reason"].startswith("rejected: 30.0 % for with co-op weights")
    voted = {p["coop"]: p["voted"] for p in outcome["participation"]}
    assert voted == {
        "https://tourism.test/actors/coop": 1,
        "https://food.test/actors/coop": 1,
        "https://delivery.test/actors/coop": 1,
    }
    # Each co-op's ballot is signed by the co-op: anyone can check them.
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert report.ok, report
    assert report.recount.reason == outcome["reason"]
    for coop in (food, delivery):
        response = await coop.node.request("GET", "/api/v1/proposals", headers=coop.local["m0"])
        assert response.json()["shared"][0]["outcome"] == outcome


async def test_a_coop_mode_proposal_needs_weights_for_every_coop(network: Network) -> None:
    coops = await three_coops(network)
    tourism = coops["tourism"]
    now = network.clock.now()
    response = await tourism.node.request(
        "POST",
        "/api/v1/proposals",
        json={
            "title": "Join the regional mobility fund",
            "options": ["For", "Against"],
            "closes_at": (now + timedelta(days=7)).isoformat(),
            "counting_mode": "coop",
            "electorate": ["coop@food.test", "coop@delivery.test"],
            "coop_weights": {"coop@food.test": "50%", "coop@delivery.test": "50%"},
        },
        headers=tourism.local["m0"],
    )
    assert response.status_code == 422
    body: dict[str, Any] = response.json()
    assert body["field"] == "coop_weights"


async def test_a_coop_outside_the_electorate_cannot_cast_a_coop_ballot(network: Network) -> None:
    import uuid

    from sqlalchemy import select

    from federation import proofs
    from node.storage.tables import ballots
    from tests.support.coops import coop_keys

    coops = await three_coops(network)
    outsider = await make_coop(
        network, local=1, remote=0, domain="outsider.test", mastodon=coops["food"].mastodon
    )
    tourism = coops["tourism"]
    created = await tourism.propose(
        "m0",
        rule="majority",
        threshold=None,
        quorum="0%",
        counting_mode="coop",
        electorate=["coop@food.test", "coop@delivery.test"],
    )
    await network.settle()
    ed, _ = await coop_keys(outsider.node)
    actor = "https://outsider.test/actors/coop"
    note = proofs.sign(
        {
            "@context": ["https://www.w3.org/ns/activitystreams",
                         "https://w3id.org/security/data-integrity/v2"],
            "id": f"https://outsider.test/ballots/{uuid.uuid4().hex}/0",
            "type": "Note",
            "name": "For",
            "inReplyTo": created["uri"],
            "attributedTo": actor,
        },
        ed,
        verification_method=f"{actor}#ed25519-key",
        created=network.clock.now(),
    )  # fmt: skip
    response = await deliver_as_coop(
        network, outsider.node, note, f"{note['id']}/activity", "https://tourism.test/inbox"
    )
    await network.settle()

    assert response.status_code == 202
    found = await tourism.node.node.db.read(
        lambda conn: conn.execute(select(ballots.c.voter, ballots.c.state, ballots.c.reason)).all()
    )
    assert [tuple(r) for r in found] == [
        (actor, "refused", "the voter is not an eligible member as of the opening")
    ]
