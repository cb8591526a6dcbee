"""The networks API across real nodes: the hub's admin creates a network and decides on
the co-ops that apply through their own node's API (approve, refuse with a reason,
remove with a reason); a member leaves; every refusal has its status and names the
field it is about."""

from __future__ import annotations

from typing import Any

import httpx

from node.web import networks_api
from tests.support.coops import add_member, token_for
from tests.support.network import Network, TestNode

NETWORK = "https://hub.test/actors/reseau"
FOOD = "https://food.test/actors/coop"
MARKET = "https://market.test/actors/coop"
FARM = "https://farm.test/actors/coop"


async def with_routes(network: Network, domain: str) -> TestNode:
    """A node whose app serves the networks API (added here if the app has not yet)."""
    node = await network.add(domain)
    routes = node.app.router.routes
    if not any(getattr(r, "endpoint", None) is networks_api.create for r in routes):
        routes[:0] = networks_api.ROUTES
    return node


async def call(node: TestNode, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return await node.request(method, path, headers=node.auth, **kwargs)


async def ok(
    node: TestNode, method: str, path: str, status: int = 200, **kwargs: Any
) -> dict[str, Any]:
    response = await call(node, method, path, **kwargs)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def refused(
    node: TestNode, method: str, path: str, status: int, field: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    response = await call(node, method, path, **kwargs)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body.get("field") == field, body
    assert body["reason"]
    return body


async def create_reseau(hub: TestNode) -> dict[str, Any]:
    return await ok(
        hub,
        "POST",
        "/api/v1/networks",
        201,
        json={
            "name": "reseau",
            "title": "Plateformes en communs",
            "summary": "Les plateformes coopératives de l'Ouest.",
            "charter": "Entraide.\nPrix justes.",
        },
    )


async def apply(network: Network, coop: TestNode, sector: str, region: str) -> dict[str, Any]:
    body = {"network": "reseau@hub.test", "sector": sector, "region": region}
    applied = await ok(coop, "POST", "/api/v1/memberships", 202, json=body)
    await network.settle()
    return applied


async def membership(coop: TestNode) -> dict[str, Any]:
    return await ok(coop, "GET", "/api/v1/memberships", params={"network": NETWORK})


async def decide(
    network: Network, hub: TestNode, decision: str, actor: str, reason: str | None = None
) -> dict[str, Any]:
    body = {"actor": actor} if reason is None else {"actor": actor, "reason": reason}
    decided = await ok(hub, "POST", f"/api/v1/networks/reseau/members/{decision}", json=body)
    await network.settle()
    return decided


async def members(hub: TestNode, state: str = "member") -> list[tuple[str, str]]:
    found = await ok(hub, "GET", "/api/v1/networks/reseau/members", params={"state": state})
    return [(m["actor"], m["reason"]) for m in found["members"]]


async def test_create_join_approve_refuse_remove_and_leave(network: Network) -> None:
    hub = await with_routes(network, "hub.test")
    food = await with_routes(network, "food.test")
    market = await with_routes(network, "market.test")
    farm = await with_routes(network, "farm.test")

    created = await create_reseau(hub)
    assert (created["id"], created["members"]) == (NETWORK, f"{NETWORK}/members")
    assert (created["title"], created["admission"]) == ("Plateformes en communs", "admin")
    assert created["counts"] == {"members": 0, "waiting": 0, "offers": 0}
    changed = await ok(
        hub, "PATCH", "/api/v1/networks/reseau", json={"charter": "Entraide.", "admission": "vote"}
    )
    assert (changed["charter"], changed["admission"]) == ("Entraide.", "vote")
    await ok(hub, "PATCH", "/api/v1/networks/reseau", json={"admission": "admin"})

    # Food applies from its own node's API and waits.
    applied = await apply(network, food, "food", "Bretagne")
    assert (applied["network"], applied["state"], applied["sent"]) == (NETWORK, "pending", True)
    again = await ok(food, "POST", "/api/v1/memberships", json={"network": NETWORK})
    assert (again["state"], again["sent"]) == ("pending", False)
    waiting = await ok(hub, "GET", "/api/v1/networks/reseau/members", params={"state": "pending"})
    assert [(m["actor"], m["sector"], m["region"]) for m in waiting["members"]] == [
        (FOOD, "food", "Bretagne")
    ]
    assert (await ok(hub, "GET", "/api/v1/networks/reseau"))["counts"]["waiting"] == 1

    approved = await decide(network, hub, "approve", FOOD)
    assert approved["state"] == "member"
    assert approved["memberSince"] is not None
    assert (await membership(food))["state"] == "member"

    # Market is refused, and learns why.
    await apply(network, market, "crafts", "Occitanie")
    refusal = await decide(network, hub, "refuse", MARKET, "Hors de notre région.")
    assert (refusal["state"], refusal["reason"]) == ("refused", "Hors de notre région.")
    mine = await membership(market)
    assert (mine["state"], mine["reason"]) == ("refused", "Hors de notre région.")

    # Farm is admitted: food's roster learns of it; then food is removed, with the reason.
    await apply(network, farm, "food", "Bretagne")
    await decide(network, hub, "approve", FARM)
    assert [e["actor"] for e in (await membership(food))["roster"]] == [FARM]
    removal = await decide(network, hub, "remove", FOOD, "Statuts non respectés.")
    assert (removal["state"], removal["reason"]) == ("removed", "Statuts non respectés.")
    mine = await membership(food)
    assert (mine["state"], mine["reason"], mine["roster"]) == (
        "removed",
        "Statuts non respectés.",
        [],
    )
    assert await members(hub) == [(FARM, "")]
    assert await members(hub, "refused") == [(MARKET, "Hors de notre région.")]

    # Farm leaves.
    left = await ok(farm, "DELETE", "/api/v1/memberships", params={"network": NETWORK})
    assert left["state"] == "left"
    await network.settle()
    assert await members(hub) == []
    assert await members(hub, "left") == [(FARM, "")]

    listed = await ok(hub, "GET", "/api/v1/networks")
    assert [(n["name"], n["counts"]["members"]) for n in listed["hosted"]] == [("reseau", 0)]
    assert listed["memberships"] == []
    listed = await ok(farm, "GET", "/api/v1/networks")
    assert listed["hosted"] == []
    assert [(m["network"], m["state"]) for m in listed["memberships"]] == [(NETWORK, "left")]
    mine_all = await ok(market, "GET", "/api/v1/memberships")
    assert [(m["network"], m["state"]) for m in mine_all["memberships"]] == [(NETWORK, "refused")]


async def test_every_refusal_has_its_status_and_field(network: Network) -> None:
    hub = await with_routes(network, "hub.test")
    food = await with_routes(network, "food.test")
    await create_reseau(hub)

    # No token, and a member's token: refused as on every admin route.
    assert (await hub.get("/api/v1/networks")).status_code == 401
    paula = await add_member(hub, username="paula", joined_at="2026-01-01")
    member = await token_for(hub, paula["id"])
    for method, path in (
        ("GET", "/api/v1/networks"),
        ("POST", "/api/v1/networks"),
        ("GET", "/api/v1/networks/reseau"),
        ("POST", "/api/v1/networks/reseau/members/approve"),
        ("GET", "/api/v1/memberships"),
        ("DELETE", "/api/v1/memberships"),
    ):
        response = await hub.request(method, path, headers=member, json={})
        assert response.status_code == 403, (method, path, response.text)

    # Creating.
    create = ("POST", "/api/v1/networks")
    await refused(hub, *create, 422, "name", json={"title": "Sans nom"})
    await refused(hub, *create, 422, "name", json={"name": "Pas un nom"})
    await refused(hub, *create, 422, "admission", json={"name": "autre", "admission": "lot"})
    await refused(hub, *create, 422, "colour", json={"name": "autre", "colour": "red"})
    await refused(hub, *create, 422, "charter", json={"name": "autre", "charter": 3})
    await refused(hub, *create, 409, json={"name": "reseau"})
    await refused(hub, *create, 409, json={"name": "coop"})  # the co-op's own actor
    response = await hub.request("POST", "/api/v1/networks", headers=hub.auth, content=b"name")
    assert response.status_code == 400

    # A hosted network, changed, listed.
    await refused(hub, "GET", "/api/v1/networks/inconnu", 404)
    await refused(hub, "PATCH", "/api/v1/networks/inconnu", 404, json={"admission": "vote"})
    await refused(hub, "PATCH", "/api/v1/networks/reseau", 422, "admission", json={"admission": 1})
    await refused(hub, "PATCH", "/api/v1/networks/reseau", 422, "name", json={"name": "autre"})
    members_path = "/api/v1/networks/reseau/members"
    await refused(hub, "GET", members_path, 422, "state", params={"state": "friends"})
    await refused(hub, "GET", "/api/v1/networks/inconnu/members", 404)

    # Decisions.
    await refused(hub, "POST", f"{members_path}/promote", 404, json={"actor": FOOD})
    await refused(hub, "POST", f"{members_path}/approve", 422, "actor", json={})
    await refused(hub, "POST", f"{members_path}/approve", 422, "actor", json={"actor": 7})
    await refused(hub, "POST", f"{members_path}/approve", 404, json={"actor": FOOD})
    await refused(
        hub, "POST", "/api/v1/networks/inconnu/members/approve", 404, json={"actor": FOOD}
    )
    await apply(network, food, "food", "Bretagne")
    await refused(hub, "POST", f"{members_path}/remove", 409, json={"actor": FOOD, "reason": "x"})
    await refused(
        hub, "POST", f"{members_path}/refuse", 422, "reason", json={"actor": FOOD, "reason": []}
    )
    await decide(network, hub, "approve", FOOD)
    await refused(hub, "POST", f"{members_path}/approve", 409, json={"actor": FOOD})
    await refused(hub, "POST", f"{members_path}/refuse", 409, json={"actor": FOOD})
    await refused(hub, "POST", f"{members_path}/remove", 422, "reason", json={"actor": FOOD})
    await refused(
        hub,
        "POST",
        f"{members_path}/remove",
        422,
        "reason",
        json={"actor": FOOD, "reason": "x" * 501},
    )

    # The co-op's side.
    join = ("POST", "/api/v1/memberships")
    await refused(food, *join, 422, "network", json={})
    await refused(food, *join, 422, "network", json={"network": ""})
    await refused(food, *join, 422, "network", json={"network": "paula@hub.test"})  # a person
    await refused(food, *join, 409, json={"network": "coop@food.test"})  # itself
    await refused(food, *join, 422, "sector", json={"network": NETWORK, "sector": "x" * 65})
    await refused(food, *join, 422, "tags", json={"network": NETWORK, "tags": []})
    unreachable = await refused(food, *join, 502, json={"network": "reseau@nowhere.test"})
    assert unreachable["error"] == "remote_error"
    await refused(food, "GET", "/api/v1/memberships", 404, params={"network": MARKET})
    await refused(food, "DELETE", "/api/v1/memberships", 422, "network")
    await refused(food, "DELETE", "/api/v1/memberships", 404, params={"network": MARKET})
    await ok(food, "DELETE", "/api/v1/memberships", params={"network": NETWORK})
    await refused(food, "DELETE", "/api/v1/memberships", 409, params={"network": NETWORK})
