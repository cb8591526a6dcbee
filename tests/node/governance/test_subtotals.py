"""Shared proposals counted by subtotals: each co-op votes at home on its own mirror of
the proposal and sends the host one signed subtotal; no individual choice leaves its
node. The host takes subtotals until 15 minutes after the end, from co-ops of the
electorate only, proven by their own key, and no larger than their roster."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from federation import proofs
from node.governance.audit.render import render
from node.governance.audit.run import audit
from node.storage.tables import ballots, inbox_activities
from tests.support.coops import (
    Coop,
    coop_keys,
    deliver_as_coop,
    link_remote,
    make_coop,
    take_part_in,
)
from tests.support.mastodon import Mastodon
from tests.support.network import Network, TestNode

AS2 = {"Accept": "application/activity+json"}


async def four_coops(network: Network) -> dict[str, Coop]:
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
        for name, local in (("tourism", 2), ("food", 2), ("delivery", 1), ("outsider", 1))
    }
    await take_part_in(network, coops["tourism"], coops["food"], coops["delivery"])
    eater = mastodon.add_user("eater")  # a food member who votes from Mastodon
    await link_remote(coops["food"].node, eater)
    coops["food"].remote["eater"] = eater
    return coops


async def open_shared(coops: dict[str, Coop]) -> dict[str, Any]:
    created = await coops["tourism"].propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="50%",
        counting_mode="subtotal",
        electorate=["coop@food.test", "coop@delivery.test"],
    )
    return created


async def shared_entry(coop: Coop) -> dict[str, Any]:
    response = await coop.node.request("GET", "/api/v1/proposals", headers=coop.local["m0"])
    [entry] = response.json()["shared"]
    found: dict[str, Any] = entry
    return found


async def document(coop: Coop, key: str) -> dict[str, Any]:
    found: dict[str, Any] = (await coop.node.get(f"/proposals/{key}", headers=AS2)).json()
    return found


async def test_each_coop_sends_a_subtotal_and_every_node_has_the_outcome(
    network: Network,
) -> None:
    coops = await four_coops(network)
    tourism, food, delivery = coops["tourism"], coops["food"], coops["delivery"]
    created = await open_shared(coops)
    await network.settle()
    at_food, at_delivery = await shared_entry(food), await shared_entry(delivery)
    assert at_food["counting_mode"] == at_delivery["counting_mode"] == "subtotal"
    assert at_food["mirror"] is not None
    assert at_delivery["mirror"] is not None
    mirror = await document(food, at_food["mirror"])
    assert mirror["name"] == "Join the regional mobility fund"
    assert mirror["endTime"] == (await document(tourism, created["id"]))["endTime"]

    for coop, who, choice in (
        (tourism, "m0", "For"),
        (tourism, "m1", "Against"),
        (food, "m0", "For"),
        (food, "m1", "For"),
        (delivery, "m0", "Against"),
    ):
        key = created["id"] if coop is tourism else (await shared_entry(coop))["id"]
        assert (await coop.vote(who, key, choice)).status_code == 201
    # A food member on Mastodon votes on food's own poll.
    await food.mastodon.vote(
        food.remote["eater"], mirror["id"], "For", inbox="https://food.test/inbox"
    )
    await network.settle()

    network.clock.advance(timedelta(days=7))
    await network.settle()
    assert "closed" not in await document(tourism, created["id"])  # until the deadline
    network.clock.advance(timedelta(minutes=15))
    await network.settle()

    closed = await document(tourism, created["id"])
    outcome = closed["outcome"]
    assert outcome["counts"] == {"For": 4, "Against": 2, "Abstain": 0}
    assert outcome["eligible"] == 6  # 2 + food's 3 + delivery's 1
    assert outcome["result"] == "passed"
    participation = {p["coop"]: p for p in outcome["participation"]}
    assert participation["https://food.test/actors/coop"]["voted"] == 3
    assert participation["https://food.test/actors/coop"]["subtotal"] is True
    assert participation["https://delivery.test/actors/coop"]["voted"] == 1
    assert "ballots" not in closed  # the host holds no other co-op's ballot
    # The subtotals it counted are published as received, each with its co-op's proof.
    assert closed["subtotals"] == f"{created['uri']}/subtotals"
    published = (
        await tourism.node.get(f"/proposals/{created['id']}/subtotals", headers=AS2)
    ).json()
    # The host's own members' ballots are a subtotal of its own, signed by the host.
    assert published["totalItems"] == 3
    assert [s["attributedTo"] for s in published["orderedItems"]] == [
        "https://delivery.test/actors/coop",
        "https://food.test/actors/coop",
        "https://tourism.test/actors/coop",
    ]
    assert all(s["proof"]["cryptosuite"] == "eddsa-jcs-2022" for s in published["orderedItems"])
    assert [s["voters"] for s in published["orderedItems"]] == [1, 3, 2]
    assert published["orderedItems"][2]["colleges"] == [
        {"name": None, "voters": 2, "counts": {"For": 1, "Against": 1, "Abstain": 0}}
    ]
    for item, coop in zip(published["orderedItems"], (delivery, food, tourism), strict=True):
        ed, _ = await coop_keys(coop.node)
        proofs.verify(item, ed.public_key())  # anyone holding the co-op's key can check
    voters_at_host = await tourism.node.node.db.read(
        lambda conn: set(conn.execute(select(ballots.c.voter)).scalars())
    )
    assert voters_at_host == {"https://tourism.test/actors/m0", "https://tourism.test/actors/m1"}
    # Food shows who of its members voted, not how.
    shown = (await food.node.get(f"/proposals/{at_food['mirror']}/voters", headers=AS2)).json()
    assert shown["orderedItems"] == [
        "https://food.test/actors/m0",
        "https://food.test/actors/m1",
        "https://mastodon.test/users/eater",
    ]
    for coop in (food, delivery):
        assert (await shared_entry(coop))["outcome"] == outcome
    # Anyone can re-check it: every co-op's proof with its own key, and the sum.
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert report.ok, render(report)
    assert [c.proof for c in report.subtotals] == ["verified"] * 3
    assert report.recount.counts == {"For": 4, "Against": 2, "Abstain": 0}
    assert "Subtotals 3 published: 3 with proofs verified" in render(report)


async def close_with_votes(network: Network) -> tuple[dict[str, Coop], dict[str, Any]]:
    coops = await four_coops(network)
    created = await open_shared(coops)
    await network.settle()
    await coops["tourism"].vote("m0", created["id"], "For")
    await coops["food"].vote("m0", (await shared_entry(coops["food"]))["id"], "Against")
    await coops["food"].vote("m1", (await shared_entry(coops["food"]))["id"], "Against")
    await coops["delivery"].vote("m0", (await shared_entry(coops["delivery"]))["id"], "For")
    await network.settle()
    network.clock.advance(timedelta(days=7))  # the mirrors close, and send subtotals
    await network.settle()
    network.clock.advance(timedelta(minutes=15))
    await network.settle()
    return coops, created


async def test_the_audit_finds_a_subtotal_the_host_altered_forged_or_dropped(
    network: Network,
) -> None:
    from node.storage.tables import subtotals

    coops, created = await close_with_votes(network)
    host = coops["tourism"].node.node
    food = "https://food.test/actors/coop"
    assert (await audit(created["uri"], http=network.http, allow_http=True)).ok

    async def rewrite(change: Any) -> str:
        def unit(conn: Any) -> str:
            text = conn.execute(
                select(subtotals.c.document).where(subtotals.c.coop == food)
            ).scalar_one()
            conn.execute(
                subtotals.update()
                .where(subtotals.c.coop == food)
                .values(document=json.dumps(change(json.loads(text))))
            )
            return str(text)

        return str(await host.db.write(unit))

    async def restore(text: str) -> None:
        await host.db.write(
            lambda conn: conn.execute(
                subtotals.update().where(subtotals.c.coop == food).values(document=text)
            )
        )

    # The host turns food's two Against into For: food's proof no longer verifies.
    def altered(document: dict[str, Any]) -> dict[str, Any]:
        document["colleges"][0]["counts"] = {"For": 2, "Against": 0, "Abstain": 0}
        return document

    original = await rewrite(altered)
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert not report.ok
    [bad] = [c for c in report.subtotals if c.coop == food]
    assert bad.proof == "failed"
    assert any("subtotal 2 (https://food.test/actors/coop) is TAMPERED" in d
               for d in report.discrepancies)  # fmt: skip
    assert "count for 'Against': published 2, recomputed 0" in report.discrepancies
    await restore(original)

    # The host makes food's subtotal up and signs it with its own key: key confusion.
    host_ed, _ = await coop_keys(coops["tourism"].node)

    def forged(document: dict[str, Any]) -> dict[str, Any]:
        document.pop("proof")
        document["colleges"][0]["counts"] = {"For": 2, "Against": 0, "Abstain": 0}
        return proofs.sign(
            document,
            host_ed,
            verification_method="https://tourism.test/actors/coop#ed25519-key",
            created=network.clock.now(),
        )

    await rewrite(forged)
    report = await audit(created["uri"], http=network.http, allow_http=True)
    [bad] = [c for c in report.subtotals if c.coop == food]
    assert bad.proof == "failed"
    assert (
        "a key of https://tourism.test/actors/coop, not of the co-op (key confusion)"
        in (bad.problems[0])
    )
    await restore(original)

    # The host drops delivery's subtotal but keeps its published figures.
    await host.db.write(
        lambda conn: conn.execute(
            subtotals.delete().where(subtotals.c.coop == "https://delivery.test/actors/coop")
        )
    )
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert not report.ok
    assert (
        "the outcome counts a subtotal of https://delivery.test/actors/coop, which is not "
        "published" in report.discrepancies
    )
    assert "count for 'For': published 2, recomputed 1" in report.discrepancies


async def send_subtotal(
    network: Network,
    sender: TestNode,
    proposal: str,
    *,
    voters: int,
    counts: dict[str, int],
    tamper: bool = False,
    published: str | None = None,
) -> None:
    """A subtotal as a co-op's node sends one, built and signed by hand."""
    ed, _ = await coop_keys(sender)
    actor = f"{sender.base}/actors/coop"
    subtotal = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://coopnode.org/ns/v1",
                     "https://w3id.org/security/data-integrity/v2"],
        "id": f"{sender.base}/subtotals/{uuid.uuid4().hex}",
        "type": "Subtotal",
        "attributedTo": actor,
        "inReplyTo": proposal,
        "published": published or network.clock.now().isoformat().replace("+00:00", "Z"),
        "voters": voters,
        "colleges": [{"name": None, "voters": voters, "counts": counts}],
    }  # fmt: skip
    signed = proofs.sign(
        subtotal, ed, verification_method=f"{actor}#ed25519-key", created=network.clock.now()
    )
    if tamper:
        signed["colleges"][0]["counts"] = {"For": voters}
    response = await deliver_as_coop(
        network,
        sender,
        signed,
        f"{sender.base}/activities/{uuid.uuid4().hex}",
        "https://tourism.test/inbox",
    )
    assert response.status_code == 202, response.text


async def refusals(coop: Coop) -> list[str]:
    def read(conn: Any) -> list[str]:
        query = (
            select(inbox_activities.c.last_error)
            .where(inbox_activities.c.state == "failed")
            .order_by(inbox_activities.c.id)
        )
        return [e for e in conn.execute(query).scalars() if e]

    found: list[str] = await coop.node.node.db.read(read)
    return found


async def test_forged_oversized_and_tampered_subtotals_are_refused(network: Network) -> None:
    coops = await four_coops(network)
    tourism = coops["tourism"]
    created = await open_shared(coops)
    await network.settle()
    uri = created["uri"]

    # From a co-op outside the electorate; above food's roster (3 members); altered
    # after signing; and one that adds up wrong.
    await send_subtotal(network, coops["outsider"].node, uri, voters=1, counts={"For": 1})
    await send_subtotal(network, coops["food"].node, uri, voters=99, counts={"For": 99})
    await send_subtotal(
        network, coops["food"].node, uri, voters=2, counts={"Against": 2}, tamper=True
    )
    await send_subtotal(network, coops["food"].node, uri, voters=2, counts={"For": 1})
    await network.settle()

    errors = await refusals(tourism)
    assert len(errors) == 4
    assert "outsider.test/actors/coop is not a co-op of this proposal's electorate" in errors[0]
    assert "99 voters, but the co-op's roster had 3 members at the opening" in errors[1]
    assert "the subtotal's proof does not verify" in errors[2]
    assert "1 choices for 2 voters" in errors[3]
    network.clock.advance(timedelta(days=7, minutes=15))
    await network.settle()
    outcome = (await document(tourism, created["id"]))["outcome"]
    assert outcome["counts"] == {"For": 0, "Against": 0, "Abstain": 0}


async def test_a_participant_down_at_the_close_has_no_subtotal_and_the_outcome_says_so(
    network: Network,
) -> None:
    coops = await four_coops(network)
    tourism, food, delivery = coops["tourism"], coops["food"], coops["delivery"]
    created = await open_shared(coops)
    await network.settle()
    await tourism.vote("m0", created["id"], "For")
    await food.vote("m0", (await shared_entry(food))["id"], "For")
    await delivery.vote("m0", (await shared_entry(delivery))["id"], "Against")
    await network.settle()

    # Down across the close: nothing reaches it, and its workers do not run.
    delivery_app = network.router.apps.pop("delivery.test")
    delivery_node = network.nodes.pop("delivery.test")
    network.clock.advance(timedelta(days=7))
    await network.settle()
    network.clock.advance(timedelta(minutes=15))
    await network.settle()
    network.router.apps["delivery.test"] = delivery_app
    network.nodes["delivery.test"] = delivery_node
    network.clock.advance(timedelta(hours=2))
    await network.settle()  # its late subtotal arrives, and is refused

    outcome = (await document(tourism, created["id"]))["outcome"]
    participation = {p["coop"]: p for p in outcome["participation"]}
    late = participation["https://delivery.test/actors/coop"]
    assert late["voted"] == 0
    assert "subtotal" not in late
    assert participation["https://food.test/actors/coop"]["subtotal"] is True
    assert outcome["counts"] == {"For": 2, "Against": 0, "Abstain": 0}
    errors = await refusals(tourism)
    assert any("taken until 15 minutes after the vote's end" in e for e in errors)
    report = await audit(created["uri"], http=network.http, allow_http=True)
    assert report.ok, render(report)  # a missing subtotal is shown, not hidden
    assert [c.coop for c in report.subtotals] == [
        "https://food.test/actors/coop",
        "https://tourism.test/actors/coop",
    ]


async def test_a_newer_subtotal_replaces_the_earlier_one_and_an_older_one_does_not(
    network: Network,
) -> None:
    from node.storage.tables import subtotals

    coops = await four_coops(network)
    created = await open_shared(coops)
    await network.settle()
    food = coops["food"].node
    uri = created["uri"]

    first = network.clock.now().isoformat().replace("+00:00", "Z")
    await send_subtotal(network, food, uri, voters=1, counts={"For": 1})
    network.clock.advance(timedelta(minutes=1))
    await send_subtotal(network, food, uri, voters=2, counts={"Against": 2})
    await network.settle()
    # Arriving last but published first (a delayed retry): it does not replace.
    await send_subtotal(network, food, uri, voters=3, counts={"For": 3}, published=first)
    await network.settle()
    network.clock.advance(timedelta(minutes=1))

    def kept(conn: Any) -> list[tuple[str, int]]:
        return [(r.coop, r.voters) for r in conn.execute(select(subtotals)).all()]

    assert await coops["tourism"].node.node.db.read(kept) == [("https://food.test/actors/coop", 2)]
    stored = await coops["tourism"].node.node.db.read(
        lambda conn: json.loads(conn.execute(select(subtotals.c.document)).scalar_one())
    )
    assert stored["colleges"][0]["counts"] == {"Against": 2}
