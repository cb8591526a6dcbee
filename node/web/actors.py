"""Local actors: the AS2 document for servers, an HTML page for people, and their
collections."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from federation.mediatypes import prefers_activity_json
from node import documents
from node.services import identity
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
    if prefers_activity_json(request.headers.get("accept")):
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
    if prefers_activity_json(request.headers.get("accept")):
        return RedirectResponse(node.urls.actor(username), status_code=302)
    return await actor(request)


def _collection(which: Callable[[Urls, str], str]) -> Callable[[Request], object]:
    async def endpoint(request: Request) -> Response:
        node = node_of(request)
        username = request.path_params["username"]
        if not await node.db.read(lambda conn: identity.actor_exists(conn, username)):
            return error(404, "not_found", f"no actor {username!r} here")
        # Empty until following and publishing exist; the ids are final already.
        return activity(documents.ordered_collection(which(node.urls, username), 0))

    return endpoint


outbox = _collection(Urls.outbox)
followers = _collection(Urls.followers)
following = _collection(Urls.following)
