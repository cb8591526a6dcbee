"""Proposals on the web: each at its id (a ``Question``), its outcome reply, and once
closed its electorate and ballots collections for anyone to audit; the co-op's
``proposals`` collection; and the JSON API to open proposals and vote."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node import documents
from node.governance import ballots, proposals, reading, sharing
from node.governance.documents import CONTEXT, ballot_item, outcome_note, subtotals_id, voters_id
from node.governance.documents import question as question_document
from node.governance.store.rows import Mode, State, StoredProposal
from node.runtime import Node
from node.web.api import authenticate, json_body
from node.web.responses import activity, error, node_of

PAGE_SIZE = 1000


async def question(request: Request) -> Response:
    node = node_of(request)
    p = await reading.proposal(node, request.path_params["key"])
    return activity(question_document(node.urls, node.settings.handle, p))


async def outcome(request: Request) -> Response:
    node = node_of(request)
    p = await reading.proposal(node, request.path_params["key"])
    if p.state is not State.CLOSED:
        return error(404, "not_found", "the vote is not closed yet")
    return activity(outcome_note(node.urls, node.settings.handle, p))


def _page_number(request: Request) -> int | None:
    raw = request.query_params.get("page")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1_000_000:
        raise ValueError("page is a whole number from 1")
    return int(raw)


def _collection(collection_id: str, total: int) -> dict[str, Any]:
    document = documents.ordered_collection(collection_id, total, paged=True)
    document["@context"] = CONTEXT
    return document


def _page(collection_id: str, page: int, items: list[Any], has_next: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "id": f"{collection_id}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": items,
    }
    if has_next:
        document["next"] = f"{collection_id}?page={page + 1}"
    return document


async def _closed_open_ballot(request: Request) -> tuple[Node, StoredProposal] | Response:
    node = node_of(request)
    p = await reading.proposal(node, request.path_params["key"])
    if p.state is not State.CLOSED:
        return error(404, "not_found", "ballots are published at the close")
    if not p.open_ballot:
        return error(404, "not_found", "this proposal was a secret ballot")
    return node, p


async def electorate(request: Request) -> Response:
    found = await _closed_open_ballot(request)
    if isinstance(found, Response):
        return found
    node, p = found
    collection_id = node.urls.proposal_electorate(p.key)
    try:
        page = _page_number(request)
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    if page is None:
        return activity(_collection(collection_id, p.eligible or 0))
    rows = await reading.electorate_page(node, p, page=page, size=PAGE_SIZE)
    items = [{"voter": voter, "college": college} for voter, college in rows[:PAGE_SIZE]]
    return activity(_page(collection_id, page, items, len(rows) > PAGE_SIZE))


async def ballots_collection(request: Request) -> Response:
    """Every ballot the host received, in the order it accepted them, with what became
    of each (counted, replaced, set aside, refused and why) and the Notes as received,
    proofs included: enough to recompute the tally and check every proof."""
    found = await _closed_open_ballot(request)
    if isinstance(found, Response):
        return found
    node, p = found
    collection_id = node.urls.proposal_ballots(p.key)
    try:
        page = _page_number(request)
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    if page is None:
        return activity(_collection(collection_id, await reading.ballots_count(node, p)))
    rows = await reading.ballots_page(node, p, page=page, size=PAGE_SIZE)
    items = [ballot_item(b) for b in rows[:PAGE_SIZE]]
    return activity(_page(collection_id, page, items, len(rows) > PAGE_SIZE))


async def subtotals_collection(request: Request) -> Response:
    """The subtotals the host counted, as each co-op sent and signed them (proofs
    included), once the proposal is closed: anyone can check each co-op's signature and
    add them up."""
    node = node_of(request)
    p = await reading.proposal(node, request.path_params["key"])
    if p.state is not State.CLOSED or p.counting_mode is not Mode.SUBTOTAL:
        return error(404, "not_found", "subtotals are published once such a proposal closes")
    found = await reading.subtotal_documents(node, p)
    document = _collection(subtotals_id(p), len(found))
    document.pop("first", None)
    document["orderedItems"] = found
    return activity(document)


async def voters(request: Request) -> Response:
    """Who voted (not how) on a closed secret ballot, such as this co-op's own vote on a
    shared proposal counted by subtotals: a member can check they were counted."""
    node = node_of(request)
    p = await reading.proposal(node, request.path_params["key"])
    if p.state is not State.CLOSED or p.open_ballot:
        return error(404, "not_found", "voters are listed once a secret ballot is closed")
    found = await reading.voters(node, p)
    document = _collection(voters_id(p), len(found))
    document.pop("first", None)
    document["orderedItems"] = found
    return activity(document)


async def proposals_collection(request: Request) -> Response:
    """The co-op's proposals, newest first (ids; each is fetched at its id)."""
    node = node_of(request)
    username = request.path_params["username"]
    if username != node.settings.handle:
        return error(404, "not_found", f"no proposals of {username!r} here")
    collection_id = node.urls.proposals(username)
    try:
        page = _page_number(request)
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    total, uris = await reading.proposals_page(node, page=page, size=PAGE_SIZE)
    if page is None:
        return activity(_collection(collection_id, total))
    return activity(_page(collection_id, page, uris[:PAGE_SIZE], len(uris) > PAGE_SIZE))


# --- the JSON API ---------------------------------------------------------------------------


async def create(request: Request) -> Response:
    info = await authenticate(request, role="member")
    node = node_of(request)
    author = None
    if info.actor_id is not None:
        author = await reading.member_uri(node, info.actor_id)
    result = await proposals.create_proposal(node, await json_body(request), author=author)
    return JSONResponse(result, status_code=201)


async def list_all(request: Request) -> Response:
    """This co-op's proposals, and the shared ones other co-ops host for it."""
    info = await authenticate(request, role="observer")
    return JSONResponse(await reading.api_list(node_of(request), info.actor_id))


async def show(request: Request) -> Response:
    info = await authenticate(request, role="observer")
    found = await reading.api_show(
        node_of(request), request.path_params["key"], info.actor_id, admin=info.role == "admin"
    )
    return JSONResponse(found)


async def vote(request: Request) -> Response:
    """A member's ballot: counted here for this co-op's proposals; for a shared proposal
    hosted elsewhere, signed and sent to its host."""
    info = await authenticate(request, role="member")
    data = await json_body(request)
    result = await ballots.cast(node_of(request), info, request.path_params["key"], data)
    return JSONResponse(result, status_code=201)


async def decline(request: Request) -> Response:
    """The admin declines a shared proposal for the co-op: its host is told."""
    await authenticate(request, role="admin")
    node = node_of(request)
    return JSONResponse(await sharing.decline(node, request.path_params["key"]))


async def invitations(request: Request) -> Response:
    """The shared proposals other co-ops invited this one to, waiting for the admin."""
    await authenticate(request, role="admin")
    node = node_of(request)
    return JSONResponse({"invitations": await reading.invitations(node)})


async def accept(request: Request) -> Response:
    """The admin accepts an invitation: the co-op takes part, and its members see it."""
    await authenticate(request, role="admin")
    node = node_of(request)
    return JSONResponse(await sharing.accept(node, request.path_params["key"]))
