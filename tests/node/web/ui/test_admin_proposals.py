"""The admin's proposals page: the co-op's proposals, and the form that opens one,
internal or shared with a co-op this node follows, through the API's own checks. Real
nodes: the follow and the shared proposal travel over HTTP between them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from node.follows import actions
from node.storage.tables import proposal_coops, proposals
from tests.node.web.ui.test_proposal_pages import CSRF, HTML, browser_of
from tests.support.coops import Coop, add_member, make_coop
from tests.support.network import Network, TestNode


async def two_coops(network: Network) -> tuple[Coop, Coop]:
    """Alpha, with an admin (ana) and members, and beta: each follows the other."""
    alpha = await make_coop(network, local=2, remote=0, domain="alpha.test")
    await add_member(alpha.node, username="ana", role="admin", joined_at="2026-01-01")
    beta = await make_coop(network, local=1, remote=0, domain="beta.test")
    await actions.follow(alpha.node.node, "coop@beta.test")
    await actions.follow(beta.node.node, "coop@alpha.test")
    await network.settle()
    return alpha, beta


def local_minute(moment: datetime) -> str:
    """A moment as a ``datetime-local`` input sends it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def form(csrf: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "csrf": csrf,
        "title": "Adopt the 2027 delivery tariff",
        "text": "The **new** tariff.",
        "options": "For\r\nAgainst\r\nAbstain\r\n",
        "choice": "single",
        "rule": "majority",
        "quorum": "25%",
        "allow_change": "on",
        "open_ballot": "on",
        "counting_mode": "open",
        "coop_tie": "abstain",
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


async def stored(node: TestNode) -> list[Any]:
    query = select(proposals).order_by(proposals.c.id)
    return await node.node.db.read(lambda conn: list(conn.execute(query).mappings()))


async def test_the_form_lists_followed_coops_and_opens_an_internal_proposal(
    network: Network,
) -> None:
    alpha, _ = await two_coops(network)
    admin = await browser_of(network, alpha.node, "ana")
    page = await admin.get("/admin/proposals")
    assert page.status_code == 200
    assert page.text.count("<h1>") == 1
    assert "No proposal yet." in page.text
    # The followed co-op, by name and handle, in the "Shared with" fieldset.
    assert 'name="electorate" value="https://beta.test/actors/coop"' in page.text
    assert "Co-op beta.test" in page.text
    assert "coop@beta.test" in page.text
    assert "(UTC)" in page.text
    assert page.headers["cache-control"] == "no-store"
    token = CSRF.search(page.text)
    assert token is not None

    closes = alpha.node.node.clock.now() + timedelta(days=7)
    sent = await admin.post(
        "/admin/proposals",
        data=form(token.group(1), closes_at=local_minute(closes), allow_change=None),
    )
    assert sent.status_code == 303, sent.text
    [row] = await stored(alpha.node)
    assert sent.headers["location"] == f"/proposals/{row['key']}"
    assert row["title"] == "Adopt the 2027 delivery tariff"
    assert [o["name"] for o in json.loads(row["options"])] == ["For", "Against", "Abstain"]
    assert row["closes_at"] == closes.replace(second=0, microsecond=0)
    assert row["quorum"] == "1/4"
    assert not row["allow_change"]
    assert row["counting_mode"] == "open"
    assert row["author"] == "https://alpha.test/actors/ana"
    assert (
        await alpha.node.node.db.read(
            lambda conn: conn.execute(select(func.count()).select_from(proposal_coops)).scalar_one()
        )
        == 0
    )  # internal: no other co-op takes part

    shown = await admin.get(sent.headers["location"])
    assert shown.status_code == 200
    assert "Adopt the 2027 delivery tariff" in shown.text
    listed = await admin.get("/admin/proposals")
    assert f'href="/proposals/{row["key"]}"' in listed.text
    assert "Internal" in listed.text
    assert "Ballots: 0" in listed.text
    french = await admin.get("/admin/proposals?lang=fr")
    assert "Ouvrir une proposition" in french.text
    assert "Interne" in french.text


async def test_a_shared_proposal_goes_to_the_checked_coop(network: Network) -> None:
    alpha, beta = await two_coops(network)
    admin = await browser_of(network, alpha.node, "ana")
    token = CSRF.search((await admin.get("/admin/proposals")).text)
    assert token is not None
    now = alpha.node.node.clock.now()
    sent = await admin.post(
        "/admin/proposals",
        data=form(
            token.group(1),
            title="Join the regional mobility fund",
            opens_at=local_minute(now + timedelta(hours=1)),
            closes_at=local_minute(now + timedelta(days=3)),
            electorate="https://beta.test/actors/coop",
            counting_mode="subtotal",
        ),
    )
    assert sent.status_code == 303, sent.text
    rows = [r for r in await stored(alpha.node) if r["mirror"] is None]
    [row] = rows
    assert sent.headers["location"] == f"/proposals/{row['key']}"
    assert row["counting_mode"] == "subtotal"
    assert row["opens_at"] == (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    assert json.loads(row["source"])["electorate"] == [
        "https://alpha.test/actors/coop",
        "https://beta.test/actors/coop",
    ]
    pk = row["id"]
    coops = await alpha.node.node.db.read(
        lambda conn: {
            r.coop: r.state
            for r in conn.execute(
                select(proposal_coops.c.coop, proposal_coops.c.state).where(
                    proposal_coops.c.proposal_id == pk
                )
            )
        }
    )
    assert coops == {
        "https://alpha.test/actors/coop": "host",
        "https://beta.test/actors/coop": "invited",
    }
    listed = await admin.get("/admin/proposals")
    assert "Shared with other co-ops: 1" in listed.text
    assert "Counted by subtotals" in listed.text

    # Beta follows alpha, so the proposal reaches it as an invitation: its members see
    # nothing and no mirror opens until its admin accepts on the page.
    await network.settle()
    response = await beta.node.request("GET", "/api/v1/proposals", headers=beta.local["m0"])
    assert response.json() == {"proposals": [], "shared": []}
    await add_member(beta.node, username="bea", role="admin", joined_at="2026-01-01")
    beta_admin = await browser_of(network, beta.node, "bea")
    page = await beta_admin.get("/admin/proposals")
    assert "Invitations from other co-ops" in page.text
    assert "Join the regional mobility fund" in page.text
    key = re.search(r'action="/admin/proposals/invitations/([0-9a-f]+)"', page.text)
    token = CSRF.search(page.text)
    assert key is not None
    assert token is not None
    answered = await beta_admin.post(
        f"/admin/proposals/invitations/{key.group(1)}",
        data={"csrf": token.group(1), "answer": "accept"},
    )
    assert answered.status_code == 303
    assert answered.headers["location"] == "/admin/proposals?answered=accept"
    assert "Invitations from other co-ops" not in (await beta_admin.get("/admin/proposals")).text
    response = await beta.node.request("GET", "/api/v1/proposals", headers=beta.local["m0"])
    [shared] = response.json()["shared"]
    assert shared["title"] == "Join the regional mobility fund"
    # Counted by subtotals: beta's own vote opens when the host's does, not at acceptance.
    [mirror] = await stored(beta.node)
    assert mirror["opens_at"] == row["opens_at"]
    assert shared["mirror"] == mirror["key"]


async def test_invalid_input_shows_the_form_again_and_opens_nothing(network: Network) -> None:
    alpha, _ = await two_coops(network)
    admin = await browser_of(network, alpha.node, "ana")
    token = CSRF.search((await admin.get("/admin/proposals")).text)
    assert token is not None
    now = alpha.node.node.clock.now()
    closes = local_minute(now + timedelta(days=2))
    cases = [
        ({"title": "  ", "closes_at": closes}, "title", "title is required text"),
        ({"options": "Only one", "closes_at": closes}, "options", "options is a list"),
        (
            {
                "opens_at": local_minute(now + timedelta(days=2)),
                "closes_at": local_minute(now + timedelta(days=1)),
            },
            "closes_at",
            "at least five minutes",
        ),
        (
            {"closes_at": closes, "electorate": "https://elsewhere.test/actors/coop"},
            "electorate",
            "only with co-ops this node follows",
        ),
        (
            {"closes_at": closes, "counting_mode": "coop"},
            "counting_mode",
            "shared with other co-ops",
        ),
        # A digit that is not 0-9 ("²".isdigit() is true, int("²") fails).
        ({"closes_at": closes, "choice": "multiple", "max_choices": "²"}, "max_choices", "whole"),
    ]
    for changes, field, message in cases:
        answer = await admin.post(
            "/admin/proposals", data=form(token.group(1), text="Kept text", **changes)
        )
        assert answer.status_code == 400, (field, answer.text)
        assert message in answer.text, field
        assert f'id="{field}-error"' in answer.text
        assert re.search(rf'aria-describedby="[^"]*{field}-error"', answer.text)
        assert 'aria-invalid="true"' in answer.text
        assert 'role="alert"' in answer.text
        assert "Kept text</textarea>" in answer.text  # what was typed is kept
    unknown = await admin.post(
        "/admin/proposals",
        data=form(
            token.group(1), closes_at=closes, electorate="https://elsewhere.test/actors/coop"
        ),
    )
    assert 'value="https://elsewhere.test/actors/coop"' not in unknown.text
    assert await stored(alpha.node) == []


async def test_members_are_refused_and_a_form_without_its_token_opens_nothing(
    network: Network,
) -> None:
    alpha, _ = await two_coops(network)
    member = await browser_of(network, alpha.node, "m0")
    assert (await member.get("/admin/proposals")).status_code == 403
    member_token = CSRF.search((await member.get("/me")).text)
    closes = local_minute(alpha.node.node.clock.now() + timedelta(days=2))
    refused = await member.post(
        "/admin/proposals",
        data=form(member_token.group(1) if member_token else "x", closes_at=closes),
    )
    assert refused.status_code == 403

    anonymous = httpx.AsyncClient(transport=network.router, base_url=alpha.node.base, headers=HTML)
    away = await anonymous.get("/admin/proposals")
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=/admin/proposals"

    admin = await browser_of(network, alpha.node, "ana")
    without = form("", closes_at=closes)
    del without["csrf"]
    assert (await admin.post("/admin/proposals", data=without)).status_code == 403
    forged = await admin.post("/admin/proposals", data=form("guess", closes_at=closes))
    assert forged.status_code == 403
    token = CSRF.search((await admin.get("/admin/proposals")).text)
    assert token is not None
    cross = await admin.post(
        "/admin/proposals",
        data=form(token.group(1), closes_at=closes),
        headers={"Origin": "https://evil.test"},
    )
    assert cross.status_code == 403
    assert await stored(alpha.node) == []


async def test_one_coop_one_vote_takes_the_weights_typed_for_each_coop(network: Network) -> None:
    alpha, _ = await two_coops(network)
    admin = await browser_of(network, alpha.node, "ana")
    page = await admin.get("/admin/proposals")
    token = CSRF.search(page.text)
    assert token is not None
    assert 'name="weight:https://alpha.test/actors/coop"' in page.text
    closes = local_minute(alpha.node.node.clock.now() + timedelta(days=2))
    fields = form(
        token.group(1),
        closes_at=closes,
        electorate="https://beta.test/actors/coop",
        counting_mode="coop",
        coop_tie="against",
    )
    fields["weight:https://alpha.test/actors/coop"] = "60%"
    fields["weight:https://beta.test/actors/coop"] = "30%"
    wrong = await admin.post("/admin/proposals", data=fields)
    assert wrong.status_code == 400
    assert "sum to 100 %" in wrong.text
    assert 'value="30%"' in wrong.text  # kept
    assert await stored(alpha.node) == []

    fields["weight:https://beta.test/actors/coop"] = "40%"
    sent = await admin.post("/admin/proposals", data=fields)
    assert sent.status_code == 303, sent.text
    [row] = [r for r in await stored(alpha.node) if r["mirror"] is None]
    assert sent.headers["location"] == f"/proposals/{row['key']}"
    assert row["counting_mode"] == "coop"
    assert json.loads(row["college_weights"]) == {
        "https://alpha.test/actors/coop": "3/5",
        "https://beta.test/actors/coop": "2/5",
    }
    assert json.loads(row["source"])["coop_tie"] == "against"
