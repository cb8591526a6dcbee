"""The co-op's side of networks: applying and leaving, each network's roster, and what
a network relays, taken into the catalogue only as its origin published it.

What a network sends is believed only from a network the co-op applied to (Accept,
Reject) or belongs to (Add, Remove, Announce). An announced offer must come from a
co-op the network lists, and be that co-op's: its FEP-8b32 proof verifies with a key of
the co-op's, or it is fetched again from the co-op's server. A network cannot make the
co-op publish, sign or count anything: relayed offers go to the catalogue only.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from federation.errors import FederationError, MalformedInput, RemoteNotFound, unreachable_now
from federation.inbox import actor_id, host_of
from federation.origins import same_origin
from node.catalogue import store as catalogue
from node.errors import Conflict, Invalid, NotFound
from node.follows import store as follows
from node.networks import store, wire
from node.networks.model import (
    DISPLAY_NAME_MAX,
    REGION_MAX,
    ROSTER_MAX,
    SECTOR_MAX,
    Membership,
    RosterEntry,
    State,
    clean_text,
)
from node.offers import backfill
from node.offers import inbound as offers
from node.runtime import Node
from node.services import integrity, outbox
from node.services.inbox import InboxItem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Pages of a network's members collection read at admission.
ROSTER_PAGES = 100
# Backfill walks started at once when the co-op is admitted (the rest are started by
# the network's Adds, or when their offers arrive).
WALKS_AT_ADMISSION = 500


@dataclass(frozen=True, slots=True)
class JoinResult:
    network: str
    join_id: str
    # False when the co-op was already a member or its application waits.
    sent: bool
    state: State


async def join(
    node: Node, target: str, *, sector: object = None, region: object = None
) -> JoinResult:
    """Apply to the network behind a handle or URL: a Join sent, the membership
    pending until the network answers."""
    where = clean_text(sector, limit=SECTOR_MAX, what="sector")
    area = clean_text(region, limit=REGION_MAX, what="region")
    document = await node.peers.resolve(target)
    network = str(document["id"])
    node.peers.ensure_allowed(network)
    coop = node.urls.actor(node.settings.handle)
    if network == coop:
        raise Conflict("a co-op cannot join itself")
    # A co-op's own Group has members too: a network also says how it admits them.
    if (
        document.get("type") != "Group"
        or not isinstance(document.get("members"), str)
        or document.get("admission") not in ("admin", "vote")
    ):
        raise Invalid(f"{target} is not a network of co-ops", field="network")
    inbox = document.get("inbox")
    if not isinstance(inbox, str) or not same_origin(inbox, network):
        raise Invalid(f"{target} has no inbox on its own server", field="network")
    try:
        shown = clean_text(document.get("name"), limit=DISPLAY_NAME_MAX, what="name")
    except Invalid:
        shown = ""
    activity = wire.join(node.urls, coop, network, sector=where, region=area)
    coop_id, now, policy = node.peers.coop_id, node.clock.now(), node.peers.policy

    def unit(conn: Connection) -> JoinResult:
        existing = store.start_membership(
            conn,
            network=network,
            host=host_of(network),
            name=shown or network,
            inbox=inbox,
            join_id=activity["id"],
            sector=where,
            region=area,
            now=now,
        )
        if existing is not None:
            return JoinResult(network, existing.join_id, sent=False, state=existing.state)
        outbox.publish(conn, activity, actor_id=coop_id, inboxes=[inbox], now=now, policy=policy)
        return JoinResult(network, activity["id"], sent=True, state=State.PENDING)

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


async def leave(node: Node, network: str) -> Membership:
    """Leave a network (or withdraw an application): a Leave sent; at once nothing more
    is taken from it, and the offers that came only through it leave the catalogue."""
    coop = node.urls.actor(node.settings.handle)
    coop_id, now, policy = node.peers.coop_id, node.clock.now(), node.peers.policy

    def unit(conn: Connection) -> Membership:
        found = store.membership(conn, network)
        if found is None or found.state not in (State.MEMBER, State.PENDING):
            raise NotFound(f"this co-op neither belongs nor applied to {network}")
        relayed = store.relayed_actors(conn, found.id)
        left = store.settle_membership(conn, network, State.LEFT, now=now, was=(found.state,))
        assert left is not None
        _forget(conn, coop_id, relayed)
        outbox.publish(
            conn,
            wire.leave(node.urls, coop, network),
            actor_id=coop_id,
            inboxes=[found.inbox],
            now=now,
            policy=policy,
        )
        return left

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


def _forget(conn: Connection, coop_id: int, actors: list[str]) -> int:
    """The catalogue's offers of ``actors`` that no longer belong there: neither
    followed nor listed by another network of the co-op's."""
    removed = 0
    for actor in actors:
        if networks_or_follow(conn, coop_id, actor):
            continue
        removed += catalogue.remove_actor(conn, actor)
    return removed


def networks_or_follow(conn: Connection, coop_id: int, actor: str) -> bool:
    state = follows.following_state(conn, actor_id=coop_id, followed=actor)
    return state == follows.ACCEPTED or store.relays(conn, actor)


# --- what a network says --------------------------------------------------------------------


async def on_answer(node: Node, item: InboxItem) -> None:
    """A network accepted or refused the co-op's application (its Join, by id or by
    its two actors)."""
    join_id, joiner, joined = wire.answered_join(item.activity)
    coop = node.urls.actor(node.settings.handle)
    found = await node.db.read(lambda conn: store.membership(conn, item.actor))
    if found is None or found.state not in (State.PENDING, State.MEMBER):
        return  # the co-op did not apply to the sender
    if join_id != found.join_id and not (joiner == coop and joined == item.actor):
        log.info("networks: %s answers %s, not our Join", item.actor, join_id)
        return
    now = node.clock.now()
    if item.type == "Reject":
        reason = wire.read_reason(item.activity)
        await node.db.write(
            lambda conn: store.settle_membership(
                conn, item.actor, State.REFUSED, now=now, reason=reason, was=(State.PENDING,)
            )
        )
        return
    if found.state is State.MEMBER:
        return  # answered again: nothing changes
    entries = await _read_roster(node, item.actor)

    def unit(conn: Connection) -> None:
        settled = store.settle_membership(
            conn, item.actor, State.MEMBER, now=now, was=(State.PENDING,)
        )
        if settled is None:
            return
        store.add_to_roster(conn, settled.id, [e for e in entries if e.actor != coop])

    await node.db.write(unit)
    await _walk(node, [e.actor for e in entries if e.actor != coop][:WALKS_AT_ADMISSION])


async def network_coops(node: Node, network: str, *, at: datetime) -> list[str]:
    """The co-ops a network the co-op belongs to lists as members at ``at``, read from
    the network now: the electorate of a network-wide proposal, fixed when it is made
    (this co-op itself included, when the network lists it)."""
    found = await node.db.read(lambda conn: store.membership(conn, network))
    if found is None or found.state is not State.MEMBER:
        raise Invalid(f"this co-op is not a member of {network}", field="network")
    entries = await _read_roster(node, network, strict=True)
    return [e.actor for e in entries if e.since is not None and e.since <= at]


async def _read_roster(node: Node, network: str, *, strict: bool = False) -> list[RosterEntry]:
    """The members a network's collection lists, page by page, bounded."""
    try:
        document = await node.peers.actor(network)
        collection = document.get("members")
        if not isinstance(collection, str) or not same_origin(collection, network):
            return []
        page: Any = await node.peers.fetch(collection)
        first = page.get("first")
        if first is not None:
            page = (
                first if isinstance(first, dict) else await node.peers.fetch(str(actor_id(first)))
            )
        found: dict[str, RosterEntry] = {}
        for _ in range(ROSTER_PAGES):
            items = page.get("orderedItems", page.get("items", []))
            for raw in items if isinstance(items, list) else []:
                entry = wire.read_member(raw)
                if entry is not None:
                    found.setdefault(entry.actor, entry)
            if len(found) >= ROSTER_MAX:
                break
            following = actor_id(page.get("next"))
            if following is None or not same_origin(following, network):
                break
            page = await node.peers.fetch(following)
        return list(found.values())[:ROSTER_MAX]
    except FederationError as exc:
        if strict:
            raise Invalid(
                f"the members of {network} could not be read: {exc}", field="network"
            ) from exc
        if unreachable_now(exc):
            raise  # read again when the inbox tries the activity again
        log.info("networks: the members of %s could not be read: %s", network, exc)
        return []


async def _walk(node: Node, actors: list[str]) -> None:
    """Start importing the existing offers of co-ops the network lists."""
    gate = asyncio.Semaphore(4)

    async def one(actor: str) -> None:
        async with gate:
            try:
                await backfill.on_accepted(node, actor)
            except FederationError as exc:
                log.info("networks: the offers of %s not walked: %s", actor, exc)

    await asyncio.gather(*(one(actor) for actor in actors))


async def on_roster_change(node: Node, item: InboxItem) -> None:
    """A network the co-op belongs to added or removed a member: the roster follows.
    The co-op itself removed: its membership ends, the reason kept."""
    found = await node.db.read(lambda conn: store.membership(conn, item.actor))
    if found is None or found.state is not State.MEMBER:
        return
    entry = wire.read_member(item.activity.get("object"))
    if entry is None:
        raise MalformedInput("an Add or Remove of a network names a co-op's actor")
    coop = node.urls.actor(node.settings.handle)
    coop_id, now = node.peers.coop_id, node.clock.now()
    if item.type == "Add":
        if entry.actor == coop:
            return
        # Its existing offers come from the network, which introduces them.
        await node.db.write(lambda conn: store.add_to_roster(conn, found.id, [entry]))
        return
    reason = wire.read_reason(item.activity)

    def unit(conn: Connection) -> None:
        if entry.actor == coop:
            relayed = store.relayed_actors(conn, found.id)
            store.settle_membership(
                conn, item.actor, State.REMOVED, now=now, reason=reason, was=(State.MEMBER,)
            )
            _forget(conn, coop_id, relayed)
        elif store.remove_from_roster(conn, found.id, entry.actor):
            _forget(conn, coop_id, [entry.actor])

    await node.db.write(unit)


def _relayed(item: InboxItem) -> dict[str, Any]:
    """What an ``Announce`` relays, as an activity: a member's Create, Update or
    Delete, or (for an offer the network introduces, a newcomer's published before it
    joined) a Create of it by its author, whose proof or server vouches for it."""
    inner = wire.read_announced(item.activity)
    if inner.get("type") in wire.INTRODUCED:
        inner = {"type": "Create", "actor": inner.get("attributedTo"), "object": inner}
        if not isinstance(inner["actor"], str):
            raise MalformedInput("an introduced offer names no author")
    return inner


def _signed_offer(document: object, origin: str) -> dict[str, Any] | None:
    """The relayed object, if it is an offer to check by its proof: None for what is
    not for the catalogue (a proposal, a post); an offer not on its author's server is
    refused."""
    if not isinstance(document, dict) or not offers.may_be_offer(document):
        return None
    object_id = actor_id(document)
    if object_id is None or not same_origin(object_id, origin):
        raise MalformedInput(f"{origin} cannot publish {object_id}")
    if document.get("type") == "Question":
        return None  # network-wide proposals are governance's (not for the catalogue)
    return document


async def on_announce(node: Node, item: InboxItem) -> None:
    """A network relays a member's Create, Update or Delete. Ignored unless the co-op
    belongs to the network and the network lists the activity's actor; the object is
    then taken only as its origin published it."""
    inner = _relayed(item)
    origin = str(inner["actor"])
    if origin == node.urls.actor(node.settings.handle):
        return  # our own offer, back from the network
    # Whether the co-op belongs to the network and the network lists the actor.
    if not await node.db.read(lambda conn: store.relays(conn, origin, network=item.actor)):
        log.info("networks: %s relays %s, which is not a member we know of", item.actor, origin)
        return
    if inner["type"] == "Delete":
        await _relayed_delete(node, inner, origin)
        return
    document = inner.get("object")
    if isinstance(document, str):
        document = await _from_origin(node, document, origin)
    document = _signed_offer(document, origin)
    if document is None:
        return
    if "proof" in document:
        await integrity.verify_by(
            node, document, origin, what="relayed offer", context=inner.get("@context")
        )
    else:
        document = await _from_origin(node, str(actor_id(document)), origin)
    await offers.take_relayed(node, document, origin)


async def take_announces(node: Node, items: list[InboxItem]) -> dict[int, Exception | None]:
    """The round's relayed offers, taken together: each checked as :func:`on_announce`
    checks it, those that carry a proof stored in one unit of work (a busy network
    brings them by the hundred). What it leaves (a Delete, an offer without a proof, a
    bare link) goes to :func:`on_announce`, one at a time."""
    coop = node.urls.actor(node.settings.handle)
    now = node.clock.now()
    outcome: dict[int, Exception | None] = {}
    planned: list[tuple[InboxItem, str, dict[str, Any]]] = []
    for item in items:
        try:
            inner = _relayed(item)
        except MalformedInput as exc:
            outcome[item.id] = exc
            continue
        document = inner.get("object")
        if inner["type"] == "Delete" or not isinstance(document, dict):
            continue
        if "proof" not in document:
            continue
        planned.append((item, str(inner["actor"]), inner))
    pairs = {(item.actor, origin) for item, origin, _ in planned}
    listed = await node.db.read(lambda conn: store.relayed_pairs(conn, pairs))
    entries = []
    stored: list[int] = []
    for item, origin, inner in planned:
        if origin == coop or (item.actor, origin) not in listed:
            outcome[item.id] = None  # our own, or not a member we know of: left
            continue
        try:
            document = _signed_offer(inner["object"], origin)
            if document is None:
                outcome[item.id] = None
                continue
            await integrity.verify_by(
                node, document, origin, what="relayed offer", context=inner.get("@context")
            )
            entry = offers.relayed_entry(document, origin, now=now)
        except Exception as exc:  # this one alone is refused, as its handler would be
            outcome[item.id] = exc
            continue
        if entry is None:
            outcome[item.id] = None
            continue
        entries.append(entry)
        stored.append(item.id)
    if entries:
        await offers.take_relayed_many(node, entries)
    outcome.update(dict.fromkeys(stored))
    return outcome


async def _from_origin(node: Node, object_id: str, origin: str) -> dict[str, Any]:
    if not same_origin(object_id, origin):
        raise MalformedInput(f"{origin} cannot publish {object_id}")
    document = await node.peers.fetch(object_id)
    if document.get("attributedTo") != origin:
        raise MalformedInput(f"{object_id} as its server serves it is not {origin}'s")
    return document


async def _relayed_delete(node: Node, inner: dict[str, Any], origin: str) -> None:
    """A relayed Delete is believed once the origin says so: the object is gone there."""
    target = actor_id(inner.get("object"))
    if target is None or not same_origin(target, origin) or target == origin:
        return
    try:
        document = await node.peers.fetch(target)
    except RemoteNotFound:
        document = {"type": "Tombstone"}
    if document.get("type") == "Tombstone":
        await offers.withdraw_relayed(node, target, origin)
