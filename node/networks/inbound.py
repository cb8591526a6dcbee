"""What networks take from the inbox.

Hosting side: a co-op's ``Join`` or ``Leave`` of a network hosted here; and every
member's public ``Create``, ``Update`` or ``Delete`` of an offer or a proposal, relayed
(the feature whose kind it is, offers or governance, takes it as well).

The co-op's side: a network's ``Accept`` or ``Reject`` of our ``Join`` (an answer that
embeds a Join: before the follows feature, which takes every other Accept and Reject),
its ``Add`` and ``Remove`` of members, and its ``Announce`` of what a member published.
"""

from __future__ import annotations

from typing import Any

from node.governance.inbound import PROPOSAL
from node.inbox.feature import Inbound, Kind, anything
from node.networks import admission, hosting, joining, wire
from node.networks.model import Admission
from node.offers.inbound import OFFER
from node.runtime import Node
from node.services.inbox import InboxItem
from node.urls import Urls

NETWORK = "network"
RELAYED = "relayed"


def _answers_a_join(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    obj = activity.get("object")
    return isinstance(obj, dict) and obj.get("type") == "Join"


def _relays(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    obj = activity.get("object")
    return isinstance(obj, dict) and obj.get("type") in (*wire.RELAYED, *wire.INTRODUCED)


async def _on_join(node: Node, item: InboxItem) -> None:
    """An application; where the network admits by vote, the vote on it opens."""
    waiting = await hosting.on_join(node, item)
    if waiting is not None and waiting[0].admission is Admission.VOTE:
        await admission.put_to_vote(node, *waiting)


async def _on_answer(node: Node, item: InboxItem) -> None:
    await joining.on_answer(node, item)


async def _on_roster_change(node: Node, item: InboxItem) -> None:
    await joining.on_roster_change(node, item)


async def _on_announce(node: Node, item: InboxItem) -> None:
    await joining.on_announce(node, item)


async def _take_announces(node: Node, items: list[InboxItem]) -> dict[int, Exception | None]:
    return await joining.take_announces(node, items)


async def _relay(node: Node, item: InboxItem) -> None:
    await hosting.relay(node, item)


INBOUND = Inbound(
    name="networks",
    kinds=(
        Kind("Join", NETWORK, anything),
        Kind("Leave", NETWORK, anything),
        Kind("Accept", NETWORK, _answers_a_join),
        Kind("Reject", NETWORK, _answers_a_join),
        Kind("Add", NETWORK, anything),
        Kind("Remove", NETWORK, anything),
        Kind("Announce", RELAYED, _relays),
    ),
    handlers={
        ("Join", NETWORK): _on_join,
        ("Leave", NETWORK): hosting.on_leave,
        ("Accept", NETWORK): _on_answer,
        ("Reject", NETWORK): _on_answer,
        ("Add", NETWORK): _on_roster_change,
        ("Remove", NETWORK): _on_roster_change,
        ("Announce", RELAYED): _on_announce,
        # Members' offers and proposals: relayed, and taken by the offers or governance
        # feature too (each handler of a kind runs, in the features' order).
        ("Create", OFFER): _relay,
        ("Update", OFFER): _relay,
        ("Delete", OFFER): _relay,
        ("Create", PROPOSAL): _relay,
        ("Update", PROPOSAL): _relay,
    },
    batches={("Announce", RELAYED): _take_announces},
)
