"""Proposals on the web: each at its id (a ``Question``), its outcome reply, and once
closed its electorate and ballots collections for anyone to audit; the co-op's
``proposals`` collection; and the JSON API to open proposals and vote."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node import documents
from node.governance import proposing, sharing, voting
from node.governance.rules.proposal_input import iso
from node.storage.tables import (
    ballots,
    proposal_voters,
    proposals,
    subtotals,
)
from node.web.api import authenticate, json_body
from node.web.responses import activity, error, node_of

PAGE_SIZE = 1000
CONTEXT = proposing.CONTEXT


async def question(request: Request) -> Response:
    node = node_of(request)
    key = request.path_params["key"]
    row = await node.db.read(lambda conn: proposing.get_row(conn, key))
    return activity(proposing.question(node, row))


async def outcome(request: Request) -> Response:
    node = node_of(request)
    key = request.path_params["key"]
    row = await node.db.read(lambda conn: proposing.get_row(conn, key))
    if row["state"] != proposing.CLOSED:
        return error(404, "not_found", "the vote is not closed yet")
    return activity(proposing.outcome_note(node, row))


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


async def _closed_open_ballot(request: Request) -> tuple[Any, Any] | Response:
    node = node_of(request)
    key = request.path_params["key"]
    row = await node.db.read(lambda conn: proposing.get_row(conn, key))
    if row["state"] != proposing.CLOSED:
        return error(404, "not_found", "ballots are published at the close")
    if not row["open_ballot"]:
        return error(404, "not_found", "this proposal was a secret ballot")
    return node, row


async def electorate(request: Request) -> Response:
    found = await _closed_open_ballot(request)
    if isinstance(found, Response):
        return found
    node, row = found
    collection_id = node.urls.proposal_electorate(row["key"])
    try:
        page = _page_number(request)
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    if page is None:
        return activity(_collection(collection_id, row["eligible"] or 0))
    query = (
        select(proposal_voters.c.voter, proposal_voters.c.college)
        .where(proposal_voters.c.proposal_id == row["id"])
        .order_by(proposal_voters.c.voter)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    rows = await node.db.read(lambda conn: conn.execute(query).all())
    items = [{"voter": r.voter, "college": r.college} for r in rows[:PAGE_SIZE]]
    return activity(_page(collection_id, page, items, len(rows) > PAGE_SIZE))


def _ballot_item(r: Any) -> dict[str, Any]:
    status = {"valid": "counted"}.get(r.state, r.state)
    item: dict[str, Any] = {
        "type": "Ballot",
        "voter": r.voter,
        "college": r.college,
        "choices": json.loads(r.choices),
        "castAt": iso(r.cast_at),
        "activity": r.activity_id,
        "status": status,
    }
    if r.reason:
        item["reason"] = r.reason
    votes = []
    for note in json.loads(r.notes):
        if isinstance(note, dict):
            votes.append(note)
    item["votes"] = votes
    return item


async def ballots_collection(request: Request) -> Response:
    """Every ballot the host received, in the order it accepted them, with what became
    of each (counted, replaced, set aside, refused and why) and the Notes as received,
    proofs included: enough to recompute the tally and check every proof."""
    found = await _closed_open_ballot(request)
    if isinstance(found, Response):
        return found
    node, row = found
    collection_id = node.urls.proposal_ballots(row["key"])
    try:
        page = _page_number(request)
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    pk = row["id"]
    if page is None:
        total = await node.db.read(
            lambda conn: conn.execute(
                select(func.count()).select_from(ballots).where(ballots.c.proposal_id == pk)
            ).scalar_one()
        )
        return activity(_collection(collection_id, int(total)))
    query = (
        select(ballots)
        .where(ballots.c.proposal_id == pk)
        .order_by(ballots.c.cast_at, ballots.c.activity_id, ballots.c.id)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    rows = await node.db.read(lambda conn: conn.execute(query).all())
    items = [_ballot_item(r) for r in rows[:PAGE_SIZE]]
    return activity(_page(collection_id, page, items, len(rows) > PAGE_SIZE))


async def subtotals_collection(request: Request) -> Response:
    """The subtotals the host counted, as each co-op sent and signed them (proofs
    included), once the proposal is closed: anyone can check each co-op's signature and
    add them up."""
    node = node_of(request)
    key = request.path_params["key"]
    row = await node.db.read(lambda conn: proposing.get_row(conn, key))
    if row["state"] != proposing.CLOSED or row["counting_mode"] != "subtotal":
        return error(404, "not_found", "subtotals are published once such a proposal closes")
    query = (
        select(subtotals.c.document)
        .where(subtotals.c.proposal_id == row["id"])
        .order_by(subtotals.c.coop)
    )
    found = await node.db.read(lambda conn: list(conn.execute(query).scalars()))
    collection_id = f"{row['uri']}/subtotals"
    document = _collection(collection_id, len(found))
    document.pop("first", None)
    document["orderedItems"] = [json.loads(text) for text in found]
    return activity(document)


async def voters(request: Request) -> Response:
    """Who voted (not how) on a closed secret ballot, such as this co-op's own vote on a
    shared proposal counted by subtotals: a member can check they were counted."""
    node = node_of(request)
    key = request.path_params["key"]
    row = await node.db.read(lambda conn: proposing.get_row(conn, key))
    if row["state"] != proposing.CLOSED or row["open_ballot"]:
        return error(404, "not_found", "voters are listed once a secret ballot is closed")
    query = (
        select(ballots.c.voter)
        .where(ballots.c.proposal_id == row["id"], ballots.c.state == "valid")
        .distinct()
        .order_by(ballots.c.voter)
    )
    found = await node.db.read(lambda conn: list(conn.execute(query).scalars()))
    collection_id = f"{row['uri']}/voters"
    document = _collection(collection_id, len(found))
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

    def read(conn: Connection) -> tuple[int, list[str]]:
        total = conn.execute(select(func.count()).select_from(proposals)).scalar_one()
        if page is None:
            return int(total), []
        uris = conn.execute(
            select(proposals.c.uri)
            .order_by(proposals.c.published.desc(), proposals.c.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        ).scalars()
        return int(total), list(uris)

    total, uris = await node.db.read(read)
    if page is None:
        return activity(_collection(collection_id, total))
    return activity(_page(collection_id, page, uris[:PAGE_SIZE], len(uris) > PAGE_SIZE))


# --- the JSON API ---------------------------------------------------------------------------


async def create(request: Request) -> Response:
    info = await authenticate(request, role="member")
    node = node_of(request)
    author = None
    if info.actor_id is not None:
        author = await node.db.read(lambda conn: _actor_uri(conn, node, info.actor_id))
    result = await proposing.create_proposal(node, await json_body(request), author=author)
    return JSONResponse(result, status_code=201)


def _actor_uri(conn: Connection, node: Any, actor_pk: int | None) -> str | None:
    from node.storage.tables import actors

    username = conn.execute(select(actors.c.username).where(actors.c.id == actor_pk)).scalar()
    return None if username is None else str(node.urls.actor(username))


async def list_all(request: Request) -> Response:
    """This co-op's proposals, and the shared ones other co-ops host for it."""
    info = await authenticate(request, role="observer")
    node = node_of(request)

    def read(conn: Connection) -> dict[str, Any]:
        shared = sharing.list_remote(conn)
        return {
            "proposals": proposing.list_proposals(conn, node),
            "shared": [
                sharing.describe_remote(
                    r,
                    sharing.last_sent(conn, r["id"], info.actor_id),
                    sharing.mirror_key(conn, r["uri"]),
                )
                for r in shared
            ],
        }

    return JSONResponse(await node.db.read(read))


async def show(request: Request) -> Response:
    info = await authenticate(request, role="observer")
    node = node_of(request)
    key = request.path_params["key"]

    def read(conn: Connection) -> dict[str, Any]:
        remote = sharing.find_remote(conn, key)
        if remote is not None and (sharing.visible(remote) or info.role == "admin"):
            return sharing.describe_remote(
                remote,
                sharing.last_sent(conn, remote["id"], info.actor_id),
                sharing.mirror_key(conn, remote["uri"]),
            )
        return proposing.describe(node, proposing.get_row(conn, key))

    return JSONResponse(await node.db.read(read))


async def vote(request: Request) -> Response:
    """A member's ballot: counted here for this co-op's proposals; for a shared proposal
    hosted elsewhere, signed and sent to its host."""
    info = await authenticate(request, role="member")
    node = node_of(request)
    key = request.path_params["key"]
    data = await json_body(request)
    remote = await node.db.read(lambda conn: sharing.find_remote(conn, key))
    mirror = None
    if remote is not None:
        mirror = await node.db.read(lambda conn: sharing.mirror_key(conn, remote["uri"]))
    if remote is None or mirror is not None:
        # This co-op's proposal, or its own vote on a shared one counted by subtotals.
        result = await voting.cast_local(node, info, mirror or key, data)
    else:
        result = await sharing.vote_remote(node, info, remote, voting.choices_of(info, data))
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
    return JSONResponse({"invitations": await node.db.read(sharing.invitations)})


async def accept(request: Request) -> Response:
    """The admin accepts an invitation: the co-op takes part, and its members see it."""
    await authenticate(request, role="admin")
    node = node_of(request)
    return JSONResponse(await sharing.accept(node, request.path_params["key"]))
