"""Local actors: the AS2 document for servers, an HTML page for people, and their
collections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from federation.mediatypes import wants_html
from node import documents
from node.services import follows, identity
from node.urls import Urls
from node.web.responses import activity, error, node_of
from node.web.templates import templates


async def actor(request: Request) -> Response:
    node = node_of(request)
    username = request.path_params["username"]
    try:
        found = await node.db.read(lambda conn: identity.get_actor(conn, username))
    except identity.ActorNotFound:
        return error(404, "not_found", f"no actor {username!r} here")
    if not wants_html(request.headers.get("accept")):
        return activity(documents.actor_document(node.urls, found))
    return templates().TemplateResponse(
        request,
        "actor.html",
        {
            "actor": found.actor,
            "handle": f"@{found.actor.username}@{node.settings.domain}",
            "actor_id": node.urls.actor(found.actor.username),
            "summary_html": documents.summary_html(found.actor.summary),
        },
        headers={"Vary": "Accept"},
    )


async def profile(request: Request) -> Response:
    """``/@username``: the address people share; content negotiation as for the actor."""
    node = node_of(request)
    username = request.path_params["username"]
    if not wants_html(request.headers.get("accept")):
        return RedirectResponse(node.urls.actor(username), status_code=302)
    return await actor(request)


PAGE_SIZE = 50


async def outbox(request: Request) -> Response:
    node = node_of(request)
    username = request.path_params["username"]
    if not await node.db.read(lambda conn: identity.actor_exists(conn, username)):
        return error(404, "not_found", f"no actor {username!r} here")
    # Public activities (offers, proposals) are listed here once they exist.
    return activity(documents.ordered_collection(node.urls.outbox(username), 0))


def _people(
    which: Callable[[Urls, str], str],
    count: Callable[[Connection, int], int],
    page_of: Callable[[Connection, int, int, int], list[str]],
) -> Callable[[Request], Awaitable[Response]]:
    """Followers or following: the size is public; the members are listed, a page at a
    time and newest first, when the node's settings say so."""

    async def endpoint(request: Request) -> Response:
        node = node_of(request)
        username = request.path_params["username"]
        found = await node.db.read(lambda conn: identity.find_actor_id(conn, username))
        if found is None:
            return error(404, "not_found", f"no actor {username!r} here")
        collection_id = which(node.urls, username)
        listed = node.settings.public_collections
        raw_page = request.query_params.get("page")
        if raw_page is None or not listed:
            total = await node.db.read(lambda conn: count(conn, found))
            return activity(documents.ordered_collection(collection_id, total, paged=listed))
        if not (raw_page.isascii() and raw_page.isdigit()) or not 1 <= int(raw_page) <= 1_000_000:
            return error(400, "bad_request", "page must be a whole number from 1")
        page = int(raw_page)
        offset = (page - 1) * PAGE_SIZE
        items = await node.db.read(lambda conn: page_of(conn, found, offset, PAGE_SIZE + 1))
        return activity(
            documents.collection_page(
                collection_id, page, items[:PAGE_SIZE], has_next=len(items) > PAGE_SIZE
            )
        )

    return endpoint


followers = _people(
    Urls.followers,
    lambda conn, actor_id: follows.count_followers(conn, actor_id=actor_id),
    lambda conn, actor_id, offset, limit: [
        f.follower
        for f in follows.list_followers(conn, actor_id=actor_id, offset=offset, limit=limit)
    ],
)
following = _people(
    Urls.following,
    lambda conn, actor_id: follows.count_following(conn, actor_id=actor_id),
    lambda conn, actor_id, offset, limit: [
        f.followed
        for f in follows.list_following(conn, actor_id=actor_id, offset=offset, limit=limit)
    ],
)
