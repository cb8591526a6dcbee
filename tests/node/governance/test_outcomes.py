"""Counts while the vote is open, and the close: quorum, consent, colleges, and a close
that happens late because the node was down or ballots were still queued."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from node.storage.tables import outbox_activities
from tests.support.coops import Coop, make_coop
from tests.support.network import Network

AS2 = {"Accept": "application/activity+json"}


async def document(coop: Coop, key: str) -> dict[str, Any]:
    found: dict[str, Any] = (await coop.node.get(f"/proposals/{key}", headers=AS2)).json()
    return found


async def question_updates(coop: Coop) -> list[dict[str, Any]]:
    def read(conn: Any) -> list[str]:
        return list(
            conn.execute(
                select(outbox_activities.c.body)
                .where(outbox_activities.c.type == "Update")
                .order_by(outbox_activities.c.id)
            ).scalars()
        )

    import json

    return [json.loads(b) for b in await coop.node.node.db.read(read)]


async def test_counts_are_published_at_most_once_a_minute(network: Network) -> None:
    coop = await make_coop(network, local=6, remote=0)
    created = await coop.propose("m0")

    await coop.vote("m0", created["id"], "For")
    await network.settle()
    for who in ("m1", "m2", "m3"):
        network.clock.advance(timedelta(seconds=10))
        await coop.vote(who, created["id"], "For")
        await network.settle()
    first = await question_updates(coop)
    network.clock.advance(timedelta(seconds=30))  # a minute after the first Update
    await network.settle()
    second = await question_updates(coop)
    network.clock.advance(timedelta(minutes=5))  # nothing new: nothing sent
    await network.settle()

    assert [u["object"]["votersCount"] for u in first] == [1]
    assert [u["object"]["votersCount"] for u in second] == [1, 4]
    assert len(await question_updates(coop)) == 2


async def test_a_proposal_without_quorum_is_not_decided(network: Network) -> None:
    coop = await make_coop(network, local=10, remote=0)
    created = await coop.propose("m0", quorum="30%", rule="majority", threshold=None)
    await coop.vote("m0", created["id"], "For")
    await coop.vote("m1", created["id"], "For")
    await coop.vote("m2", created["id"], "Abstain")

    network.clock.advance(timedelta(days=7))
    await network.settle()

    outcome = (await document(coop, created["id"]))["outcome"]
    assert outcome["result"] == "no quorum"
    assert outcome["passed"] is False
    assert outcome["reason"] == (
        "no quorum: 2 of 10 eligible members voted (abstentions not counted), "
        "3 needed (quorum 30.0 %)"
    )


async def test_a_consent_proposal_is_blocked_by_objections(network: Network) -> None:
    coop = await make_coop(network, local=6, remote=2)
    created = await coop.propose(
        "m0",
        rule="consent",
        threshold=None,
        block_at=2,
        options=["Consent", "Object", "Stand aside"],
        quorum="0%",
    )
    for who in ("m0", "m1", "m2", "m3"):
        await coop.vote(who, created["id"], "Consent")
    await coop.vote("m4", created["id"], "Object")
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "Object")
    await network.settle()

    network.clock.advance(timedelta(days=7))
    await network.settle()

    doc = await document(coop, created["id"])
    assert doc["decisionRule"] == {"type": "consent", "blockAt": 2}
    assert doc["outcome"]["result"] == "blocked"
    assert doc["outcome"]["reason"] == "blocked: 2 objections, 2 would block"
    replies = [
        a["object"]["content"]
        for a in coop.mastodon.received
        if a["type"] == "Create" and a["object"].get("inReplyTo") == created["uri"]
    ]
    assert len(replies) == 1
    assert "Blocked" in replies[0]


def college_of(i: int, local: bool) -> str:
    """20 local and 10 remote members: 6 producers, 6 workers, 18 consumers."""
    n = i if local else 20 + i
    return "producers" if n < 6 else "workers" if n < 12 else "consumers"


async def test_thirty_members_in_three_colleges_weighted_and_plain_differ(
    network: Network,
) -> None:
    coop = await make_coop(
        network,
        local=20,
        remote=10,
        colleges={"producers": "50%", "workers": "30%", "consumers": "20%"},
        college_of=college_of,
    )
    created = await coop.propose(
        "m0", rule="majority", threshold=None, quorum="50%", colleges_weigh=True
    )
    assert created["eligible"] == 30
    votes = {
        # producers m0-m5: 1 for, 4 against, one does not vote
        "m0": "For", "m1": "Against", "m2": "Against", "m3": "Against", "m4": "Against",
        # workers m6-m11: 2 for, 3 against
        "m6": "For", "m7": "For", "m8": "Against", "m9": "Against", "m10": "Against",
        # consumers m12-m19 local, r0-r9 remote: 15 for, 2 against, 1 abstains
        "m12": "For", "m13": "For", "m14": "For", "m15": "For", "m16": "For",
        "m17": "For", "m18": "Against", "m19": "Abstain",
    }  # fmt: skip
    for who, choice in votes.items():
        response = await coop.vote(who, created["id"], choice)
        assert response.status_code == 201, response.text
    for i in range(10):
        choice = "Against" if i == 9 else "For"
        await coop.mastodon.vote(coop.remote[f"r{i}"], created["uri"], choice)
    await network.settle()

    network.clock.advance(timedelta(days=7))
    await network.settle()

    doc = await document(coop, created["id"])
    assert doc["colleges"] == [
        {"name": "consumers", "weight": "1/5"},
        {"name": "producers", "weight": "1/2"},
        {"name": "workers", "weight": "3/10"},
    ]
    outcome = doc["outcome"]
    assert outcome["counts"] == {"For": 18, "Against": 9, "Abstain": 1}
    # Plain: 18 of 27 for (66.7 %) would pass; weighted: 1/2 x 1/5 + 3/10 x 2/5
    # + 1/5 x 15/17 = 0.396, rejected.
    assert outcome["support"] == "2/3"
    assert outcome["weightedSupport"] == "337/850"
    assert outcome["result"] == "rejected"
    assert outcome["reason"] == (
        "rejected: 39.6 % for with college weights, more than half needed; "
        "plain count 18 for, 9 against (66.7 % for)"
    )
    assert {c["name"]: (c["voters"], c["counts"]["For"]) for c in outcome["colleges"]} == {
        "producers": (5, 1),
        "workers": (5, 2),
        "consumers": (18, 15),
    }


async def test_a_node_down_at_the_close_closes_when_it_is_back(network: Network) -> None:
    coop = await make_coop(network, local=3, remote=1)
    created = await coop.propose("m0", quorum="0%")
    await coop.vote("m0", created["id"], "For")
    # A remote ballot accepted before the close but not handled yet when the node
    # stops: it counts, and the close waits for it.
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "Against")

    network.clock.advance(timedelta(days=9))  # the node was down across the close
    from node.governance import worker as governance_worker
    from node.inbox import worker as inbox_worker

    await governance_worker.run_once(coop.node.node)
    assert "closed" not in await document(coop, created["id"])  # the queued ballot first
    await inbox_worker.run_once(coop.node.node)
    await network.settle()

    doc = await document(coop, created["id"])
    assert doc["closed"] == "2027-03-10T09:00:00Z"
    assert doc["endTime"] == "2027-03-08T09:00:00Z"
    assert doc["outcome"]["counts"] == {"For": 1, "Against": 1, "Abstain": 0}
    assert doc["outcome"]["result"] == "rejected"
