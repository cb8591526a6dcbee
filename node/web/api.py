"""The JSON API, for the admin now and for members' tokens later.

Every route names the role it needs; :func:`authenticate` checks the bearer token.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from federation.bodies import read_capped
from federation.errors import FederationError, MalformedInput
from federation.jsonlimits import parse_object
from federation.webfinger import WebFingerError
from node import __version__
from node.errors import BadRequest, Forbidden, Invalid, NotAuthenticated, TooLarge
from node.follows import actions
from node.offers import choices
from node.services import identity, tokens
from node.services.tokens import TokenInfo
from node.web.responses import error, node_of

MAX_JSON_BODY = 64 * 1024


async def authenticate(request: Request, role: str = "admin") -> TokenInfo:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("send Authorization: Bearer <token>")
    node = node_of(request)
    info = await node.db.read(lambda conn: tokens.find_token(conn, token.strip()))
    if info is None:
        raise NotAuthenticated("unknown or revoked token")
    if info.role not in tokens.ROLES or not tokens.allows(info.role, role):
        raise Forbidden(f"this route needs the {role} role")
    return info


async def json_body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadRequest("send a JSON body with Content-Type: application/json")
    # Read with a cap, so that a huge body is refused before it fills the memory.
    body = await read_capped(
        request.stream(),
        declared=request.headers.get("content-length"),
        limit=MAX_JSON_BODY,
        too_large=lambda what: TooLarge(f"the body {what}"),
    )
    # Parsed as a peer's JSON is: bounded nesting, and no text that could not be stored
    # (a NUL, an unpaired surrogate), so that such text is a clear 400, never a 500.
    try:
        return parse_object(body)
    except MalformedInput as exc:
        raise BadRequest(exc.reason) from exc


async def node_info(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    coop = await node.db.read(lambda conn: identity.get_actor(conn, node.settings.handle))
    return JSONResponse(
        {
            "version": __version__,
            "domain": node.settings.domain,
            "local": node.settings.local,
            "handle": f"{coop.actor.username}@{node.settings.domain}",
            "actor": node.urls.actor(coop.actor.username),
            "name": coop.actor.name,
            "summary": coop.actor.summary,
        }
    )


async def update_profile(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    data = await json_body(request)
    unknown = set(data) - {"name", "summary"}
    if unknown:
        raise Invalid(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    name = _text(data, "name", max_length=200, required=False)
    if name is not None and not name:
        raise Invalid("the name cannot be empty", field="name")
    summary = _text(data, "summary", max_length=5000, required=False)
    await actions.update_profile(node, name=name, summary=summary)
    return await node_info(request)


async def lookup(request: Request) -> Response:
    """Resolve ``acct:user@host`` (or ``user@host``, or an actor's URL) to its actor,
    through the node's one fetch path: signed as the co-op, as servers in authorized
    fetch mode require, guarded, and refused for a domain the admin blocked."""
    await authenticate(request)
    node = node_of(request)
    resource = request.query_params.get("resource", "").strip()
    if not resource:
        raise Invalid("give ?resource=acct:user@host", field="resource")
    try:
        actor = await node.peers.resolve(resource)
    except WebFingerError as exc:
        raise Invalid(str(exc), field="resource") from exc
    except FederationError as exc:
        return error(exc.status, "remote_error", exc.public)
    return JSONResponse(
        {key: actor.get(key) for key in ("id", "type", "preferredUsername", "name", "inbox", "url")}
    )


async def offer_categories(request: Request) -> Response:
    """The categories an offer may name, with their labels. Public, and needs no token:
    every coopnode ships the same list, and the tags are published anyway."""
    return JSONResponse({"categories": choices.category_list()})


async def offer_units(request: Request) -> Response:
    """The units an offer may be priced and counted in, with their labels (public)."""
    return JSONResponse({"units": choices.unit_list()})


def _text(data: dict[str, Any], key: str, *, max_length: int, required: bool) -> str | None:
    if key not in data:
        if required:
            raise Invalid(f"{key} is required", field=key)
        return None
    value = data[key]
    if not isinstance(value, str):
        raise Invalid(f"{key} must be a string", field=key)
    value = value.strip()
    if len(value) > max_length:
        raise Invalid(f"{key} is longer than {max_length} characters", field=key)
    return value
