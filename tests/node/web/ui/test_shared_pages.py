"""Shared proposals hosted by another co-op, in a member's browser at home: the page,
the vote signed at home and counted by the host, the refreshing counts, a hostile
host's document shown safely, and after the close the outcome and the node's recount
(for the co-op's own proposals too)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from node.storage.tables import ballots, remote_proposals
from tests.node.web.ui.test_proposal_pages import CSRF, HTML, browser_of
from tests.support.coops import Coop, add_member, make_coop, take_part_in
from tests.support.network import Network


async def two_coops(network: Network) -> tuple[Coop, Coop, dict[str, Any]]:
    host = await make_coop(network, local=2, remote=0, domain="tourism.test")
    food = await make_coop(
        network,
        local=2,
        remote=0,
        domain="food.test",
        accept_shared_from=("https://tourism.test/actors/coop",),
    )
    await take_part_in(network, host, food)
    await add_member(food.node, username="obs", role="observer", joined_at="2026-01-01")
    created = await host.propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="50%",
        allow_change=True,
        electorate=["coop@food.test"],
    )
    await network.settle()
    return host, food, created


async def remote_key(food: Coop) -> str:
    key: str = await food.node.node.db.read(
        lambda conn: conn.execute(select(remote_proposals.c.key)).scalar_one()
    )
    return key


async def test_a_member_votes_at_home_on_a_proposal_hosted_elsewhere(network: Network) -> None:
    host, food, created = await two_coops(network)
    key = await remote_key(food)
    path = f"/proposals/shared/{key}"

    anonymous = await food.node.get(path, headers=HTML)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next={path}"

    member = await browser_of(network, food, "m0")
    listing = await member.get("/proposals")
    assert f'href="{path}"' in listing.text
    page = await member.get(path)
    assert page.status_code == 200
    assert "Join the regional mobility fund" in page.text
    assert "A proposal shared with this co-op by tourism.test" in page.text
    assert page.text.count('type="radio" name="choices"') == 3
    assert 'data-live="/proposals/shared/' in page.text
    assert '<script src="/static/live.js" defer></script>' in page.text
    token = CSRF.search(page.text)
    assert token is not None

    forged = await member.post(f"{path}/vote", data={"csrf": "guess", "choices": "For"})
    assert forged.status_code == 403
    unknown = await member.post(f"{path}/vote", data={"csrf": token.group(1), "choices": "Maybe"})
    assert unknown.status_code == 400
    assert "option that does not exist" in unknown.text
    voted = await member.post(f"{path}/vote", data={"csrf": token.group(1), "choices": "For"})
    assert voted.status_code == 303
    assert voted.headers["location"] == f"{path}?voted=1"
    await network.settle()
    network.clock.advance(timedelta(seconds=61))
    changed = await member.post(f"{path}/vote", data={"csrf": token.group(1), "choices": "Against"})
    assert changed.status_code == 303
    await network.settle()
    after = await member.get(path)
    assert "Your ballot: Against" in after.text
    mine = await member.get("/me")
    assert f'<a href="{path}">Join the regional mobility fund</a> (tourism.test): Against' in (
        mine.text
    )

    # The host holds both ballots of the member, sent from her home node; the last counts.
    counted = await host.node.node.db.read(
        lambda conn: [
            (r.voter, r.choices, r.state)
            for r in conn.execute(
                select(ballots.c.voter, ballots.c.choices, ballots.c.state).order_by(ballots.c.id)
            )
        ]
    )
    assert [(v, json.loads(c)) for v, c, _ in counted] == [
        ("https://food.test/actors/m0", ["For"]),
        ("https://food.test/actors/m0", ["Against"]),
    ]

    # The host publishes its counts; the page's script reads them here, at home.
    network.clock.advance(timedelta(seconds=61))
    await network.settle()
    live = await member.get(f"{path}/counts")
    assert live.json() == {
        "state": "open",
        "voters": 1,
        "options": [
            {"name": "For", "count": 0, "percent": 0},
            {"name": "Against", "count": 1, "percent": 100},
            {"name": "Abstain", "count": 0, "percent": 0},
        ],
    }

    observer = await browser_of(network, food, "obs")
    seen = await observer.get(path)
    assert seen.status_code == 200
    assert 'name="choices"' not in seen.text
    refused = await observer.post(f"{path}/vote", data={"csrf": "x", "choices": "For"})
    assert refused.status_code == 403

    # Before the close there is nothing to recount: the page says when there will be.
    early = await member.get(f"{path}/audit")
    assert early.status_code == 404
    assert "The recount comes at the close" in early.text

    # After the close: the outcome, and this node's recount of the host's ballots.
    network.clock.advance(timedelta(days=7))
    await network.settle()
    member = await browser_of(network, food, "m0")  # a week idle ended the session
    closed = await member.get(path)
    assert "<strong>No quorum</strong>" in closed.text  # 1 of 4 voted, 2 needed
    assert 'name="choices"' not in closed.text
    assert f'href="{path}/audit"' in closed.text
    assert f"coopnode audit {created['uri']}" in closed.text
    recount = await member.get(f"{path}/audit")
    assert recount.status_code == 200
    assert "Verified: the published result is the recount’s." in recount.text
    assert re.search(r"<th scope=\"row\">Against</th><td>1</td><td>1</td>", recount.text)

    # A refusal comes back in the page's language.
    fresh_token = CSRF.search((await member.get("/me")).text)
    assert fresh_token is not None
    late = await member.post(
        f"{path}/vote?lang=fr", data={"csrf": fresh_token.group(1), "choices": "For"}
    )
    assert late.status_code == 409
    assert "bulletin déposé après la clôture du vote" in late.text


async def keep_as_sent(food: Coop, document: dict[str, Any]) -> None:
    """Store ``document`` as the host's copy of the proposal, closed, past any check."""

    def unit(conn: Any) -> None:
        conn.execute(update(remote_proposals).values(document=json.dumps(document), state="closed"))

    await food.node.node.db.write(unit)


async def test_a_hostile_hosts_text_is_shown_safely(network: Network) -> None:
    _host, food, _created = await two_coops(network)
    key = await remote_key(food)
    hostile = {
        "type": "Question",
        "id": "https://tourism.test/proposals/x",
        "name": "<b>Free</b> money",
        "content": '<p>Vote <script>alert(1)</script><a href="javascript:x()">here</a></p>',
        "oneOf": [{"name": "For"}, {"name": "Against", "replies": {"totalItems": 3}}],
        "endTime": "2027-03-08T09:00:00Z",
        "url": "javascript:alert(2)",
        "outcome": {"result": "passed", "counts": {"For": 999}},
    }

    await keep_as_sent(food, hostile)
    member = await browser_of(network, food, "m0")
    page = await member.get(f"/proposals/shared/{key}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "javascript:" not in page.text
    assert "&lt;b&gt;Free&lt;/b&gt; money" in page.text
    counts = await member.get(f"/proposals/shared/{key}/counts")
    assert counts.json()["options"] == [
        {"name": "For", "count": 0, "percent": 0},
        {"name": "Against", "count": 3, "percent": 100},
    ]


async def test_a_malformed_document_kept_from_before_is_shown_bare(network: Network) -> None:
    """Documents are read at receipt now; one stored before, with figures that are not
    figures, still gives a page, and breaks neither the list nor the API."""
    _host, food, _created = await two_coops(network)
    key = await remote_key(food)
    hostile = {
        "type": "Question",
        "name": "<b>Free</b> money",
        "oneOf": [
            {"name": "For", "replies": {"totalItems": "lots"}},
            {"name": "Against", "replies": {"totalItems": -5}},
            {"type": "Note"},
            "Abstain",
        ],
        "votersCount": 1e308,
        "outcome": {
            "result": "passed",
            "counts": {"For": "999"},
            "colleges": [{"name": "x", "counts": {"For": None}}, 7],
        },
    }

    await keep_as_sent(food, hostile)
    member = await browser_of(network, food, "m0")
    page = await member.get(f"/proposals/shared/{key}")
    assert page.status_code == 200
    # The figure is not shown anywhere as text (ids are random hex and may hold 999).
    assert not re.search(r">\s*999\s*<", page.text)
    counts = await member.get(f"/proposals/shared/{key}/counts")
    assert counts.json()["options"] == []
    assert (await member.get("/proposals")).status_code == 200
    listed = await food.node.request("GET", "/api/v1/proposals", headers=food.local["m0"])
    assert listed.status_code == 200
    [shown] = listed.json()["shared"]
    assert shown["title"] is None
    assert shown["malformed"] == "id is a text of 1 to 2048 characters"


async def test_the_coops_own_proposal_has_its_recount_page_after_the_close(
    network: Network,
) -> None:
    coop = await make_coop(network, local=3, remote=0)
    created = await coop.propose("m0")
    key = created["id"]
    early = await coop.node.get(f"/proposals/{key}/audit", headers=HTML)
    assert early.status_code == 404  # nothing to recount yet, and the page says why
    assert "The recount comes at the close, on " in early.text
    early_fr = await coop.node.get(
        f"/proposals/{key}/audit", headers={**HTML, "Accept-Language": "fr"}
    )
    assert "Le recomptage vient à la clôture, le " in early_fr.text
    for who, choice in (("m0", "For"), ("m1", "For"), ("m2", "Against")):
        assert (await coop.vote(who, key, choice)).status_code == 201
    await network.settle()
    counts = (await coop.node.get(f"/proposals/{key}/counts")).json()
    assert counts["state"] == "open"
    assert sum(o["count"] for o in counts["options"]) == counts["voters"] > 0

    network.clock.advance(timedelta(days=7))
    await network.settle()
    page = await coop.node.get(f"/proposals/{key}", headers=HTML)
    assert f'href="/proposals/{key}/audit"' in page.text
    assert "live.js" not in page.text  # nothing left to refresh
    recount = await coop.node.get(f"/proposals/{key}/audit", headers=HTML)
    assert recount.status_code == 200
    assert "Verified: the published result is the recount’s." in recount.text
    assert "3 ballots published: 3 with their proof verified" in recount.text
    assert f"coopnode audit {created['uri']}" in recount.text
    french = await coop.node.get(f"/proposals/{key}/audit?lang=fr", headers=HTML)
    assert "Vérifié" in french.text
