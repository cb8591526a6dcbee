"""Proposals in a browser: the page beside the Question, a vote and a change of vote
by form, roles and form tokens checked, and after the close the outcome with a chart
per college and the audit command."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from node.services import sessions
from node.storage.tables import actors, ballots, members
from tests.support.coops import Coop, add_member, make_coop
from tests.support.network import Network, TestNode

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
AS2 = {"Accept": "application/activity+json"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def browser_of(network: Network, coop: Coop | TestNode, username: str) -> httpx.AsyncClient:
    """A browser with an open session of ``username`` (logging in is tested apart)."""
    node = coop.node if isinstance(coop, Coop) else coop
    now = node.node.clock.now()

    def open_one(conn: Any) -> str:
        member_id = conn.execute(
            select(members.c.id)
            .join(actors, actors.c.id == members.c.actor_id)
            .where(actors.c.username == username)
        ).scalar_one()
        return sessions.open_session(conn, member_id, now=now)

    token = await node.node.db.write(open_one)
    client = httpx.AsyncClient(transport=network.router, base_url=node.base, headers=HTML)
    client.cookies.set("__Host-coopnode_session", token, domain=node.settings.domain)
    return client


def college_of(i: int, local: bool) -> str:
    return "producers" if i % 2 == 0 else "workers"


async def test_a_member_votes_and_changes_her_vote_with_the_form(network: Network) -> None:
    coop = await make_coop(network, local=3, remote=0)
    await add_member(coop.node, username="obs", role="observer", joined_at="2026-01-01")
    created = await coop.propose("m0", allow_change=True)
    key = created["id"]
    path = f"/proposals/{key}"

    # The Question is unchanged for servers; a browser gets the page.
    question = await coop.node.get(path, headers=AS2)
    assert question.json()["type"] == "Question"
    assert (await coop.node.get(path)).headers["content-type"].startswith("application/")
    anonymous = await coop.node.get(path, headers=HTML)
    assert anonymous.headers["content-type"].startswith("text/html")
    assert "Adopt the 2027 delivery tariff" in anonymous.text
    assert 'name="choices"' not in anonymous.text
    assert f"/login?next=/proposals/{key}" in anonymous.text

    member = await browser_of(network, coop, "m1")
    page = await member.get(path)
    token = CSRF.search(page.text)
    assert token is not None
    assert page.text.count('type="radio" name="choices"') == 3
    forged = await member.post(f"{path}/vote", data={"csrf": "guess", "choices": "For"})
    assert forged.status_code == 403
    voted = await member.post(f"{path}/vote", data={"csrf": token.group(1), "choices": "For"})
    assert voted.status_code == 303
    assert voted.headers["location"] == f"{path}?voted=1"
    after = await member.get(f"{path}?voted=1")
    assert "Your ballot: For" in after.text
    assert 'value="For" checked' in after.text
    network.clock.advance(timedelta(seconds=5))
    changed = await member.post(f"{path}/vote", data={"csrf": token.group(1), "choices": "Against"})
    assert changed.status_code == 303
    unknown = await member.post(f"{path}/vote", data={"csrf": token.group(1), "choices": "Maybe"})
    assert unknown.status_code == 400
    assert 'role="alert"' in unknown.text

    observer = await browser_of(network, coop, "obs")
    seen = await observer.get(path)
    assert 'name="choices"' not in seen.text
    observer_token = CSRF.search(seen.text)
    assert observer_token is None  # no form at all for someone who does not vote
    refused = await observer.post(f"{path}/vote", data={"csrf": "x", "choices": "For"})
    assert refused.status_code == 403

    cast = await coop.node.node.db.read(
        lambda conn: [
            r.choices
            for r in conn.execute(
                select(ballots.c.choices).order_by(ballots.c.cast_at, ballots.c.id)
            )
        ]
    )
    assert cast == ['["For"]', '["Against"]']
    network.clock.advance(timedelta(days=7))
    await network.settle()
    closed = await coop.node.get(path, headers=HTML)
    assert "Against" in closed.text
    assert f"coopnode audit {created['uri']}" in closed.text


async def test_the_outcome_shows_a_chart_per_college(network: Network) -> None:
    coop = await make_coop(
        network,
        local=4,
        remote=0,
        colleges={"producers": "60%", "workers": "40%"},
        college_of=college_of,
    )
    created = await coop.propose(
        "m0", rule="majority", threshold=None, quorum="50%", colleges_weigh=True
    )
    for who, choice in (("m0", "For"), ("m1", "Against"), ("m2", "For"), ("m3", "For")):
        assert (await coop.vote(who, created["id"], choice)).status_code == 201
    network.clock.advance(timedelta(days=7))
    await network.settle()

    page = await coop.node.get(f"/proposals/{created['id']}", headers=HTML)
    assert page.status_code == 200
    [chart] = re.findall(r"<svg .*?</svg>", page.text, flags=re.S)
    assert 'role="img"' in chart
    assert '<title id="chart-title">' in chart
    assert "producers (60 %)" in chart
    assert "workers (40 %)" in chart
    assert "<title>For: 2</title>" in chart  # both producers voted For
    assert "<title>Against: 1</title>" in chart
    assert "passed" in page.text
    listing = await coop.node.get("/proposals", headers=HTML)
    assert f'href="/proposals/{created["id"]}"' in listing.text
