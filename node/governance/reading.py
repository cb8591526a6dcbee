"""Governance as the web pages, the JSON API and the command line read it: each function
takes the node and returns typed rows or the API's JSON, so that none of them runs a
query of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from federation.inbox import host_of
from node.errors import NotFound
from node.follows import store as follows
from node.governance import documents
from node.governance.store import ballots as ballot_store
from node.governance.store import coops, electorate
from node.governance.store import proposals as proposal_store
from node.governance.store import remote as remote_store
from node.governance.store.proposals import Listed
from node.governance.store.rows import (
    CastBallot,
    RemoteProposal,
    SentBallot,
    SentElsewhere,
    StoredBallot,
    StoredProposal,
)
from node.members import store as members
from node.runtime import Node
from node.services import remote_actors

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# --- this co-op's proposals --------------------------------------------------------------


async def proposal(node: Node, key: str) -> StoredProposal:
    """The proposal of API key ``key``; NotFound if there is none."""
    return await node.db.read(lambda conn: proposal_store.get(conn, key))


async def newest(node: Node, *, limit: int | None = 100) -> list[StoredProposal]:
    """The proposals, newest first (every one where ``limit`` is None)."""
    return await node.db.read(lambda conn: proposal_store.newest(conn, limit=limit))


async def proposals_page(node: Node, *, page: int | None, size: int) -> tuple[int, list[str]]:
    """How many proposals there are, and the ids on ``page`` (one more than ``size``
    when a next page exists)."""
    return await node.db.read(lambda conn: proposal_store.uris_page(conn, page=page, size=size))


async def with_latest_choices(
    node: Node, key: str, voter: str | None
) -> tuple[StoredProposal, list[str] | None]:
    """The proposal, and the choices of the voter's latest ballot on it, if any."""

    def read(conn: Connection) -> tuple[StoredProposal, list[str] | None]:
        p = proposal_store.get(conn, key)
        return p, None if voter is None else ballot_store.latest_choices(conn, p.id, voter)

    return await node.db.read(read)


async def electorate_page(
    node: Node, p: StoredProposal, *, page: int, size: int
) -> list[tuple[str, str | None]]:
    return await node.db.read(lambda conn: electorate.page(conn, p.id, page=page, size=size))


async def ballots_count(node: Node, p: StoredProposal) -> int:
    return await node.db.read(lambda conn: ballot_store.count(conn, p.id))


async def ballots_page(
    node: Node, p: StoredProposal, *, page: int, size: int
) -> list[StoredBallot]:
    return await node.db.read(lambda conn: ballot_store.page(conn, p.id, page=page, size=size))


async def subtotal_documents(node: Node, p: StoredProposal) -> list[dict[str, Any]]:
    return await node.db.read(lambda conn: coops.subtotal_documents(conn, p.id))


async def voters(node: Node, p: StoredProposal) -> list[str]:
    return await node.db.read(lambda conn: ballot_store.voters(conn, p.id))


async def member_uri(node: Node, actor_pk: int | None) -> str | None:
    """The actor of the local member ``actor_pk``, if there is one."""
    username = await node.db.read(lambda conn: proposal_store.username_of(conn, actor_pk))
    return None if username is None else node.urls.actor(username)


# --- the JSON API --------------------------------------------------------------------------


def _described_remote(
    conn: Connection, row: RemoteProposal, member_pk: int | None
) -> dict[str, Any]:
    return documents.describe_remote(
        row,
        remote_store.last_sent(conn, row.id, member_pk),
        proposal_store.mirror_key(conn, row.uri),
    )


async def api_list(node: Node, member_pk: int | None) -> dict[str, Any]:
    """This co-op's proposals, and the shared ones other co-ops host for it (with the
    member's ballot on each)."""

    def read(conn: Connection) -> dict[str, Any]:
        return {
            "proposals": [documents.describe(p) for p in proposal_store.newest(conn)],
            "shared": [
                _described_remote(conn, row, member_pk) for row in remote_store.visible(conn)
            ],
        }

    return await node.db.read(read)


async def api_show(node: Node, key: str, member_pk: int | None, *, admin: bool) -> dict[str, Any]:
    """One proposal as the API shows it: a shared one hosted elsewhere (an invitation
    only to the admin), else one of this co-op's."""

    def read(conn: Connection) -> dict[str, Any]:
        remote = remote_store.find(conn, key)
        if remote is not None and (remote.visible or admin):
            return _described_remote(conn, remote, member_pk)
        return documents.describe(proposal_store.get(conn, key))

    return await node.db.read(read)


# --- shared proposals hosted elsewhere -----------------------------------------------------


async def shared_visible(node: Node, *, limit: int = 100) -> list[dict[str, Any]]:
    """The shared proposals members see, as the API shows them (without ballots)."""
    found = await node.db.read(lambda conn: remote_store.visible(conn, limit=limit))
    return [documents.describe_remote(row) for row in found]


async def shared(node: Node, key: str) -> RemoteProposal | None:
    """The shared proposal ``key`` if members may see it."""
    row = await node.db.read(lambda conn: remote_store.find(conn, key))
    return row if row is not None and row.visible else None


async def shared_any(node: Node, key: str) -> RemoteProposal | None:
    """The shared proposal ``key``, invitations included."""
    return await node.db.read(lambda conn: remote_store.find(conn, key))


async def shared_with_ballot(
    node: Node, key: str, member_pk: int | None
) -> tuple[RemoteProposal, str | None, SentBallot | None]:
    """A shared proposal members may see, the key of this co-op's own vote on it (when
    counted at home) and the member's latest ballot; NotFound otherwise."""

    def read(conn: Connection) -> tuple[RemoteProposal, str | None, SentBallot | None]:
        row = remote_store.find(conn, key)
        if row is None or not row.visible:
            raise NotFound("no such shared proposal")
        return (
            row,
            proposal_store.mirror_key(conn, row.uri),
            remote_store.last_sent(conn, row.id, member_pk),
        )

    return await node.db.read(read)


# --- a member's ballots --------------------------------------------------------------------


async def ballots_of(
    node: Node, voter: str, member_pk: int | None
) -> tuple[list[CastBallot], list[SentElsewhere]]:
    """A member's latest ballots: on this co-op's proposals, and the last one on each
    shared proposal hosted elsewhere."""

    def read(conn: Connection) -> tuple[list[CastBallot], list[SentElsewhere]]:
        return ballot_store.cast_by(conn, voter), remote_store.sent_by(conn, member_pk)

    return await node.db.read(read)


# --- the admin's page ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FollowedCoop:
    """A co-op this node follows, which a proposal may be shared with."""

    uri: str
    name: str
    handle: str


def followed_coops(conn: Connection, coop_id: int) -> list[FollowedCoop]:
    """The co-ops this node follows (accepted), with the name and handle their actor
    documents give, by name."""
    uris = [f.followed for f in follows.list_following(conn, actor_id=coop_id, limit=500)]
    known = remote_actors.labels(conn, uris)
    found = []
    for uri in uris:
        label = known.get(uri) or remote_actors.Label(uri=uri, name=None, username=None)
        # The host with its port: a local node's handle has it (coop@127.0.0.1:8001).
        handle = label.handle or host_of(uri)
        found.append(FollowedCoop(uri=uri, name=label.name or handle, handle=handle))
    return sorted(found, key=lambda c: (c.name.casefold(), c.uri))


@dataclass(frozen=True, slots=True)
class AdminPage:
    """What the admin's proposals page shows, read at once."""

    listed: list[Listed]
    followed: list[FollowedCoop]
    colleges: list[members.College]
    invited: list[dict[str, Any]]


async def admin_page(node: Node, *, limit: int) -> AdminPage:
    coop_id = node.peers.coop_id

    def read(conn: Connection) -> AdminPage:
        return AdminPage(
            listed=proposal_store.listed(conn, limit=limit),
            followed=followed_coops(conn, coop_id),
            colleges=members.list_colleges(conn),
            invited=invitations_labelled(conn),
        )

    return await node.db.read(read)


async def followed(node: Node) -> list[FollowedCoop]:
    coop_id = node.peers.coop_id
    return await node.db.read(lambda conn: followed_coops(conn, coop_id))


def invitation_list(conn: Connection) -> list[dict[str, Any]]:
    """The shared proposals waiting for the admin's answer, newest first, as the API
    shows them."""
    return [documents.describe_remote(row) for row in remote_store.invitations(conn)]


async def invitations(node: Node) -> list[dict[str, Any]]:
    return await node.db.read(invitation_list)


def invitations_labelled(conn: Connection) -> list[dict[str, Any]]:
    """The invitations waiting for the admin as the API shows them, each with its host's
    name (``host_label``) and closing time (``closes``) for the page."""
    invited = invitation_list(conn)
    # One query for every host's name.
    labels = remote_actors.labels(conn, [i["host"] for i in invited])
    for invitation in invited:
        label = labels.get(invitation["host"])
        invitation["host_label"] = (
            invitation["host"] if label is None else label.name or label.handle
        )
        closes = invitation.get("closes_at")
        invitation["closes"] = datetime.fromisoformat(closes) if closes else None
    return invited
