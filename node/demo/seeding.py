"""Seeding the running demo: each co-op's colleges, members and offers; the co-ops
following each other until every catalogue holds the offers of those it follows; the
network they form, whose members' catalogues hold each other's offers, followed or
not, and the newcomer's application left waiting; the orders they place with each
other, answered by the sellers; and the two proposals, open for voting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from federation.clock import Clock
from node.catalogue import store as catalogue
from node.demo.coops import ANSWERS, DemoNetwork, DemoOrder, Seed, offer_titled
from node.demo.errors import DemoError
from node.demo.nodes import DemoNode
from node.errors import NotFound
from node.follows import actions
from node.follows import store as follows
from node.governance import proposals as governance
from node.governance.rules.proposal_input import MIN_DURATION, iso
from node.governance.store import proposals as stored
from node.governance.store import remote
from node.governance.store.rows import State
from node.members.actions import add_member, set_colleges
from node.networks import hosting, joining, reading
from node.networks.model import State as Standing
from node.offers import publish
from node.orders import buying, selling
from node.orders import store as orders
from node.orders.model import Side
from node.orders.model import State as OrderState
from node.orders.store import StoredOrder
from node.runtime import Node

# How long the co-ops may take to follow each other and exchange their offers.
SETTLE_TIMEOUT = 90.0


@dataclass
class Proposals:
    """The proposals the demo opened: when they close, and one line each to show."""

    closes_at: datetime
    # (host's handle, "internal" or "shared", URL, title)
    shown: list[tuple[str, str, str, str]] = field(default_factory=list)


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], seconds: float = SETTLE_TIMEOUT
) -> None:
    """Return once ``check()`` is true; :class:`DemoError` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise DemoError(f"the demo did not settle: {what} after {seconds:.0f} s")
        await asyncio.sleep(0.1)


async def seed_node(demo: DemoNode, joined_at: str) -> None:
    """Colleges, members and offers of one co-op; ``demo`` keeps its members' actors
    and its offers' URIs, which the orders are placed with."""
    node = demo.node
    if demo.coop.colleges:
        await set_colleges(
            node,
            {"colleges": [{"name": n, "weight": w} for n, w in demo.coop.colleges]},
        )
    for member in demo.coop.members:
        data: dict[str, Any] = {
            "username": member.username,
            "name": member.name,
            "role": member.role,
            "password": member.password,
            "joined_at": joined_at,
        }
        if member.college is not None:
            data["college"] = member.college
        added, _ = await add_member(node, data)
        if added.actor_id is not None:
            demo.actors[member.username] = added.actor_id
    place = demo.coop.place
    for offer in demo.coop.offers:
        located = {
            **offer,
            "location": {
                "name": place.name,
                "latitude": place.latitude,
                "longitude": place.longitude,
            },
        }
        created = await publish.create_offer(node, located)
        demo.offers.append(created["uri"])


async def federate(nodes: list[DemoNode], seed: Seed) -> None:
    """Each co-op follows those the data file says (the others, as a rule); returns
    once every follow is accepted and every catalogue holds the offers of the co-ops it
    follows."""
    followed = {demo.coop.handle: seed.followed_by(demo.coop) for demo in nodes}
    for demo in nodes:
        for peer in nodes:
            if peer.coop.handle in followed[demo.coop.handle]:
                await actions.follow(demo.node, f"{peer.coop.handle}@{peer.domain}")
        demo.node.delivery_wakeup.set()

    actors = {peer.actor for peer in nodes}

    async def approve_peers() -> None:
        """The co-ops that approve their followers approve the other two."""
        for demo in nodes:
            if demo.coop.follow_policy != "approve":
                continue
            coop_id = demo.node.peers.coop_id
            pending = await demo.node.db.read(
                lambda conn, coop_id=coop_id: follows.list_followers(  # type: ignore[misc]
                    conn, actor_id=coop_id, state=follows.PENDING
                )
            )
            for follower in pending:
                if follower.follower in actors:
                    await actions.answer_follower(demo.node, follower.follower, accept=True)

    async def settled() -> bool:
        await approve_peers()
        for demo in nodes:
            coop_id = demo.node.peers.coop_id
            for peer in nodes:
                if peer.coop.handle not in followed[demo.coop.handle]:
                    continue

                def state(
                    conn: Any, peer: DemoNode = peer, coop_id: int = coop_id
                ) -> tuple[str | None, int]:
                    return (
                        follows.following_state(conn, actor_id=coop_id, followed=peer.actor),
                        catalogue.count(conn, actor=peer.actor),
                    )

                accepted, offers = await demo.node.db.read(state)
                if accepted != follows.ACCEPTED or offers < len(peer.coop.offers):
                    return False
        return True

    await wait_for("the co-ops following each other and sharing their offers", settled)


async def form_network(nodes: list[DemoNode], network: DemoNetwork) -> None:
    """The network, created at its host; every co-op of the data file applies from its
    own node, and the host's admin admits the members one after the other, leaving the
    others waiting. Returns once each member belongs, knows the other members, and its
    catalogue holds their offers (brought by the network, for those it does not
    follow), and the host holds the applications left waiting."""
    by_handle = {demo.coop.handle: demo for demo in nodes}
    host = by_handle[network.host]
    await hosting.create_network(
        host.node,
        name=network.name,
        title=network.title,
        summary=network.summary,
        charter=network.charter,
        admission=network.admission,
    )
    address = f"{network.name}@{host.domain}"
    for seat in network.members + network.waiting:
        await joining.join(
            by_handle[seat.coop].node, address, sector=seat.sector, region=seat.region
        )
    applicants = {by_handle[seat.coop].actor for seat in network.members + network.waiting}

    async def applied() -> bool:
        waiting = await reading.applications(host.node, network.name)
        return applicants <= {member.actor for member in waiting}

    await wait_for(f"the applications reaching the network {network.name}", applied)
    for seat in network.members:
        await hosting.approve(host.node, network.name, by_handle[seat.coop].actor)

    actor = host.node.urls.actor(network.name)
    members = [by_handle[seat.coop] for seat in network.members]

    async def standing(demo: DemoNode) -> tuple[Standing | None, set[str]]:
        try:
            membership, roster = await reading.membership(demo.node, actor)
        except NotFound:
            return None, set()
        return membership.state, {entry.actor for entry in roster}

    async def settled() -> bool:
        for demo in members:
            others = [peer for peer in members if peer is not demo]
            if await standing(demo) != (Standing.MEMBER, {peer.actor for peer in others}):
                return False
            for peer in others:
                held = await demo.node.db.read(
                    lambda conn, peer=peer: catalogue.count(conn, actor=peer.actor)  # type: ignore[misc]
                )
                if held < len(peer.coop.offers):
                    return False
        for seat in network.waiting:
            state, _ = await standing(by_handle[seat.coop])
            if state is not Standing.PENDING:
                raise DemoError(f"{seat.coop}'s application to {network.name} is {state}")
        return True

    await wait_for(f"the members of {network.name} sharing their offers", settled)


async def place_orders(nodes: list[DemoNode], seed: Seed) -> None:
    """The data file's orders, each placed by its member and answered by its seller's
    admin through the nodes, as people would; returns once each buyer's node holds its
    order in the state the answers leave it in."""
    by_handle = {demo.coop.handle: demo for demo in nodes}
    await asyncio.gather(*(trade(by_handle[o.buyer], by_handle[o.seller], o) for o in seed.orders))


async def trade(buyer: DemoNode, seller: DemoNode, order: DemoOrder) -> None:
    """One order, from the member's ``Offer`` to the seller's last answer reaching
    her; each answer waits for the one before to arrive, as a seller's would."""
    position = offer_titled(seller.coop, order.offer)
    assert position is not None  # the data file is checked as it is read
    placed = await buying.place_order(
        buyer.node,
        buyer.actors[order.member],
        {"offer": seller.offers[position], **order.data},
    )
    what = f"{buyer.coop.handle}'s order of {order.offer!r}"

    async def at_seller() -> StoredOrder | None:
        return await seller.node.db.read(
            lambda conn: orders.by_offer_activity(conn, Side.SELLER, placed.offer_activity)
        )

    async def held() -> bool:
        received = await at_seller()
        if received is not None and received.state is not OrderState.PENDING:
            raise DemoError(f"{seller.coop.handle} refused {what}: {received.answer}")
        return received is not None

    await wait_for(f"{what} reaching {seller.coop.handle}", held)
    received = await at_seller()
    assert received is not None
    for n, answer in enumerate(order.answers):
        await selling.decide(seller.node, received.key, answer, note="" if n else order.reply)
        expected = ANSWERS[answer]

        async def answered(expected: OrderState = expected) -> bool:
            mine = await buyer.node.db.read(lambda conn: orders.by_key(conn, placed.key))
            assert mine is not None
            return mine.state is expected

        await wait_for(f"{what} being {expected.value} at {buyer.coop.handle}", answered)


class _EarlierClock:
    """A clock running ``by`` behind another."""

    def __init__(self, clock: Clock, by: timedelta) -> None:
        self.clock, self.by = clock, by

    def now(self) -> datetime:
        return self.clock.now() - self.by


def proposing_node(node: Node, closes_at: datetime) -> Node:
    """The node to open a proposal with: ``node`` itself, or for a vote shorter than a
    node allows, a view of it whose clock runs behind, so that the vote opens a little
    in the past and still closes at ``closes_at``."""
    left = closes_at - node.clock.now()
    if left >= MIN_DURATION:
        return node
    earlier = _EarlierClock(node.clock, MIN_DURATION - left + timedelta(seconds=1))
    return Node(settings=node.settings, db=node.db, http=node.http, clock=earlier)


async def open_proposals(nodes: list[DemoNode], seed: Seed, closes_in: float) -> Proposals:
    """The internal proposal and the shared one; returns once the shared one is open at
    its host and known to the other co-ops."""
    by_handle = {demo.coop.handle: demo for demo in nodes}
    now = nodes[0].node.clock.now()
    closes_at = (now + timedelta(minutes=closes_in)).replace(microsecond=0)
    result = Proposals(closes_at=closes_at)

    async def propose(demo: DemoNode, data: dict[str, Any]) -> dict[str, Any]:
        node = demo.node
        author = node.urls.actor(demo.coop.admin.username)
        created = await governance.create_proposal(
            proposing_node(node, closes_at),
            {**data, "closes_at": iso(closes_at)},
            author=author,
        )
        node.delivery_wakeup.set()
        node.governance_wakeup.set()
        return created

    internal = seed.internal
    opened = await propose(by_handle[internal.host], internal.data)
    result.shown.append((internal.host, "internal", opened["uri"], internal.title))

    host = by_handle[seed.shared.host]
    others = [by_handle[handle] for handle in seed.shared.shared_with]
    shared = await propose(
        host,
        {**seed.shared.data, "electorate": [f"{o.coop.handle}@{o.domain}" for o in others]},
    )
    uri = shared["uri"]
    with_whom = ", ".join(o.coop.handle for o in others)
    result.shown.append(
        (host.coop.handle, "shared", uri, f"{seed.shared.title} (with {with_whom})")
    )

    async def arrived() -> bool:
        found = await host.node.db.read(lambda conn: stored.get(conn, shared["id"]))
        if found.state is State.SCHEDULED:
            host.node.governance_wakeup.set()
            return False
        for other in others:
            if await other.node.db.read(lambda conn: remote.by_uri(conn, uri)) is None:
                return False
        return True

    await wait_for("the shared proposal reaching the other co-ops", arrived)
    return result
