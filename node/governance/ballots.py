"""A member casting a ballot through the API, wherever the proposal is counted: here for
this co-op's own proposals (and for its own vote on a shared proposal counted at home),
at the host for a shared proposal hosted elsewhere."""

from __future__ import annotations

from typing import Any

from node.governance import sharing, voting
from node.governance.store import proposals as proposal_store
from node.governance.store import remote as remote_store
from node.runtime import Node
from node.services.tokens import TokenInfo


async def cast(node: Node, token: TokenInfo, key: str, data: Any) -> dict[str, Any]:
    """The member's ballot on the proposal ``key``, as the API answers it."""
    remote = await node.db.read(lambda conn: remote_store.find(conn, key))
    mirror = None
    if remote is not None:
        uri = remote.uri
        mirror = await node.db.read(lambda conn: proposal_store.mirror_key(conn, uri))
    if remote is None or mirror is not None:
        # This co-op's proposal, or its own vote on a shared one counted at home.
        return await voting.cast_local(node, token, mirror or key, data)
    return await sharing.vote_remote(node, token, remote, voting.choices_of(token, data))
