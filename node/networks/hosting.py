"""Hosting a network: create it, take co-ops' applications, approve, refuse or remove
members, and relay what the members publish to all the others.

A network is a local ``Group`` actor of its own, with its own keys: what it sends is
signed as the network, never as the co-op whose node hosts it. Every change and the
activities that tell it are written in one unit of work through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from federation import keys
from federation.errors import MalformedInput
from federation.inbox import actor_id, host_of
from federation.origins import same_origin
from node.errors import Conflict, Invalid, NotFound
from node.networks import store, wire
from node.networks.model import (
    DISPLAY_NAME_MAX,
    MEMBERS_MAX,
    REASON_MAX,
    Member,
    Network,
    State,
    admission_of,
    check_name,
    clean_charter,
    clean_text,
)
from node.offers import backfill
from node.runtime import Node
from node.services import identity, outbox
from node.services.inbox import InboxItem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# The actor types a co-op's actor has; a person's account cannot join a network.
COOP_TYPES = ("Group", "Organization")


async def create_network(
    node: Node,
    *,
    name: object,
    title: object = None,
    summary: object = None,
    charter: object = None,
    admission: object = "admin",
) -> Network:
    """A new network hosted here, with its own actor and keys."""
    username = check_name(name)
    shown = clean_text(title, limit=DISPLAY_NAME_MAX, what="title") or username
    about = clean_charter(summary)
    rules = clean_charter(charter)
    how = admission_of(admission)
    rsa_pem = await asyncio.to_thread(keys.generate_rsa_private_pem)
    ed_pem = keys.generate_ed25519_private_pem()
    now = node.clock.now()

    def unit(conn: Connection) -> Network:
        if identity.actor_exists(conn, username):
            raise Conflict(f"the name {username!r} is taken on this node")
        actor_pk = identity.create_actor(
            conn,
            username=username,
            type_="Group",
            name=shown,
            summary=about,
            now=now,
            rsa_private_pem=rsa_pem,
            ed25519_private_pem=ed_pem,
        )
        store.create_network(conn, actor_pk=actor_pk, charter=rules, admission=how, now=now)
        found = store.find_network(conn, username)
        assert found is not None
        return found

    return await node.db.write(unit)


async def change_network(
    node: Node, name: str, *, charter: object = None, admission: object = None
) -> Network:
    rules = None if charter is None else clean_charter(charter)
    how = None if admission is None else admission_of(admission)

    def unit(conn: Connection) -> Network:
        network = _network(conn, name)
        store.update_network(conn, network.id, charter=rules, admission=how)
        found = store.find_network(conn, name)
        assert found is not None
        return found

    return await node.db.write(unit)


def _network(conn: Connection, name: str) -> Network:
    found = store.find_network(conn, name)
    if found is None:
        raise NotFound(f"no network {name!r} is hosted here")
    return found


def _member(conn: Connection, network: Network, actor: str) -> Member:
    found = store.get_member(conn, network.id, actor)
    if found is None:
        raise NotFound(f"{actor} never applied to {network.name}")
    return found


def network_named(node: Node, url: str | None) -> str | None:
    """The name of the local actor ``url`` is, if it is one (a network or not)."""
    prefix = node.urls.actor("")
    if url is None or not url.startswith(prefix):
        return None
    name = url[len(prefix) :]
    return name if name and "/" not in name and "#" not in name and "?" not in name else None


# --- applications -------------------------------------------------------------------------


async def on_join(node: Node, item: InboxItem) -> tuple[Network, Member] | None:
    """A co-op applies: recorded as waiting for the admin (or the members' vote); a
    member applying again is answered again; a person's account is refused. Returns
    the network and the application when one waits with no vote on it yet."""
    target = actor_id(item.activity.get("object"))
    name = network_named(node, target)
    if name is None:
        return None
    network = await node.db.read(lambda conn: store.find_network(conn, name))
    if network is None:
        return None  # a Join of the co-op or of a member: nothing to join
    assert target is not None
    sector, region = wire.read_join(item.activity)
    document = await node.peers.actor(item.actor)
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    inbox = document.get("inbox")
    if not isinstance(inbox, str) or not same_origin(inbox, item.actor):
        raise MalformedInput(f"{item.actor} has no inbox on its own server")
    if not isinstance(shared, str) or not same_origin(shared, item.actor):
        shared = None
    try:
        shown = clean_text(document.get("name"), limit=DISPLAY_NAME_MAX, what="name")
    except Invalid:
        shown = ""
    join_id = str(item.activity["id"])
    now, policy = node.clock.now(), node.peers.policy
    is_coop = document.get("type") in COOP_TYPES

    def unit(conn: Connection) -> Member | None:
        if not is_coop:
            refusal = wire.answer_join(
                node.urls,
                target,
                "Reject",
                join_id=join_id,
                applicant=item.actor,
                reason="Only a co-op's actor can join a network.",
            )
            outbox.publish(
                conn, refusal, actor_id=network.actor_pk, inboxes=[inbox], now=now, policy=policy
            )
            return None
        member = store.apply(
            conn,
            network.id,
            actor=item.actor,
            host=host_of(item.actor),
            name=shown or item.actor,
            inbox=inbox,
            shared_inbox=shared,
            sector=sector,
            region=region,
            join_id=join_id,
            now=now,
        )
        if member.state is State.MEMBER:
            answer = wire.answer_join(
                node.urls, target, "Accept", join_id=join_id, applicant=item.actor
            )
            outbox.publish(
                conn, answer, actor_id=network.actor_pk, inboxes=[inbox], now=now, policy=policy
            )
        return member

    member = await node.db.write(unit)
    node.delivery_wakeup.set()
    if member is None or member.state is not State.PENDING or member.proposal is not None:
        return None
    return network, member


async def approve(node: Node, name: str, actor: str, *, by_vote: bool = False) -> Member:
    """Admit a waiting co-op: it gets the Accept, the other members an Add, and the
    network starts introducing its existing offers to them (node.networks.introduce).
    Where the network admits by vote and a vote on it runs, only its outcome
    (``by_vote``) may."""
    now, policy = node.clock.now(), node.peers.policy
    offers = await backfill.offers_collection(node, actor)

    def unit(conn: Connection) -> Member:
        network = _network(conn, name)
        member = _member(conn, network, actor)
        if member.state is State.MEMBER:
            raise Conflict(f"{actor} is already a member of {name}")
        if member.state is not State.PENDING:
            raise Conflict(f"{actor} has no application waiting ({member.state})")
        if member.proposal is not None and not by_vote:
            raise Conflict(f"the members vote on admitting {actor}: {member.proposal}")
        if store.count_members(conn, network.id) >= MEMBERS_MAX:
            raise Conflict(f"{name} has {MEMBERS_MAX} members, as many as it relays to")
        others = store.member_inboxes(conn, network.id)
        store.set_state(conn, member.id, State.MEMBER, now=now, was=(State.PENDING,))
        store.set_walk(conn, member.id, offers)
        admitted = _member(conn, network, actor)
        network_id = node.urls.actor(name)
        answer = wire.answer_join(
            node.urls, network_id, "Accept", join_id=member.join_id, applicant=actor
        )
        outbox.publish(
            conn, answer, actor_id=network.actor_pk, inboxes=[member.inbox], now=now, policy=policy
        )
        added = wire.roster_change(
            node.urls, network_id, "Add", admitted, collection=node.urls.members(name)
        )
        outbox.publish(
            conn, added, actor_id=network.actor_pk, inboxes=others, now=now, policy=policy
        )
        return admitted

    member = await node.db.write(unit)
    node.delivery_wakeup.set()
    node.networks_wakeup.set()
    return member


async def refuse(node: Node, name: str, actor: str, *, reason: object = None) -> Member:
    """Turn down a waiting application; the co-op gets a Reject saying why."""
    why = clean_text(reason, limit=REASON_MAX, what="reason")
    now, policy = node.clock.now(), node.peers.policy

    def unit(conn: Connection) -> Member:
        network = _network(conn, name)
        member = _member(conn, network, actor)
        if not store.set_state(
            conn, member.id, State.REFUSED, now=now, reason=why, was=(State.PENDING,)
        ):
            raise Conflict(f"{actor} has no application waiting ({member.state})")
        answer = wire.answer_join(
            node.urls,
            node.urls.actor(name),
            "Reject",
            join_id=member.join_id,
            applicant=actor,
            reason=why,
        )
        outbox.publish(
            conn, answer, actor_id=network.actor_pk, inboxes=[member.inbox], now=now, policy=policy
        )
        return _member(conn, network, actor)

    member = await node.db.write(unit)
    node.delivery_wakeup.set()
    return member


async def remove(node: Node, name: str, actor: str, *, reason: object) -> Member:
    """Remove a member, with a reason: it and every other member get the Remove, and
    nothing of it is relayed from now on."""
    why = clean_text(reason, limit=REASON_MAX, what="reason")
    if not why:
        raise Invalid("a removal says why (reason)", field="reason")
    now = node.clock.now()

    def unit(conn: Connection) -> Member:
        network = _network(conn, name)
        member = _member(conn, network, actor)
        if member.state is not State.MEMBER:
            raise Conflict(f"{actor} is not a member of {name} ({member.state})")
        _end(conn, node, network, member, State.REMOVED, why, now=now, tell_it=True)
        return _member(conn, network, actor)

    member = await node.db.write(unit)
    node.delivery_wakeup.set()
    return member


def _end(
    conn: Connection,
    node: Node,
    network: Network,
    member: Member,
    state: State,
    reason: str,
    *,
    now: datetime,
    tell_it: bool,
) -> None:
    """A membership ends (removed, left): the row moves, the member's relayed offers
    leave the directory, and the members (the removed co-op too, if ``tell_it``) get a
    Remove."""
    store.set_state(conn, member.id, state, now=now, reason=reason, was=(State.MEMBER,))
    inboxes = store.member_inboxes(conn, network.id)
    if tell_it:
        inboxes.append(member.inbox)
    removed = wire.roster_change(
        node.urls,
        node.urls.actor(network.name),
        "Remove",
        member,
        collection=node.urls.members(network.name),
        reason=reason,
    )
    outbox.publish(
        conn,
        removed,
        actor_id=network.actor_pk,
        inboxes=inboxes,
        now=now,
        policy=node.peers.policy,
    )


async def on_leave(node: Node, item: InboxItem) -> None:
    """A co-op leaves: at once it stops receiving and being relayed; the other members
    are told. A waiting application is withdrawn the same way."""
    name = network_named(node, actor_id(item.activity.get("object")))
    if name is None:
        return
    now = node.clock.now()

    def unit(conn: Connection) -> None:
        network = store.find_network(conn, name)
        if network is None:
            return
        member = store.get_member(conn, network.id, item.actor)
        if member is None:
            return
        if member.state is State.MEMBER:
            _end(conn, node, network, member, State.LEFT, "", now=now, tell_it=False)
        elif member.state is State.PENDING:
            store.set_state(conn, member.id, State.LEFT, now=now, was=(State.PENDING,))

    await node.db.write(unit)
    node.delivery_wakeup.set()


# --- relaying -------------------------------------------------------------------------------


async def relay(node: Node, item: InboxItem) -> None:
    """A member's public Create, Update or Delete (of an offer or a proposal): announced
    to every other member of each network hosted here that it belongs to, once per
    shared inbox. Anything else, or from anyone else, is not relayed."""
    activity = item.activity
    if item.type not in wire.RELAYED or not wire.is_public(activity):
        return
    obj = activity.get("object")
    object_id = actor_id(obj)
    if object_id is None or object_id == item.actor or not same_origin(object_id, item.actor):
        return  # an actor's own Update or Delete, or someone else's object
    if isinstance(obj, dict) and obj.get("attributedTo") not in (None, item.actor):
        return
    listed = listing(obj) if item.type != "Delete" else None
    if item.type != "Delete" and listed is None and not _is_question(obj):
        return  # neither an offer nor a proposal
    # Read first: most offers a node receives are not a hosted network's to relay.
    if not await node.db.read(lambda conn: store.member_of(conn, item.actor)):
        return
    now, policy = node.clock.now(), node.peers.policy

    def unit(conn: Connection) -> int:
        sent = 0
        for network, member_id in store.member_of(conn, item.actor):
            if item.type == "Delete":
                store.unlist_offer(conn, member_id, object_id)
            elif listed is not None:
                store.list_offer(conn, member_id, uri=object_id, name=listed, now=now)
            announced = wire.announce(
                node.urls,
                node.urls.actor(network.name),
                activity,
                collection=node.urls.members(network.name),
            )
            sent += outbox.publish(
                conn,
                announced,
                actor_id=network.actor_pk,
                inboxes=store.member_inboxes(conn, network.id, leaving_out=item.actor),
                now=now,
                policy=policy,
                public=True,
                ordering_key=object_id,
            )
        return sent

    if await node.db.write(unit):
        node.delivery_wakeup.set()


def listing(obj: object) -> str | None:
    """An offer's name, for the directory; None if ``obj`` is not an embedded offer."""
    if not isinstance(obj, dict):
        return None
    if obj.get("type") != "Proposal" and "publishes" not in obj:
        return None
    name = obj.get("name")
    if not isinstance(name, str):
        return ""
    try:
        return clean_text(name[:1000], limit=1000, what="name")[:255]
    except Invalid:
        return ""


def _is_question(obj: object) -> bool:
    return isinstance(obj, dict) and obj.get("type") == "Question"
