"""Admitting a co-op by a vote of the network's members, where the network says so.

The vote is a network-wide proposal like any other (node.governance): one co-op one
ballot, each decided by its own members, opened by the co-op whose node hosts the
network (which must itself be a member: a network's admin without a seat cannot call a
vote). Its electorate is the member co-ops at the opening; the applicant is not one of
them. When it closes, the network's round admits the co-op if it passed and refuses it,
with the outcome's reason, if not. A vote that cannot be opened leaves the application
waiting for the admin, who may then decide it alone.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from federation.errors import FederationError
from node.errors import NodeError
from node.governance import proposals
from node.governance.store import proposals as proposal_store
from node.governance.store.rows import State as ProposalState
from node.networks import hosting, store
from node.networks.model import Member, Network, State
from node.runtime import Node

log = logging.getLogger(__name__)

# How long the members have to decide on an applicant.
VOTE_DAYS = 7


async def put_to_vote(node: Node, network: Network, member: Member) -> str | None:
    """Open the vote on admitting ``member``; its proposal's id, or None when no vote
    could be opened (the admin decides then)."""
    network_id = node.urls.actor(network.name)
    seat = await node.db.read(lambda conn: store.membership(conn, network_id))
    if seat is None or seat.state is not State.MEMBER:
        log.info(
            "networks: %s admits by vote, but this co-op is not one of its members: "
            "%s waits for the admin",
            network.name,
            member.actor,
        )
        return None
    now = node.clock.now()
    where = ", ".join(part for part in (member.sector, member.region) if part)
    data = {
        "title": f"Admettre {member.name} dans {network.title} ? / Admit it to the network?",
        "text": (
            f"{member.name} ({member.actor}) demande à rejoindre {network.title}"
            + (f" ({where})" if where else "")
            + f".\n\n{member.name} asks to join {network.title}."
        ),
        "options": ["For", "Against", "Abstain"],
        "rule": "majority",
        "quorum": "0%",
        "counting_mode": "coop",
        "network": network_id,
        "closes_at": (now + timedelta(days=VOTE_DAYS)).isoformat(),
    }
    try:
        created = await proposals.create_proposal(node, data, author=None)
    except (NodeError, FederationError) as exc:
        log.warning("networks: no vote on admitting %s to %s: %s", member.actor, network.name, exc)
        return None
    uri = str(created["uri"])
    await node.db.write(lambda conn: store.set_proposal(conn, member.id, uri))
    return uri


async def settle_votes(node: Node) -> int:
    """Admit or refuse the applicants whose vote closed; how many were decided."""
    waiting = await node.db.read(store.voted_on)
    decided = 0
    for name, actor, uri in waiting:
        proposal = await node.db.read(partial(proposal_store.by_uri, uri=uri))
        if proposal is not None and proposal.state is not ProposalState.CLOSED:
            continue
        outcome = None if proposal is None else proposal.outcome
        try:
            if outcome is not None and outcome.get("result") == "passed":
                await hosting.approve(node, name, actor, by_vote=True)
            else:
                reason = "the vote on it is gone"
                if outcome is not None:
                    reason = str(outcome.get("reason") or "the member co-ops voted against")
                await hosting.refuse(node, name, actor, reason=reason[:500])
        except NodeError as exc:
            log.warning("networks: the vote on %s in %s cannot be applied: %s", actor, name, exc)
            continue
        decided += 1
    return decided
