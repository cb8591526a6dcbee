"""Members through the JSON API (the admin records them; members log in), and the
roster as the co-op's ``members`` collection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from federation.jsonld import AS_CONTEXT_URL, coop_context
from node import documents
from node.errors import Invalid, NotFound
from node.members import actions
from node.members import store as service
from node.networks import documents as network_documents
from node.networks import reading as networks
from node.web.api import authenticate, json_body
from node.web.ratelimit import LoginLimiter
from node.web.responses import activity, error, node_of
from node.web.signed import signed_by

if TYPE_CHECKING:
    pass

PAGE_SIZE = 50


# --- the JSON API ------------------------------------------------------------------


async def list_members(request: Request) -> Response:
    await authenticate(request, role="observer")
    node = node_of(request)
    everyone = request.query_params.get("all") == "true"
    found = await node.db.read(lambda conn: service.list_members(conn, current_only=not everyone))
    return JSONResponse({"items": [m.to_json() for m in found]})


async def create(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    member, actor = await actions.add_member(node, await json_body(request))
    body = member.to_json()
    if actor:
        body["remote_actor"] = actor
    return JSONResponse(body, status_code=201)


async def show(request: Request) -> Response:
    await authenticate(request, role="observer")
    node = node_of(request)
    member_id = _member_id(request)
    member = await node.db.read(lambda conn: service.get_member(conn, member_id))
    return JSONResponse(member.to_json())


async def change(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    member_id = _member_id(request)
    data = await json_body(request)
    unknown = set(data) - {"role", "college"}
    if unknown:
        raise Invalid(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    role, college = actions.string_field(data, "role"), actions.string_field(data, "college")
    now = node.clock.now()
    member = await node.db.write(
        lambda conn: service.change(conn, member_id, now=now, role=role, college=college)
    )
    return JSONResponse(member.to_json())


async def confirm(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    member_id = _member_id(request)
    member = await node.db.write(lambda conn: service.confirm(conn, member_id))
    return JSONResponse(member.to_json())


async def remove(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    member_id = _member_id(request)
    now = node.clock.now()
    member = await node.db.write(lambda conn: service.remove(conn, member_id, now=now))
    return JSONResponse(member.to_json())


async def create_token(request: Request) -> Response:
    """A token acting as the member, with the member's role (shown once)."""
    await authenticate(request)
    node = node_of(request)
    member_id = _member_id(request)
    now = node.clock.now()

    def unit(conn: Any) -> str:
        member = service.get_member(conn, member_id)
        return service.issue_token(conn, member, name="issued by the admin", now=now)

    token = await node.db.write(unit)
    return JSONResponse({"token": token}, status_code=201)


def _login_limiter(request: Request) -> LoginLimiter:
    """The app's one limiter, made on first use (with the node's clock)."""
    state = request.app.state
    limiter = getattr(state, "login_limiter", None)
    if not isinstance(limiter, LoginLimiter):
        limiter = state.login_limiter = LoginLimiter(node_of(request).clock)
    return limiter


async def check_password(request: Request, username: str, password: str) -> service.Member:
    """The current local member ``username`` if ``password`` is theirs: for the API's
    login and the login page alike. Attempts are counted per name and per address
    before the password is checked (:mod:`node.web.ratelimit`); raises
    :class:`TooManyRequests` while either must wait, :class:`Invalid` otherwise."""
    node = node_of(request)
    limiter = _login_limiter(request)
    address = request.client.host if request.client is not None else ""
    counted_at = limiter.attempt(username, address)
    found = await node.db.read(lambda conn: service.login_candidate(conn, username))
    member = await run_in_threadpool(service.check_login, found, password)
    limiter.succeeded(username, address, counted_at)
    return member


async def login(request: Request) -> Response:
    """A local member's username and password, for a token with the member's role."""
    node = node_of(request)
    data = await json_body(request)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not username:
        raise Invalid("username is required", field="username")
    if not isinstance(password, str):
        raise Invalid("password is required", field="password")
    member = await check_password(request, username, password)
    now = node.clock.now()
    token = await node.db.write(
        lambda conn: service.issue_token(conn, member, name="login", now=now)
    )
    return JSONResponse({"token": token, "member": member.to_json()}, status_code=201)


async def colleges(request: Request) -> Response:
    node = node_of(request)
    if request.method == "PUT":
        await authenticate(request)
        await actions.set_colleges(node, await json_body(request))
    else:
        await authenticate(request, role="observer")
    found = await node.db.read(service.list_colleges)
    return JSONResponse({"colleges": [c.to_json() for c in found]})


# --- the roster collection ---------------------------------------------------------


async def roster(request: Request) -> Response:
    """``/actors/<co-op>/members``: its size is public; its items are listed when the
    ``public_roster`` setting says so."""
    node = node_of(request)
    username = request.path_params["username"]
    if username != node.settings.handle:
        return await network_members(request, username)
    collection_id = node.urls.members(username)
    listed = node.settings.public_roster or await signed_by(
        request, node, node.settings.roster_partners
    )
    raw_page = request.query_params.get("page")
    if raw_page is None or not listed:
        total = await node.db.read(service.roster_count)
        return activity(documents.ordered_collection(collection_id, total, paged=listed))
    if not (raw_page.isascii() and raw_page.isdigit()) or not 1 <= int(raw_page) <= 1_000_000:
        return error(400, "bad_request", "page must be a whole number from 1")
    page = int(raw_page)
    offset = (page - 1) * PAGE_SIZE
    rows = await node.db.read(
        lambda conn: service.roster_page(conn, offset=offset, limit=PAGE_SIZE + 1)
    )
    document = documents.collection_page(
        collection_id,
        page,
        [roster_item(m) for m in rows[:PAGE_SIZE]],
        has_next=len(rows) > PAGE_SIZE,
    )
    document["@context"] = [AS_CONTEXT_URL, coop_context()]
    return activity(document)


async def network_members(request: Request, name: str) -> Response:
    """A hosted network's members collection: public, each co-op with its sector,
    region and date of admission."""
    node = node_of(request)
    try:
        if request.query_params.get("page") is None:
            network, total = await networks.count_members(node, name)
            return activity(network_documents.members_collection(node.urls, network, total))
    except NotFound:
        return error(404, "not_found", f"{name!r} has no members collection here")
    raw_page = request.query_params["page"]
    if not (raw_page.isascii() and raw_page.isdigit()) or not 1 <= int(raw_page) <= 1_000_000:
        return error(400, "bad_request", "page must be a whole number from 1")
    page = int(raw_page)
    try:
        network, found = await networks.members_page(
            node, name, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
        )
    except NotFound:
        return error(404, "not_found", f"{name!r} has no members collection here")
    return activity(
        network_documents.members_page(
            node.urls, network, page, found[:PAGE_SIZE], has_next=len(found) > PAGE_SIZE
        )
    )


def roster_item(member: service.Member) -> dict[str, Any]:
    """A roster entry: the member's actor, since when, their role and college."""
    item: dict[str, Any] = {
        "actor": member.actor_uri,
        "memberSince": member.joined_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "role": member.role,
    }
    if member.college is not None:
        item["college"] = member.college
    return item


# --- reading requests --------------------------------------------------------------


def _member_id(request: Request) -> int:
    raw = request.path_params["member_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²"; beyond any row id
        raise Invalid("a member is named by its number", field="member_id")
    return int(raw)
