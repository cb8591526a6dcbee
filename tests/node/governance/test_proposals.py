"""Proposals end to end on the in-process network: published as a Question, voted on by
local members through the API and by remote members from a Mastodon-shaped server,
counted, closed and published with their outcome."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from federation import proofs
from tests.support.coops import make_coop
from tests.support.network import Network

AS2 = {"Accept": "application/activity+json"}


async def question(coop: Any, key: str) -> dict[str, Any]:
    response = await coop.node.get(f"/proposals/{key}", headers=AS2)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_a_proposal_is_a_question_mastodon_can_show(network: Network) -> None:
    coop = await make_coop(network, local=2, remote=1)

    created = await coop.propose("m0")

    doc = await question(coop, created["id"])
    assert doc["type"] == "Question"
    assert doc["attributedTo"] == "https://alpha.test/actors/coop"
    assert doc["name"] == "Adopt the 2027 delivery tariff"
    # Mastodon shows a Question's content alone: the title leads it.
    assert doc["content"] == (
        "<p><strong>Adopt the 2027 delivery tariff</strong></p>"
        "<p>The <strong>new</strong> tariff.</p>"
    )
    assert "contentMap" not in doc  # no language was given
    assert [o["name"] for o in doc["oneOf"]] == ["For", "Against", "Abstain"]
    assert [o["optionRole"] for o in doc["oneOf"]] == ["for", "against", "abstain"]
    assert doc["decisionRule"] == {"type": "qualified", "threshold": "2/3"}
    assert doc["quorum"] == "1/4"
    assert doc["votersCount"] == 0
    assert "closed" not in doc
    assert created["state"] == "open"
    assert created["eligible"] == 3
    await network.settle()
    # The remote member's server received the poll, so that they can answer it.
    sent = [a for a in coop.mastodon.received if a["type"] == "Create"]
    assert [a["object"]["type"] for a in sent] == ["Question"]


async def test_a_proposal_in_a_language_says_it_and_keeps_its_title_first(
    network: Network,
) -> None:
    coop = await make_coop(network, local=2, remote=0)

    created = await coop.propose(
        "m0", title="Ouvrir un second point de retrait <Lyon & co>", text="", language="fr"
    )
    refused = await coop.node.request(
        "POST",
        "/api/v1/proposals",
        json={
            "title": "Un titre",
            "options": ["Pour", "Contre"],
            "closes_at": (coop.node.node.clock.now() + timedelta(days=7)).isoformat(),
            "language": "français",
        },
        headers=coop.local["m0"],
    )

    doc = await question(coop, created["id"])
    title = "<p><strong>Ouvrir un second point de retrait &lt;Lyon &amp; co&gt;</strong></p>"
    assert doc["content"] == title
    assert doc["contentMap"] == {"fr": title}
    assert doc["name"] == "Ouvrir un second point de retrait <Lyon & co>"
    assert refused.status_code == 422
    assert refused.json()["field"] == "language"


async def test_local_and_mastodon_votes_count_and_the_outcome_is_published(
    network: Network,
) -> None:
    coop = await make_coop(network, local=3, remote=2)
    created = await coop.propose("m0", allow_change=True)
    key, uri = created["id"], created["uri"]

    for who, choice in (("m0", "For"), ("m1", "For"), ("m2", "Against")):
        response = await coop.vote(who, key, choice)
        assert response.status_code == 201, response.text
    ballot = response.json()
    # The node signs the ballot Note as the member, with an eddsa-jcs-2022 proof.
    note = ballot["notes"][0]
    assert note["attributedTo"] == "https://alpha.test/actors/m2"
    assert note["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert proofs.verification_method(note) == "https://alpha.test/actors/m2#ed25519-key"
    await coop.mastodon.vote(coop.remote["r0"], uri, "For")
    await coop.mastodon.vote(coop.remote["r1"], uri, "Abstain")
    await network.settle()

    live = await question(coop, key)
    assert {o["name"]: o["replies"]["totalItems"] for o in live["oneOf"]} == {
        "For": 3,
        "Against": 1,
        "Abstain": 1,
    }
    assert live["votersCount"] == 5

    network.clock.advance(timedelta(days=7))
    await network.settle()

    closed = await question(coop, key)
    assert closed["closed"] == "2027-03-08T09:00:00Z"
    assert closed["outcome"]["result"] == "passed"
    assert closed["outcome"]["reason"] == (
        "passed: 3 for, 1 against (75.0 % for); at least 2/3 needed"
    )
    assert closed["outcome"]["turnout"] == 5
    # Mastodon's users get the final counts and a reply that says it passed, and why.
    updates = [a for a in coop.mastodon.received if a["type"] == "Update"]
    assert updates[-1]["object"]["outcome"]["passed"] is True
    replies = [
        a["object"]
        for a in coop.mastodon.received
        if a["type"] == "Create" and a["object"].get("inReplyTo") == uri
    ]
    assert len(replies) == 1
    assert "Passed" in replies[0]["content"]
    assert "75.0 %" in replies[0]["content"]
