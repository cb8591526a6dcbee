"""The networks API, for the node's admin: the networks hosted here and the co-op's
memberships of networks, here or elsewhere.

- ``GET /api/v1/networks`` (hosted, and the co-op's memberships);
  ``POST /api/v1/networks`` ``{name, title, summary, charter, admission}``
- ``GET /api/v1/networks/{name}``; ``PATCH`` ``{charter, admission}``
- ``GET /api/v1/networks/{name}/members?state=member|pending|refused|removed|left``
- ``POST /api/v1/networks/{name}/members/{approve|refuse|remove}`` ``{actor, reason}``
- ``GET /api/v1/memberships`` (``?network=URL``: one, with its roster);
  ``POST`` ``{network, sector, region}`` (apply); ``DELETE ?network=URL`` (leave)
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from federation.errors import FederationError
from federation.webfinger import WebFingerError
from node.errors import Conflict, Invalid, NotFound
from node.networks import documents as views
from node.networks import hosting, joining, reading
from node.networks.model import State
from node.runtime import Node
from node.web.api import authenticate, json_body
from node.web.responses import error, node_of

CREATE_FIELDS = frozenset({"name", "title", "summary", "charter", "admission"})
CHANGE_FIELDS = frozenset({"charter", "admission"})
DECISION_FIELDS = frozenset({"actor", "reason"})
JOIN_FIELDS = frozenset({"network", "sector", "region"})


async def network_with_counts(node: Node, name: str) -> dict[str, Any]:
    """A hosted network with how many members, waiting applications and relayed offers
    it has, and its members' sectors and regions."""
    found = await reading.directory(node, name, size=1)
    view = views.network_view(node.urls, found.network)
    view["counts"] = {
        "members": found.members_in_all,
        "waiting": found.waiting,
        "offers": found.offers_in_all,
    }
    view["sectors"] = [{"sector": s, "members": n} for s, n in found.sectors]
    view["regions"] = [{"region": r, "members": n} for r, n in found.regions]
    return view


def _only(data: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0])


def _url(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} is required (text)", field=field)
    return value.strip()


async def _hosted_name(request: Request) -> str:
    """The network named in the path, refused at once when none is hosted here."""
    node = node_of(request)
    name = str(request.path_params["name"])
    if await reading.find_network(node, name) is None:
        raise NotFound(f"no network {name!r} is hosted here")
    return name


# --- hosted networks ------------------------------------------------------------------------


async def list_networks(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    hosted = [await network_with_counts(node, n.name) for n in await reading.hosted(node)]
    memberships = [views.membership_view(m) for m in await reading.memberships(node)]
    return JSONResponse({"hosted": hosted, "memberships": memberships})


async def create(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    data = await json_body(request)
    _only(data, CREATE_FIELDS)
    if "name" not in data:
        raise Invalid("name is required", field="name")
    network = await hosting.create_network(
        node,
        name=data["name"],
        title=data.get("title"),
        summary=data.get("summary"),
        charter=data.get("charter"),
        admission=data.get("admission", "admin"),
    )
    return JSONResponse(await network_with_counts(node, network.name), status_code=201)


async def show(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    name = await _hosted_name(request)
    return JSONResponse(await network_with_counts(node, name))


async def change(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    data = await json_body(request)
    _only(data, CHANGE_FIELDS)
    name = await _hosted_name(request)
    await hosting.change_network(
        node, name, charter=data.get("charter"), admission=data.get("admission")
    )
    return JSONResponse(await network_with_counts(node, name))


async def members(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    raw = request.query_params.get("state", State.MEMBER.value)
    try:
        state = State(raw)
    except ValueError:
        known = ", ".join(s.value for s in State)
        raise Invalid(f"state is one of {known}", field="state") from None
    name = await _hosted_name(request)
    found = await reading.applications(node, name, states=(state,))
    return JSONResponse(
        {
            "network": node.urls.actor(name),
            "state": state.value,
            "members": [views.member_view(m) for m in found],
        }
    )


async def decide(request: Request) -> Response:
    """An admin's decision on a co-op: ``approve`` or ``refuse`` its application (with
    a reason for the co-op), or ``remove`` a member (a reason is required)."""
    await authenticate(request)
    node = node_of(request)
    decision = request.path_params["decision"]
    if decision not in ("approve", "refuse", "remove"):
        raise NotFound(f"a network's admin may approve, refuse or remove, not {decision}")
    data = await json_body(request)
    _only(data, DECISION_FIELDS)
    actor = _url(data.get("actor"), "actor")
    name = await _hosted_name(request)
    if decision == "approve":
        member = await hosting.approve(node, name, actor)
    elif decision == "refuse":
        member = await hosting.refuse(node, name, actor, reason=data.get("reason"))
    else:
        member = await hosting.remove(node, name, actor, reason=data.get("reason"))
    return JSONResponse(views.member_view(member))


# --- the co-op's memberships --------------------------------------------------------------


async def list_memberships(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    network = request.query_params.get("network")
    if network is None:
        return JSONResponse(
            {"memberships": [views.membership_view(m) for m in await reading.memberships(node)]}
        )
    found, roster = await reading.membership(node, _url(network, "network"))
    return JSONResponse(
        views.membership_view(found) | {"roster": [views.roster_view(e) for e in roster]}
    )


async def join(request: Request) -> Response:
    """Apply to a network (a handle or its actor's URL): answered 202, the membership
    pending until the network's Accept or Reject arrives."""
    await authenticate(request)
    node = node_of(request)
    data = await json_body(request)
    _only(data, JOIN_FIELDS)
    target = _url(data.get("network"), "network")
    try:
        result = await joining.join(
            node, target, sector=data.get("sector"), region=data.get("region")
        )
    except WebFingerError as exc:
        raise Invalid(str(exc), field="network") from exc
    except FederationError as exc:
        return error(exc.status, "remote_error", exc.public)
    found, _ = await reading.membership(node, result.network)
    view = views.membership_view(found) | {"sent": result.sent}
    return JSONResponse(view, status_code=202 if result.sent else 200)


async def leave(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    network = _url(request.query_params.get("network"), "network")
    found, _ = await reading.membership(node, network)
    if found.state not in (State.MEMBER, State.PENDING):
        raise Conflict(f"this co-op neither belongs nor applied to {network} ({found.state})")
    left = await joining.leave(node, network)
    return JSONResponse(views.membership_view(left))


ROUTES: list[Route] = [
    Route("/api/v1/networks", list_networks, methods=["GET"]),
    Route("/api/v1/networks", create, methods=["POST"]),
    Route("/api/v1/networks/{name}", show, methods=["GET"]),
    Route("/api/v1/networks/{name}", change, methods=["PATCH"]),
    Route("/api/v1/networks/{name}/members", members, methods=["GET"]),
    Route("/api/v1/networks/{name}/members/{decision}", decide, methods=["POST"]),
    Route("/api/v1/memberships", list_memberships, methods=["GET"]),
    Route("/api/v1/memberships", join, methods=["POST"]),
    Route("/api/v1/memberships", leave, methods=["DELETE"]),
]
