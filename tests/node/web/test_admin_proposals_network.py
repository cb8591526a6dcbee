"""The admin's proposal form puts a proposal to every member co-op of a network the co-op
belongs to: the choice is offered for those networks only (not one it still waits to
join), and the proposal it opens names the network, its electorate the co-ops the
network lists. Real nodes: the applications, the roster and the invitations travel over
HTTP between them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from node.errors import Invalid
from node.follows import actions
from node.governance.reading import FollowedCoop
from node.networks import hosting, joining
from node.web.ui.admin_proposals import FLAGS, TEXT_FIELDS, proposal_data
from tests.node.networks.test_relaying import NETWORK, admitted
from tests.node.web.ui.test_admin_proposals import form, local_minute, stored
from tests.node.web.ui.test_proposal_pages import CSRF, browser_of
from tests.support.coops import Coop, add_member, make_coop
from tests.support.network import Network

AS2 = {"Accept": "application/activity+json"}
WAITING = "https://hub.test/actors/autre"


async def food_in_a_network(network: Network) -> tuple[Coop, Coop]:
    """Food and market, members of ``reseau``; food's application to ``autre`` waits."""
    hub = await network.add("hub.test")
    await hosting.create_network(hub.node, name="reseau", title="Plateformes en communs")
    await hosting.create_network(hub.node, name="autre", title="Un autre réseau")
    food = await make_coop(network, local=2, remote=0, domain="food.test")
    await add_member(food.node, username="ana", role="admin", joined_at="2026-01-01")
    market = await make_coop(network, local=1, remote=0, domain="market.test")
    await admitted(network, hub, (food.node, "food", "Drôme"), (market.node, "crafts", "Lyon"))
    await joining.join(food.node.node, "autre@hub.test", sector="food", region="Drôme")
    await network.settle()
    return food, market


async def test_the_form_offers_the_networks_the_co_op_belongs_to_and_puts_a_proposal_to_one(
    network: Network,
) -> None:
    food, market = await food_in_a_network(network)
    admin = await browser_of(network, food.node, "ana")
    page = await admin.get("/admin/proposals")
    assert page.status_code == 200
    # Food follows no co-op: the network is the only way to share, and the only one
    # offered is the network food belongs to.
    assert f'name="network" value="{NETWORK}"' in page.text
    assert "Every member co-op of Plateformes en communs" in page.text
    assert WAITING not in page.text
    assert "Un autre réseau" not in page.text
    assert 'name="electorate"' not in page.text
    assert 'name="counting_mode"' in page.text
    french = await admin.get("/admin/proposals?lang=fr")
    assert "Toutes les coopératives membres de Plateformes en communs" in french.text
    token = CSRF.search(page.text)
    assert token is not None
    closes = local_minute(food.node.node.clock.now() + timedelta(days=7))

    # A network it only applied to is refused, next to the field, and nothing is stored.
    refused = await admin.post(
        "/admin/proposals", data=form(token.group(1), closes_at=closes, network=WAITING)
    )
    assert refused.status_code == 400
    assert 'id="network-error"' in refused.text
    # In French, the language chosen above.
    assert "seule une coopérative membre d’un réseau" in refused.text
    assert await stored(food.node) == []

    sent = await admin.post(
        "/admin/proposals", data=form(token.group(1), closes_at=closes, network=NETWORK)
    )
    assert sent.status_code == 303, sent.text
    [row] = await stored(food.node)
    assert sent.headers["location"] == f"/proposals/{row['key']}"
    await network.settle()
    document = (await food.node.get(sent.headers["location"], headers=AS2)).json()
    assert document["network"] == NETWORK
    assert document["electorate"] == [
        "https://food.test/actors/coop",
        "https://market.test/actors/coop",
    ]
    # The other member is invited, as from a co-op it follows.
    listed = await market.node.request(
        "GET", "/api/v1/proposals/invitations", headers=market.node.auth
    )
    [invitation] = listed.json()["invitations"]
    assert invitation["host"] == "https://food.test/actors/coop"


async def test_beside_followed_co_ops_the_hint_says_a_network_excludes_them(
    network: Network,
) -> None:
    food, _market = await food_in_a_network(network)
    await actions.follow(food.node.node, "coop@market.test")
    await network.settle()
    admin = await browser_of(network, food.node, "ana")
    page = await admin.get("/admin/proposals")
    assert 'name="electorate"' in page.text
    assert "when no network is chosen above" in page.text
    assert "None checked: an internal proposal" not in page.text
    french = await admin.get("/admin/proposals?lang=fr")
    assert "quand aucun réseau n’est choisi plus haut" in french.text


def test_a_network_excludes_checked_co_ops_and_weights() -> None:
    """The network's members are not on the form: co-ops checked one by one, or weights
    given per co-op, with a network chosen are refused next to their field."""
    own = "https://food.test/actors/coop"
    market = FollowedCoop("https://market.test/actors/coop", "Market", "coop@market.test")
    sent = {
        **_sent_fields(),
        "network": NETWORK,
        "electorate": [market.uri],
    }
    with pytest.raises(Invalid) as both:
        proposal_data(sent, [market], own, [NETWORK])
    assert both.value.field == "network"
    weighed = {**sent, "electorate": [], "counting_mode": "coop", "weights": {own: "50%"}}
    with pytest.raises(Invalid) as weights:
        proposal_data(weighed, [market], own, [NETWORK])
    assert weights.value.field == "coop_weights"
    data = proposal_data({**weighed, "weights": {}}, [market], own, [NETWORK])
    assert data["network"] == NETWORK
    assert "electorate" not in data
    assert data["counting_mode"] == "coop"


def _sent_fields() -> dict[str, Any]:
    """What :func:`node.web.ui.admin_proposals._sent` reads from a plain form."""
    sent: dict[str, Any] = {key: "" for key in TEXT_FIELDS}
    sent.update({key: False for key in FLAGS})
    sent.update(
        title="Cotisation",
        options="For\nAgainst",
        choice="single",
        rule="majority",
        closes_at="2027-01-10T12:00",
        weights={},
    )
    return sent
