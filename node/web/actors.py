"""Local actors: the AS2 document for servers, an HTML page for people, and their
collections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from federation.jsonld import AS_CONTEXT_URL
from federation.mediatypes import wants_html
from node import documents
from node.follows import store as follows
from node.networks import documents as network_documents
from node.networks import reading as networks
from node.published import pages as published
from node.published import store as published_store
from node.services import identity
from node.storage.ids import parse_cursor
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
        hosted = await networks.network_actor(node, username)
        if hosted is not None:
            return activity(network_documents.network_actor(node.urls, *hosted))
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


def _cursor(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    return None if raw is None else parse_cursor(raw, name)


def _page_wanted(params: QueryParams) -> bool:
    """Whether a page is asked for, not the collection: ``page=true`` as Mastodon and
    GoToSocial write it, or ``page=1`` as this node wrote its first pages; a cursor alone
    asks for a page too. Any other ``page`` is refused rather than guessed at."""
    raw = params.get("page")
    if raw is not None and raw not in ("true", "1"):
        raise ValueError("page must be true")
    return raw is not None or "max_id" in params or "min_id" in params


async def outbox(request: Request) -> Response:
    """The actor's public activities (node.published says which), newest first, a
    page at a time; pages are cut by row id (``max_id``, ``min_id``) as Mastodon's are."""
    node = node_of(request)
    username = request.path_params["username"]
    actor_pk = await node.db.read(lambda conn: identity.find_actor_id(conn, username))
    if actor_pk is None:
        return error(404, "not_found", f"no actor {username!r} here")
    collection_id = node.urls.outbox(username)
    params = request.query_params
    try:
        wanted = _page_wanted(params)
        max_id, min_id = _cursor(params, "max_id"), _cursor(params, "min_id")
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    if max_id is not None and min_id is not None:
        return error(400, "bad_request", "give max_id or min_id, not both")
    if not wanted:
        total = await node.db.read(lambda conn: published_store.count(conn, node.urls, actor_pk))
        summary = documents.ordered_collection(collection_id, total, paged=True)
        summary["first"] = f"{collection_id}?page=true"
        summary["last"] = f"{collection_id}?min_id=0&page=true"
        return activity(summary)
    found = await node.db.read(
        lambda conn: published.page(conn, node, actor_pk, max_id=max_id, min_id=min_id)
    )
    if max_id is not None:
        page_id = f"{collection_id}?max_id={max_id}&page=true"
    elif min_id is not None:
        page_id = f"{collection_id}?min_id={min_id}&page=true"
    else:
        page_id = f"{collection_id}?page=true"
    document: dict[str, Any] = {
        "@context": found.context,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": found.items,
    }
    # As Mastodon: "prev" whenever the page has items, so that a reader can come back
    # for what is published after it; "next" only when older items exist.
    if found.newest is not None:
        document["prev"] = f"{collection_id}?min_id={found.newest}&page=true"
    if found.older:
        document["next"] = f"{collection_id}?max_id={found.oldest}&page=true"
    return activity(document)


def _people(
    side: str, which: Callable[[Urls, str], str]
) -> Callable[[Request], Awaitable[Response]]:
    """Followers or following (``side``): the size is public; the members are listed, a
    page at a time and newest first, when the node's settings say so. Pages are cut by
    row id (``max_id``), so that a follow accepted or undone during a walk shifts
    nothing."""

    async def endpoint(request: Request) -> Response:
        node = node_of(request)
        username = request.path_params["username"]
        found = await node.db.read(lambda conn: identity.find_actor_id(conn, username))
        if found is None:
            return error(404, "not_found", f"no actor {username!r} here")
        collection_id = which(node.urls, username)
        listed = node.settings.public_collections
        params = request.query_params
        try:
            wanted = _page_wanted(params)
            max_id = _cursor(params, "max_id")
        except ValueError as exc:
            return error(400, "bad_request", str(exc))
        if not wanted or not listed:
            total = await node.db.read(
                lambda conn: follows.count_accepted(conn, side, actor_id=found)
            )
            summary = documents.ordered_collection(collection_id, total, paged=listed)
            # Hidden, the collection gives its size only: an empty list beside a size
            # that is not zero would say the members are none.
            summary.pop("orderedItems", None)
            return activity(summary)
        rows = await node.db.read(
            lambda conn: follows.accepted_page(
                conn, side, actor_id=found, max_id=max_id, limit=PAGE_SIZE + 1
            )
        )
        page_id = f"{collection_id}?page=1"
        if max_id is not None:
            page_id = f"{collection_id}?max_id={max_id}&page=1"
        document: dict[str, Any] = {
            "@context": AS_CONTEXT_URL,
            "id": page_id,
            "type": "OrderedCollectionPage",
            "partOf": collection_id,
            "orderedItems": [uri for _, uri in rows[:PAGE_SIZE]],
        }
        if len(rows) > PAGE_SIZE:
            document["next"] = f"{collection_id}?max_id={rows[PAGE_SIZE - 1][0]}&page=1"
        return activity(document)

    return endpoint


followers = _people("followers", Urls.followers)
following = _people("following", Urls.following)
