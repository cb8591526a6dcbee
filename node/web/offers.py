"""Offers on the web: each at its id (a ``Proposal``, or a ``Tombstone`` once withdrawn),
its readable ``Note``, the co-op's ``offers`` collection, and the JSON API to publish
offers and search the catalogue.

An offer published with a member's token records that member as its author; changing
or withdrawing one of the co-op's offers is for its author or an admin (403 otherwise).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from federation.jsonld import embedding_coop_terms
from node import documents
from node.catalogue import search as catalogue
from node.members import store as members
from node.offers import categories, publish, reading, titles
from node.offers import store as offer_store
from node.offers.currencies import amount_text
from node.offers.validation import parse_offer_input
from node.offers.vocabulary import PROPOSAL_CONTEXT
from node.offers.wire import to_note
from node.services import tokens
from node.services.tokens import TokenInfo
from node.web.api import authenticate, json_body
from node.web.responses import activity, error, node_of
from node.web.ui.i18n import parse_accept_language

PAGE_SIZE = 100


async def offer_object(request: Request) -> Response:
    node = node_of(request)
    key = request.path_params["key"]
    uri = node.urls.offer(key)
    row = await node.db.read(lambda conn: offer_store.find_published(conn, uri))
    if row is None:
        return error(404, "not_found", f"no offer {key!r} here")
    if row.withdrawn:
        return activity(publish.tombstone(uri, "Proposal", row.updated), status=410)
    document = json.loads(row.document)
    document["@context"] = embedding_coop_terms(document.get("@context"))
    return activity(document)


async def offer_note(request: Request) -> Response:
    node = node_of(request)
    key = request.path_params["key"]
    uri = node.urls.offer(key)
    row = await node.db.read(lambda conn: offer_store.find_published(conn, uri))
    if row is None or row.source is None:
        return error(404, "not_found", f"no offer {key!r} here")
    note_id = node.urls.offer_note(key)
    if row.withdrawn:
        return activity(publish.tombstone(note_id, "Note", row.updated), status=410)
    proposal = json.loads(row.document)
    offer = parse_offer_input(json.loads(row.source), now=row.updated)
    handle = node.settings.handle
    note = to_note(
        offer,
        id=note_id,
        proposal_id=uri,
        actor=node.urls.actor(handle),
        published=publish.parse_time(proposal["published"]),
        updated=row.updated,
        followers=node.urls.followers(handle),
        hashtag_href=node.urls.tag,
    )
    return activity(note)


async def offers_collection(request: Request) -> Response:
    """The co-op's offers, newest first, a page of whole ``Proposal`` objects at a time
    (a newly following co-op imports them from the pages). Pages are cut by position
    (``?before=N``), so that offers published or withdrawn during a walk shift nothing."""
    node = node_of(request)
    username = request.path_params["username"]
    if username != node.settings.handle:
        return error(404, "not_found", f"no offers of {username!r} here")
    collection_id = node.urls.offers(username)
    actor = node.urls.actor(username)
    params = request.query_params
    if "page" not in params and "before" not in params:
        total = await node.db.read(lambda conn: offer_store.count_listed(conn, actor))
        document = documents.ordered_collection(collection_id, total, paged=True)
        document["first"] = f"{collection_id}?page=true"
        return activity(document)
    before = params.get("before")
    # ASCII digits only ("²" is a digit to str.isdigit, not to int), and no more than
    # a row id can hold.
    if before is not None and not (before.isascii() and before.isdigit() and len(before) <= 18):
        return error(400, "bad_request", "before must be a whole number")
    bound = None if before is None else int(before)
    rows = await node.db.read(
        lambda conn: offer_store.listed_page(conn, actor, before=bound, limit=PAGE_SIZE + 1)
    )
    items = []
    for _, stored in rows[:PAGE_SIZE]:
        item = json.loads(stored)
        item.pop("@context", None)
        items.append(item)
    page_id = f"{collection_id}?before={before}" if before else f"{collection_id}?page=true"
    page: dict[str, Any] = {
        # The items' own context: without it their ValueFlows and co-op terms mean nothing.
        "@context": PROPOSAL_CONTEXT,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": items,
    }
    if len(rows) > PAGE_SIZE:
        page["next"] = f"{collection_id}?before={rows[PAGE_SIZE - 1][0]}"
    return activity(page)


# --- the JSON API ---------------------------------------------------------------------


async def _member_id(request: Request, info: TokenInfo) -> int | None:
    """The member a token acts for (``None``: an admin's or the node's own token)."""
    node = node_of(request)
    return await node.db.read(lambda conn: members.member_of_actor(conn, info.actor_id))


async def _changer(request: Request) -> publish.Changer:
    info = await authenticate(request, role="member")
    return publish.Changer(
        member_id=await _member_id(request, info), admin=tokens.allows(info.role, "admin")
    )


async def create(request: Request) -> Response:
    info = await authenticate(request, role="member")
    node = node_of(request)
    author_id = await _member_id(request, info)
    result = await publish.create_offer(node, await json_body(request), author_id=author_id)
    return JSONResponse(result, status_code=201)


async def update(request: Request) -> Response:
    """Change one of the co-op's offers: its author or an admin only."""
    by = await _changer(request)
    node = node_of(request)
    data = await json_body(request)
    result = await publish.update_offer(node, request.path_params["key"], data, by=by)
    return JSONResponse(result)


async def withdraw(request: Request) -> Response:
    """Withdraw one of the co-op's offers: its author or an admin only."""
    by = await _changer(request)
    node = node_of(request)
    await publish.withdraw_offer(node, request.path_params["key"], by=by)
    return Response(status_code=204)


async def show(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    key = request.path_params["key"]
    uri = node.urls.offer(key)
    row = await node.db.read(lambda conn: offer_store.find_published(conn, uri))
    if row is None:
        return error(404, "not_found", f"no offer {key!r} here")
    return JSONResponse(
        {
            "id": key,
            "uri": uri,
            "offer": json.loads(row.source) if row.source else None,
            "proposal": json.loads(row.document),
        }
    )


async def search(request: Request) -> Response:
    await authenticate(request)
    node = node_of(request)
    params: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    query = catalogue.parse_query(params)
    now = node.clock.now()
    read = await node.db.read(lambda conn: reading.read_search(conn, query, now=now))
    # Each title in the reader's language where the offer has it, as the pages choose.
    preferred = parse_accept_language(request.headers.get("accept-language"))
    items = []
    for hit in read.page.hits:
        linked = read.linked.get(hit.uri)
        title, language = (
            (hit.title, None)
            if linked is None or not preferred
            else titles.title_of(linked.document, hit.title, preferred)
        )
        items.append(hit_json(hit, title=title, language=language))
    return JSONResponse({"items": items, "next": read.page.next_cursor})


def hit_json(hit: catalogue.Hit, *, title: str, language: str | None) -> dict[str, Any]:
    """A hit as the API shows it: ``title`` as chosen for the reader (``language``, its
    tag, where the offer names it), the price with its currency's minor units."""
    return {
        "uri": hit.uri,
        "coop": hit.actor,
        "title": title,
        "title_language": language,
        "status": hit.status,
        "price": None
        if hit.price is None
        else {
            "amount": amount_text(hit.price, hit.currency),
            "currency": hit.currency,
            "unit": hit.unit,
        },
        "place": hit.place,
        "distance_km": None if hit.distance_km is None else round(hit.distance_km, 3),
        "published": hit.published.isoformat(),
        "end_time": None if hit.end_time is None else hit.end_time.isoformat(),
    }


async def tag(request: Request) -> Response:
    """``/tags/SLUG``, where the hashtags of our offers link: the co-op's offers in that
    category, newest first, as a collection of their ids."""
    node = node_of(request)
    slug = request.path_params["slug"]
    if categories.get(slug) is None:
        return error(404, "not_found", f"no category {slug!r}")
    uris = await node.db.read(lambda conn: offer_store.tagged(conn, slug, limit=PAGE_SIZE))
    return activity(
        {
            "@context": documents.ACTOR_CONTEXT[0],
            "id": node.urls.tag(slug),
            "type": "OrderedCollection",
            "name": f"#{slug}",
            "totalItems": len(uris),
            "orderedItems": uris,
        }
    )
