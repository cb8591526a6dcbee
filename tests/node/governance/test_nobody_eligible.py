"""A proposal opened when no member may vote says so: in the API's answer, on its page,
and on the command line (tests/node/cli/test_cli_listings.py), so the admin fixes the
roster instead of waiting for a vote that cannot come."""

from __future__ import annotations

from datetime import timedelta

from node.governance.documents import NO_VOTERS
from tests.support.coops import make_coop
from tests.support.network import Network

HTML = {"Accept": "text/html"}
NOTICE = "Nobody may vote on this proposal: no member was eligible when it opened."


def tariff(network: Network) -> dict[str, object]:
    return {
        "title": "Adopt the 2027 delivery tariff",
        "options": ["For", "Against"],
        "rule": "majority",
        "closes_at": (network.clock.now() + timedelta(days=7)).isoformat(),
    }


async def test_an_opened_proposal_nobody_may_vote_on_is_flagged(network: Network) -> None:
    coop = await make_coop(network, local=0, remote=0)

    response = await coop.node.request(
        "POST", "/api/v1/proposals", json=tariff(network), headers=coop.node.auth
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["state"], created["eligible"]) == ("open", 0)
    assert created["warnings"] == [NO_VOTERS]
    page = await coop.node.get(f"/proposals/{created['id']}", headers=HTML)
    assert NOTICE in page.text
    french = await coop.node.get(
        f"/proposals/{created['id']}", headers={**HTML, "Accept-Language": "fr"}
    )
    assert "Personne ne peut voter sur cette proposition" in french.text
    listed = await coop.node.get(f"/api/v1/proposals/{created['id']}", headers=coop.node.auth)
    assert listed.json()["warnings"] == [NO_VOTERS]


async def test_a_proposal_with_voters_or_not_yet_open_has_no_warning(network: Network) -> None:
    coop = await make_coop(network, local=2, remote=0)
    created = await coop.propose("m0")
    assert (created["eligible"], created["warnings"]) == (2, [])
    page = await coop.node.get(f"/proposals/{created['id']}", headers=HTML)
    assert NOTICE not in page.text

    later = {**tariff(network), "opens_at": (network.clock.now() + timedelta(days=1)).isoformat()}
    later["closes_at"] = (network.clock.now() + timedelta(days=8)).isoformat()
    empty = await make_coop(network, local=0, remote=0, domain="beta.test")
    response = await empty.node.request(
        "POST", "/api/v1/proposals", json=later, headers=empty.node.auth
    )
    assert response.status_code == 201, response.text
    assert (response.json()["state"], response.json()["warnings"]) == ("scheduled", [])
