"""What governance takes from the inbox: ballots on our proposals, shared proposals
naming this co-op, subtotals of the co-ops voting on a proposal we host, and a co-op
declining one of ours.

The kinds, in the order they are tried: a ``Create`` that looks like a vote (Mastodon's:
a Note with a name, in reply to something, without content), a ``Create`` or ``Update``
of a ``Question`` (a shared proposal), a ``Create`` of a ``Subtotal``, and a ``Reject``
of one of our proposals. Ballots are taken many at once (a busy vote brings them by the
thousand); those that are not on a proposal of ours are left, and done.
"""

from __future__ import annotations

from typing import Any

from federation.inbox import actor_id
from node.governance import sharing, subtotals, voting
from node.inbox.feature import Inbound, Kind, object_type
from node.runtime import Node
from node.services.inbox import InboxItem
from node.urls import Urls

VOTE = "vote"
PROPOSAL = "proposal"
SUBTOTAL = "subtotal"


def _looks_like_vote(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    return voting.looks_like_vote(activity.get("object"))


def _is_question(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    return object_type(activity) == "Question"


def _is_subtotal(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    return subtotals.is_subtotal(activity)


def _names_our_proposal(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    target = actor_id(activity.get("object"))
    return target is not None and target.startswith(urls.proposal(""))


async def _take_votes(node: Node, items: list[InboxItem]) -> dict[int, Exception | None]:
    # Looked up at each call, so that a test may stand in for it.
    return await voting.take_votes(node, items)


async def _on_question(node: Node, item: InboxItem) -> None:
    await sharing.on_question(node, item)


async def _on_reject(node: Node, item: InboxItem) -> None:
    await sharing.on_reject(node, item)


async def _on_subtotal(node: Node, item: InboxItem) -> None:
    await subtotals.on_subtotal(node, item)


INBOUND = Inbound(
    name="governance",
    kinds=(
        Kind("Create", VOTE, _looks_like_vote),
        Kind("Create", PROPOSAL, _is_question),
        Kind("Create", SUBTOTAL, _is_subtotal),
        Kind("Update", PROPOSAL, _is_question),
        Kind("Reject", PROPOSAL, _names_our_proposal),
    ),
    handlers={
        ("Create", PROPOSAL): _on_question,
        ("Update", PROPOSAL): _on_question,
        ("Create", SUBTOTAL): _on_subtotal,
        ("Reject", PROPOSAL): _on_reject,
    },
    batches={("Create", VOTE): _take_votes},
)
