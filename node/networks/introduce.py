"""The network introduces a newcomer's offers to its members.

A co-op admitted to a network has offers it published before: the members have never
been sent them. Rather than each member reading the newcomer's outbox (as many reads of
its server as the network has members, at each admission), the network reads the
newcomer's ``offers`` collection once, a page a round, and announces each offer
(``Announce`` of the offer itself, FEP-8b32 proof and all) to the other members, once
per shared inbox, as it relays what members publish. Members take an introduced offer
as they take a relayed one: only from a co-op the network lists, and only as its author
signed it (or as its server serves it).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from federation.errors import FederationError, unreachable_now
from federation.inbox import actor_id
from federation.origins import same_origin
from node.networks import store, wire
from node.networks.hosting import listing
from node.networks.model import Member, Network
from node.runtime import Node
from node.services import outbox

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Members whose offers are introduced in one round, and the offers read from a page.
WALKS_AT_ONCE = 10
ITEMS_PER_PAGE = 500
# How long after its admission a newcomer's server that cannot be reached is tried
# again, a round at a time, before its offers are left to its own Creates.
PATIENCE = timedelta(days=1)


async def run_once(node: Node) -> int:
    """Read one page of each newcomer's offers and introduce them; how many pages."""
    due = await node.db.read(lambda conn: store.walks(conn, limit=WALKS_AT_ONCE))
    taken = 0
    for network, member, url in due:
        try:
            page = await node.peers.fetch(url)
            if url == page.get("id") and isinstance(page.get("first"), (str, dict)):
                first = page["first"]
                if isinstance(first, str):
                    await _move(node, member, first if same_origin(first, member.actor) else None)
                    taken += 1
                    continue
                page = first
            await _introduce(node, network, member, page)
        except FederationError as exc:
            since = member.since or member.applied_at
            if unreachable_now(exc) and node.clock.now() - since < PATIENCE:
                # The newcomer's server is slow or down: the page is read next round.
                log.info("networks: the offers of %s, not read now: %s", member.actor, exc)
                continue
            log.info("networks: the offers of %s are not introduced: %s", member.actor, exc)
            await _move(node, member, None)
        taken += 1
    return taken


async def _move(node: Node, member: Member, url: str | None) -> None:
    await node.db.write(lambda conn: store.set_walk(conn, member.id, url))


async def _introduce(node: Node, network: Network, member: Member, page: dict[str, Any]) -> None:
    items = page.get("orderedItems", page.get("items", []))
    offers = [
        item
        for item in (items if isinstance(items, list) else [])[:ITEMS_PER_PAGE]
        if isinstance(item, dict)
        and item.get("attributedTo") == member.actor
        and same_origin(str(actor_id(item) or ""), member.actor)
        and listing(item) is not None
    ]
    following = actor_id(page.get("next"))
    if following is not None and not same_origin(following, member.actor):
        following = None
    now, policy = node.clock.now(), node.peers.policy
    network_id = node.urls.actor(network.name)

    def unit(conn: Connection) -> None:
        inboxes = store.member_inboxes(conn, network.id, leaving_out=member.actor)
        for offer in offers:
            uri = str(actor_id(offer))
            store.list_offer(conn, member.id, uri=uri, name=listing(offer) or "", now=now)
            outbox.publish(
                conn,
                wire.announce(
                    node.urls, network_id, offer, collection=node.urls.members(network.name)
                ),
                actor_id=network.actor_pk,
                inboxes=inboxes,
                now=now,
                policy=policy,
                public=True,
                ordering_key=uri,
            )
        store.set_walk(conn, member.id, following)

    await node.db.write(unit)
    if offers:
        node.delivery_wakeup.set()
