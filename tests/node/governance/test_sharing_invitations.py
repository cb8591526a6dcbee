"""Shared proposals are invitations, not orders: a stranger's proposal is refused; a
followed co-op's waits for the admin, who accepts or declines it; only the co-op that
shared a proposal may change it; and members vote only inside its window, by their own
node's clock."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from federation import httpsig
from node.storage.tables import (
    inbox_activities,
    outbox_activities,
    proposal_coops,
    proposals,
    remote_proposals,
)
from tests.support.coops import Coop, coop_keys, make_coop, take_part_in
from tests.support.network import Network, TestNode

AS2 = {"Accept": "application/activity+json"}


async def host_and_food(network: Network, **food_settings: Any) -> tuple[Coop, Coop]:
    tourism = await make_coop(network, local=2, remote=0, domain="tourism.test")
    food = await make_coop(network, local=2, remote=0, domain="food.test", **food_settings)
    return tourism, food


async def share(tourism: Coop, **fields: Any) -> dict[str, Any]:
    return await tourism.propose(
        "m0",
        **{
            "title": "Join the regional mobility fund",
            "rule": "majority",
            "threshold": None,
            "quorum": "0%",
            "electorate": ["coop@food.test"],
            **fields,
        },
    )


async def count(node: TestNode, table: Any) -> int:
    return int(
        await node.node.db.read(
            lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one()
        )
    )


async def remote_rows(node: TestNode) -> list[Any]:
    return await node.node.db.read(
        lambda conn: list(conn.execute(select(remote_proposals)).mappings())
    )


async def inbox_rows(node: TestNode) -> list[Any]:
    return await node.node.db.read(
        lambda conn: list(
            conn.execute(
                select(inbox_activities)
                .where(inbox_activities.c.type.in_(["Create", "Update"]))
                .order_by(inbox_activities.c.id)
            ).mappings()
        )
    )


async def test_a_shared_proposal_from_a_coop_not_followed_is_refused_and_changes_nothing(
    network: Network,
) -> None:
    tourism, food = await host_and_food(network)
    published_before = await count(food.node, outbox_activities)
    created = await share(tourism, counting_mode="subtotal")
    await network.settle()

    assert await remote_rows(food.node) == []
    assert await count(food.node, proposals) == 0  # no mirror opened
    assert await count(food.node, outbox_activities) == published_before  # nothing sent
    [refused] = await inbox_rows(food.node)
    assert refused["state"] == "failed"
    assert "is not a co-op this co-op follows" in refused["last_error"]
    listed = await food.node.request("GET", "/api/v1/proposals", headers=food.local["m0"])
    assert listed.json()["shared"] == []
    # The host's proposal goes on without food's members.
    assert created["state"] == "scheduled"


async def test_a_followed_coops_proposal_waits_for_the_admin_then_members_vote(
    network: Network,
) -> None:
    tourism, food = await host_and_food(network)
    await take_part_in(network, tourism, food)
    published_before = await count(food.node, outbox_activities)
    created = await share(
        tourism,
        counting_mode="subtotal",
        opens_at=(network.clock.now() + timedelta(hours=2)).isoformat(),
    )
    await network.settle()

    [row] = await remote_rows(food.node)
    assert row["state"] == "invited"
    key = row["key"]
    # Members see nothing, can do nothing; nothing is published or mirrored.
    listed = await food.node.request("GET", "/api/v1/proposals", headers=food.local["m0"])
    assert listed.json() == {"proposals": [], "shared": []}
    shown = await food.node.request("GET", f"/api/v1/proposals/{key}", headers=food.local["m0"])
    assert shown.status_code == 404
    vote = await food.vote("m0", key, "For")
    assert vote.status_code == 404
    assert await count(food.node, proposals) == 0
    assert await count(food.node, outbox_activities) == published_before
    # A member cannot answer the invitation; the admin sees it.
    member_try = await food.node.request(
        "POST", f"/api/v1/proposals/{key}/accept", headers=food.local["m0"]
    )
    assert member_try.status_code == 403
    invitations = await food.node.request(
        "GET", "/api/v1/proposals/invitations", headers=food.node.auth
    )
    [invitation] = invitations.json()["invitations"]
    assert invitation["id"] == key
    assert invitation["title"] == "Join the regional mobility fund"
    assert invitation["host"] == "https://tourism.test/actors/coop"

    accepted = await food.node.request(
        "POST", f"/api/v1/proposals/{key}/accept", headers=food.node.auth
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"id": key, "state": "open"}
    again = await food.node.request(
        "POST", f"/api/v1/proposals/{key}/accept", headers=food.node.auth
    )
    assert again.status_code == 409
    # The co-op's own vote (counted by subtotals) opens when the host's opens.
    [mirror] = await food.node.node.db.read(
        lambda conn: list(conn.execute(select(proposals)).mappings())
    )
    host_row = await tourism.node.node.db.read(
        lambda conn: conn.execute(
            select(proposals.c.opens_at).where(proposals.c.uri == created["uri"])
        ).scalar_one()
    )
    assert mirror["opens_at"] == host_row
    assert mirror["state"] == "scheduled"
    early = await food.vote("m0", mirror["key"], "For")
    assert early.status_code == 409
    assert early.json()["reason"] == "cast before the vote opened"
    network.clock.advance(timedelta(hours=2, minutes=1))
    await network.settle()
    assert (await food.vote("m0", mirror["key"], "For")).status_code == 201


async def test_an_admin_declines_an_invitation_and_the_host_is_told(network: Network) -> None:
    tourism, food = await host_and_food(network)
    await take_part_in(network, tourism, food)
    created = await share(tourism)
    await network.settle()
    [row] = await remote_rows(food.node)
    declined = await food.node.request(
        "POST", f"/api/v1/proposals/{row['key']}/decline", headers=food.node.auth
    )
    assert declined.status_code == 200
    await network.settle()
    states = await tourism.node.node.db.read(
        lambda conn: {
            r.coop: r.state
            for r in conn.execute(select(proposal_coops.c.coop, proposal_coops.c.state))
        }
    )
    assert states["https://food.test/actors/coop"] == "declined"
    assert created["uri"] == row["uri"]
    listed = await food.node.request("GET", "/api/v1/proposals", headers=food.local["m0"])
    [shown] = listed.json()["shared"]
    assert shown["state"] == "declined"


async def test_a_coop_listed_in_accept_shared_from_is_taken_at_once(network: Network) -> None:
    tourism, food = await host_and_food(network, accept_shared_from=("coop@tourism.test",))
    await take_part_in(network, tourism, food)
    await share(tourism, counting_mode="coop")
    await network.settle()
    [row] = await remote_rows(food.node)
    assert row["state"] == "open"
    assert await count(food.node, proposals) == 1  # its own co-op vote
    listed = await food.node.request("GET", "/api/v1/proposals", headers=food.local["m0"])
    assert [p["title"] for p in listed.json()["shared"]] == ["Join the regional mobility fund"]


async def send_update(network: Network, sender: TestNode, document: dict[str, Any]) -> Any:
    _, rsa = await coop_keys(sender)
    actor = f"{sender.base}/actors/coop"
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender.base}/activities/hijack-{network.clock.now().timestamp()}",
        "type": "Update",
        "actor": actor,
        "object": {**document, "attributedTo": actor},
    }
    return await network.http.post(
        "https://food.test/inbox",
        content=json.dumps(activity).encode(),
        headers={"Content-Type": "application/activity+json"},
        auth=httpsig.SignatureAuth(f"{actor}#main-key", rsa, network.clock),
    )


async def test_only_the_coop_that_shared_a_proposal_may_change_it(network: Network) -> None:
    tourism, food = await host_and_food(network, accept_shared_from=("coop@tourism.test",))
    # Another server on the host's own name, another port: another origin.
    neighbour = await network.add("tourism.test:8443")
    await take_part_in(network, tourism, food)
    await take_part_in(network, neighbour, food)
    created = await share(tourism)
    await network.settle()
    [before] = await remote_rows(food.node)
    document = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    forged = {**document, "name": "Give the fund to the neighbour", "closed": True}

    answer = await send_update(network, neighbour, forged)
    assert answer.status_code == 202
    await network.settle()
    [after] = await remote_rows(food.node)
    assert after["document"] == before["document"]
    assert after["state"] == "open"
    [*_, refused] = await inbox_rows(food.node)
    assert refused["state"] == "failed"
    assert "its server does not serve" in refused["last_error"]

    # The host's own update is taken.
    network.clock.advance(timedelta(minutes=2))
    votes = await tourism.vote("m0", created["id"], "For")
    assert votes.status_code == 201
    await network.settle()
    [updated] = await remote_rows(food.node)
    assert json.loads(updated["document"])["votersCount"] == 1


async def test_a_member_votes_only_inside_the_window_by_the_home_nodes_clock(
    network: Network,
) -> None:
    tourism, food = await host_and_food(network, accept_shared_from=("coop@tourism.test",))
    await take_part_in(network, tourism, food)
    opens = network.clock.now() + timedelta(hours=1)
    await share(tourism, opens_at=opens.isoformat())
    await network.settle()
    [row] = await remote_rows(food.node)
    sent_before = await count(food.node, outbox_activities)

    early = await food.vote("m0", row["key"], "For")
    assert early.status_code == 409
    assert early.json()["reason"] == "cast before the vote opened"

    # Past the end by food's clock, though the host has not said it closed (it is down).
    del network.router.apps["tourism.test"]
    network.clock.advance(timedelta(days=8))
    late = await food.vote("m0", row["key"], "For")
    assert late.status_code == 409
    assert late.json()["reason"] == "cast after the vote closed"
    assert await count(food.node, outbox_activities) == sent_before


async def test_the_admin_answers_invitations_from_the_command_line(network: Network) -> None:
    from click.testing import CliRunner

    from node.cli import main
    from node.settings import write_config

    tourism, food = await host_and_food(network)
    await take_part_in(network, tourism, food)
    await share(tourism)
    await share(tourism, title="Share a delivery van")
    await network.settle()
    write_config(food.node.settings)
    data_dir = str(food.node.settings.data_dir)

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, [*args, "--data-dir", data_dir], catch_exceptions=False)

    listed = await asyncio.to_thread(run, "proposals", "invitations")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert len(lines) == 2
    assert all("https://tourism.test/actors/coop" in line for line in lines)
    keys = {line.split("\t")[-1]: line.split("\t")[0] for line in lines}

    accepted = await asyncio.to_thread(
        run, "proposals", "accept", keys["Join the regional mobility fund"]
    )
    assert accepted.exit_code == 0, accepted.output
    declined = await asyncio.to_thread(run, "proposals", "decline", keys["Share a delivery van"])
    assert declined.exit_code == 0, declined.output
    again = await asyncio.to_thread(run, "proposals", "accept", keys["Share a delivery van"])
    assert again.exit_code == 1
    assert "declined, not waiting for an answer" in again.output
    listed = await asyncio.to_thread(run, "proposals", "invitations")
    assert listed.output.strip() == "No invitation waits for an answer."
    shared = await food.node.request("GET", "/api/v1/proposals", headers=food.local["m0"])
    assert {p["title"]: p["state"] for p in shared.json()["shared"]} == {
        "Join the regional mobility fund": "open",
        "Share a delivery van": "declined",
    }


async def test_invitations_waiting_for_an_answer_are_capped_per_coop(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.governance import sharing

    monkeypatch.setattr(sharing, "MAX_INVITATIONS_WAITING", 2)
    tourism, food = await host_and_food(network)
    await take_part_in(network, tourism, food)
    for n in range(3):
        await share(tourism, title=f"Proposal {n}")
    await network.settle()
    assert sorted(r["state"] for r in await remote_rows(food.node)) == ["invited", "invited"]
    refused = [r for r in await inbox_rows(food.node) if r["state"] == "failed"]
    assert len(refused) == 1
    assert "waiting for this co-op's answer already" in refused[0]["last_error"]


async def test_a_proposal_this_coop_could_not_vote_on_is_refused_at_receipt(
    network: Network,
) -> None:
    tourism, food = await host_and_food(network, accept_shared_from=("coop@tourism.test",))
    await take_part_in(network, tourism, food)
    created = await share(tourism, counting_mode="subtotal")
    document = (await tourism.node.get(f"/proposals/{created['id']}", headers=AS2)).json()
    await network.settle()
    [before] = await remote_rows(food.node)
    # The host now says 25 options: more than any proposal of this node may have, so its
    # own vote could not open. Nothing changes; the reason is recorded.
    options = [{"type": "Note", "name": f"Option {n}"} for n in range(25)]
    answer = await send_update(
        network, tourism.node, {**document, "id": document["id"], "oneOf": options}
    )
    assert answer.status_code == 202
    await network.settle()
    [after] = await remote_rows(food.node)
    assert after["document"] == before["document"]
    [*_, refused] = await inbox_rows(food.node)
    assert refused["state"] == "failed"
    assert "cannot be voted on here (options)" in refused["last_error"]


async def test_an_invitation_accepted_too_late_opens_nothing(network: Network) -> None:
    tourism, food = await host_and_food(network)
    await take_part_in(network, tourism, food)
    closes = network.clock.now() + timedelta(minutes=20)
    await share(tourism, counting_mode="subtotal", closes_at=closes.isoformat())
    await network.settle()
    [row] = await remote_rows(food.node)
    # Three minutes before the end: the co-op's own vote could not last five minutes.
    network.clock.advance(timedelta(minutes=17))
    accepted = await food.node.request(
        "POST", f"/api/v1/proposals/{row['key']}/accept", headers=food.node.auth
    )
    assert accepted.status_code == 409
    assert "too late to take part" in accepted.json()["reason"]
    [still] = await remote_rows(food.node)
    assert still["state"] == "invited"
    assert await count(food.node, proposals) == 0


async def test_a_coop_that_declines_after_taking_part_sends_no_subtotal(
    network: Network,
) -> None:
    from node.storage.tables import subtotals

    tourism, food = await host_and_food(network, accept_shared_from=("coop@tourism.test",))
    await take_part_in(network, tourism, food)
    await share(tourism, counting_mode="subtotal")
    await network.settle()
    [row] = await remote_rows(food.node)
    listed = await food.node.request("GET", "/api/v1/proposals", headers=food.local["m0"])
    mirror = listed.json()["shared"][0]["mirror"]
    assert (await food.vote("m0", mirror, "For")).status_code == 201
    declined = await food.node.request(
        "POST", f"/api/v1/proposals/{row['key']}/decline", headers=food.node.auth
    )
    assert declined.status_code == 200
    network.clock.advance(timedelta(days=8))
    await network.settle()
    coops = await tourism.node.node.db.read(
        lambda conn: [r.coop for r in conn.execute(select(subtotals.c.coop))]
    )
    assert "https://food.test/actors/coop" not in coops
