"""Every way a ballot is refused, and the ones that count once: the host counts a ballot
only if the voter is the signer, is an eligible member as of the opening, names existing
options, and the vote is open; one counted ballot per member."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from federation import proofs
from tests.support.coops import Coop, add_member, make_coop, token_for
from tests.support.network import Network

AS2 = {"Accept": "application/activity+json"}


async def stored_ballots(coop: Coop) -> list[dict[str, Any]]:
    from node.storage.tables import ballots

    def read(conn: Any) -> list[dict[str, Any]]:
        rows = conn.execute(select(ballots).order_by(ballots.c.id)).mappings()
        return [{**r, "choices": json.loads(r["choices"])} for r in rows]

    found: list[dict[str, Any]] = await coop.node.node.db.read(read)
    return found


async def live(coop: Coop, key: str, network: Network) -> dict[str, int]:
    """The counts as the next Update(Question) publishes them."""
    network.clock.advance(timedelta(minutes=1))
    await network.settle()
    doc = (await coop.node.get(f"/proposals/{key}", headers=AS2)).json()
    options = doc.get("oneOf") or doc.get("anyOf")
    return {o["name"]: o["replies"]["totalItems"] for o in options}


def reply_texts(coop: Coop, who: str) -> list[str]:
    return [n["content"] for n in coop.mastodon.replies_to(coop.remote[who])]


async def test_a_vote_from_someone_not_on_the_roster_is_refused_with_a_reply(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=1)
    created = await coop.propose("m0")
    stranger = coop.mastodon.add_user("stranger")

    await coop.mastodon.vote(stranger, created["uri"], "For")
    await network.settle()

    [ballot] = await stored_ballots(coop)
    assert ballot["state"] == "refused"
    assert ballot["reason"] == "the voter is not an eligible member as of the opening"
    [reply] = [n for n in coop.mastodon.replies_to(stranger)]
    assert "not counted: the voter is not an eligible member" in reply["content"]
    assert reply["tag"] == [
        {"type": "Mention", "href": stranger.actor, "name": "@stranger@mastodon.test"}
    ]
    assert await live(coop, created["id"], network) == {"For": 0, "Against": 0, "Abstain": 0}


async def test_a_member_who_joined_after_the_opening_does_not_vote(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0")
    late = await add_member(coop.node, username="late")
    header = await token_for(coop.node, late["id"])
    coop.local["late"] = header

    response = await coop.vote("late", created["id"], "For")

    assert response.status_code == 403
    assert response.json()["reason"] == "the voter is not an eligible member as of the opening"
    assert await stored_ballots(coop) == []


async def test_an_observer_may_see_but_not_vote(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    observer = await add_member(coop.node, username="obs", role="observer", joined_at="2026-01-01")
    coop.local["obs"] = await token_for(coop.node, observer["id"])
    created = await coop.propose("m0")
    assert created["eligible"] == 1

    seen = await coop.node.request(
        "GET", f"/api/v1/proposals/{created['id']}", headers=coop.local["obs"]
    )
    voted = await coop.vote("obs", created["id"], "For")

    assert seen.status_code == 200
    assert voted.status_code == 403
    assert await stored_ballots(coop) == []


async def test_a_ballot_signed_by_someone_else_than_its_voter_is_refused(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=2)
    created = await coop.propose("m0")
    r0, r1 = coop.remote["r0"], coop.remote["r1"]
    # r0 signs a Create whose Note says r1 voted.
    forged = coop.mastodon.vote_activity(r0, created["uri"], "Against", attributed_to=r1.actor)

    response = await coop.mastodon.post(r0, "https://alpha.test/actors/coop/inbox", forged)
    await network.settle()

    assert response.status_code == 202
    assert await stored_ballots(coop) == []
    failed = await coop.node.node.db.read(
        lambda conn: conn.exec_driver_sql(
            "SELECT state, last_error FROM inbox_activities WHERE type = 'Create'"
        ).all()
    )
    assert [(s, e.split(":")[0]) for s, e in failed] == [("failed", "refused")]
    assert "attributed to https://mastodon.test/users/r1" in failed[0][1]


async def test_unknown_options_and_a_vote_after_the_close_are_refused(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=2)
    created = await coop.propose("m0")

    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "Maybe")
    await network.settle()
    local = await coop.vote("m0", created["id"], "Perhaps")
    network.clock.advance(timedelta(days=7))
    await network.settle()
    late = await coop.vote("m0", created["id"], "For")
    await coop.mastodon.vote(coop.remote["r1"], created["uri"], "For")
    await network.settle()

    assert local.status_code == 422
    assert local.json()["reason"] == "the ballot names an option that does not exist"
    assert late.status_code == 409
    assert late.json()["reason"] == "cast after the vote closed"
    found = [
        (b["voter"].rsplit("/", 1)[1], b["state"], b["reason"]) for b in await stored_ballots(coop)
    ]
    assert found == [
        ("r0", "refused", "the ballot names an option that does not exist"),
        ("r1", "refused", "cast after the vote closed"),
    ]
    assert "does not exist" in reply_texts(coop, "r0")[0]
    assert "cast after the vote closed" in reply_texts(coop, "r1")[0]
    doc = (await coop.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    assert doc["outcome"]["turnout"] == 0


async def test_a_vote_before_the_opening_is_refused(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=1)
    now = network.clock.now()
    created = await coop.propose(
        "m0",
        opens_at=(now + timedelta(hours=1)).isoformat(),
        closes_at=(now + timedelta(days=2)).isoformat(),
    )
    assert created["state"] == "scheduled"

    early = await coop.vote("m0", created["id"], "For")
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "For")
    await network.settle()
    network.clock.advance(timedelta(hours=1))
    await network.settle()
    on_time = await coop.vote("m0", created["id"], "For")

    assert early.status_code == 409
    assert early.json()["reason"] == "cast before the vote opened"
    assert on_time.status_code == 201
    states = [(b["state"], b["reason"]) for b in await stored_ballots(coop)]
    assert states == [("refused", "cast before the vote opened"), ("valid", None)]
    shown = (
        await coop.node.request(
            "GET", f"/api/v1/proposals/{created['id']}", headers=coop.local["m0"]
        )
    ).json()
    assert shown["state"] == "open"
    assert shown["eligible"] == 2


async def test_without_changes_the_first_ballot_counts_and_a_second_is_answered(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=1)
    created = await coop.propose("m0", allow_change=False)

    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "For")
    await network.settle()
    network.clock.advance(timedelta(seconds=5))
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "Against")
    first = await coop.vote("m0", created["id"], "Against")
    network.clock.advance(timedelta(seconds=1))
    second = await coop.vote("m0", created["id"], "For")
    await network.settle()

    assert first.json()["status"] == "counted"
    assert second.status_code == 201
    assert second.json()["status"].startswith("not counted: your first ballot counts")
    assert await live(coop, created["id"], network) == {"For": 1, "Against": 1, "Abstain": 0}
    assert "does not allow changes" in reply_texts(coop, "r0")[-1]


async def test_with_changes_allowed_the_last_ballot_counts(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=1)
    created = await coop.propose("m0", allow_change=True)

    await coop.vote("m0", created["id"], "Against")
    network.clock.advance(timedelta(seconds=1))
    changed = await coop.vote("m0", created["id"], "For")
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "Against")
    await network.settle()
    network.clock.advance(timedelta(seconds=1))
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "Abstain")
    await network.settle()

    assert changed.json()["status"] == "replaces your earlier ballot"
    assert await live(coop, created["id"], network) == {"For": 1, "Against": 0, "Abstain": 1}
    assert reply_texts(coop, "r0") == []


async def test_concurrent_duplicate_ballots_count_once(network: Network) -> None:
    coop = await make_coop(network, local=2, remote=1)
    created = await coop.propose("m0", allow_change=False)
    r0 = coop.remote["r0"]
    activity = coop.mastodon.vote_activity(r0, created["uri"], "For")
    inbox = "https://alpha.test/actors/coop/inbox"

    # The same vote five times at once, and a member's two different ballots at once.
    sent = await asyncio.gather(*(coop.mastodon.post(r0, inbox, activity) for _ in range(5)))
    both = await asyncio.gather(
        coop.vote("m1", created["id"], "For"), coop.vote("m1", created["id"], "Against")
    )
    await network.settle()

    assert {r.status_code for r in sent} == {202}
    assert {r.status_code for r in both} == {201}
    assert len([b for b in await stored_ballots(coop) if b["voter"] == r0.actor]) == 1
    counts = await live(coop, created["id"], network)
    assert sum(counts.values()) == 2
    assert counts["For"] >= 1


async def test_a_mastodon_multiple_choice_vote_is_one_ballot(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=2)
    created = await coop.propose(
        "m0",
        title="Which days should the shop open?",
        options=["Monday", "Wednesday", "Saturday"],
        multiple_choice=True,
        max_choices=2,
        rule=None,
        threshold=None,
        quorum="0%",
    )

    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "Monday", "Saturday")
    await coop.mastodon.vote(coop.remote["r1"], created["uri"], "Monday", "Wednesday", "Saturday")
    too_many = await coop.vote("m0", created["id"], "Monday", "Wednesday", "Saturday")
    await network.settle()

    doc = (await coop.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    assert doc["maxChoices"] == 2
    assert "oneOf" not in doc
    assert too_many.status_code == 422
    assert too_many.json()["reason"] == "the ballot names more options than allowed"
    by_voter = {
        b["voter"].rsplit("/", 1)[1]: (b["state"], b["choices"])
        for b in await stored_ballots(coop)
        if b["state"] == "valid"
    }
    assert by_voter == {
        "r0": ("valid", ["Monday", "Saturday"]),
        "r1": ("valid", ["Monday", "Wednesday"]),
    }
    assert "more options than allowed" in reply_texts(coop, "r1")[0]
    assert await live(coop, created["id"], network) == {"Monday": 2, "Wednesday": 1, "Saturday": 1}


async def test_a_ballot_proof_must_verify_with_the_voters_own_key(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0")
    mastodon = coop.mastodon
    users = {}
    for name in ("p0", "p1", "p2", "p3"):
        user = mastodon.add_user(name, multikey=True)
        linked = await add_member(coop.node, remote=user.handle, joined_at="2026-01-01")
        await coop.node.request(
            "POST", f"/api/v1/members/{linked['id']}/confirm", headers=coop.node.auth
        )
        users[name] = user
    second = await coop.propose("m0", title="Second proposal")
    uri = second["uri"]
    inbox = "https://alpha.test/actors/coop/inbox"

    honest = mastodon.vote_activity(users["p0"], uri, "For")
    tampered = mastodon.vote_activity(users["p1"], uri, "For")
    tampered["object"]["name"] = "Against"  # changed after signing
    confused = mastodon.vote_activity(users["p2"], uri, "For")
    # p2's ballot carries a proof made with p3's key (a key of another actor).
    body = {k: v for k, v in confused["object"].items() if k != "proof"}
    assert users["p3"].ed_key is not None
    confused["object"] = proofs.sign(
        body,
        users["p3"].ed_key,
        verification_method=users["p3"].multikey_id,
        created=network.clock.now(),
    )
    for user, activity in ((users["p0"], honest), (users["p1"], tampered), (users["p2"], confused)):
        assert (await mastodon.post(user, inbox, activity)).status_code == 202
    await network.settle()

    [counted] = await stored_ballots(coop)
    assert counted["voter"] == users["p0"].actor
    assert counted["state"] == "valid"
    errors = await coop.node.node.db.read(
        lambda conn: (
            conn.exec_driver_sql(
                "SELECT last_error FROM inbox_activities WHERE state = 'failed' ORDER BY id"
            )
            .scalars()
            .all()
        )
    )
    assert "does not verify" in errors[0]
    assert "uses a key of https://mastodon.test/users/p3" in errors[1]
    assert created["eligible"] == 1


async def test_a_flood_of_refused_votes_is_bounded_in_rows_and_replies(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0")
    stuffer = coop.mastodon.add_user("stuffer")

    for _ in range(30):
        await coop.mastodon.vote(stuffer, created["uri"], "For")
    await network.settle()

    stored = await stored_ballots(coop)
    assert len(stored) == 10
    assert {b["state"] for b in stored} == {"refused"}
    assert len(coop.mastodon.replies_to(stuffer)) == 3
    assert await live(coop, created["id"], network) == {"For": 0, "Against": 0, "Abstain": 0}


async def test_a_ballot_naming_an_enormous_option_is_refused_unrecorded(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=1)
    created = await coop.propose("m0")

    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "For " * 20_000)
    await network.settle()

    assert await stored_ballots(coop) == []
    errors = await coop.node.node.db.read(
        lambda conn: (
            conn.exec_driver_sql("SELECT last_error FROM inbox_activities WHERE state = 'failed'")
            .scalars()
            .all()
        )
    )
    assert errors == ["refused: a ballot names an option of 79999 characters"]
