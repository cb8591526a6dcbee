"""Taking in the offers of the co-ops this node follows.

An offer is stored only from a co-op this node follows (or one a network the co-op
belongs to lists, whose offers the network also relays), only by its origin (the
object's id on the sending actor's host, attributed to that actor), and validated as
FEP-0837 before it reaches the catalogue. It arrives in a ``Create`` or ``Update``, is
withdrawn by a ``Delete``, and is also read from the links of a followed actor's profile
(Mitra's way) when the actor accepts our follow or changes its profile; an accepted
follow also starts the walk of the actor's existing offers (:mod:`node.offers.backfill`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from federation.errors import FederationError, NotAuthorized
from federation.inbox import actor_id
from federation.origins import same_origin
from federation.storable import storable
from node.catalogue import store as catalogue
from node.catalogue.entries import remote_entry
from node.catalogue.store import Entry
from node.follows import inbound as follows_inbound
from node.follows import store as follows
from node.inbox.feature import Inbound, Kind, anything, message_of
from node.networks import store as networks
from node.offers import backfill
from node.offers.remote import RemoteOfferError, linked_proposals
from node.offers.wire import from_proposal
from node.runtime import Node
from node.services.inbox import InboxItem
from node.urls import Urls

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

OFFER = "offer"
# The offers an actor links from its profile (see take_linked_offers): fetched this
# many at a time, and all within this many seconds.
LINKED_OFFERS_AT_ONCE = 4
LINKED_OFFERS_SECONDS = 20


class NotTheOrigin(NotAuthorized):
    """An offer sent by an actor that did not publish it: refused, nothing changes."""


def may_be_offer(value: Any) -> bool:
    """An activity's object that could be an offer: one embedded as such, or a bare
    reference (known only once fetched)."""
    if isinstance(value, str):
        return True
    return isinstance(value, dict) and (len(value) <= 1 or _is_offer(value))


def _is_offer(document: Any) -> bool:
    return isinstance(document, dict) and (
        document.get("type") == "Proposal" or "publishes" in document
    )


async def _object_of(node: Node, item: InboxItem) -> dict[str, Any] | None:
    """The activity's object as its origin serves it: the embedded copy when it is on
    the sender's host (the signature vouches for it), else fetched by its id."""
    embedded = item.activity.get("object")
    object_id = actor_id(embedded)
    if object_id is None:
        return None
    if not same_origin(object_id, item.actor):
        raise NotTheOrigin(f"{item.actor} sent {object_id}, which its host does not serve")
    if isinstance(embedded, dict) and len(embedded) > 1:
        return embedded
    return await node.peers.fetch(object_id)


async def _follows(node: Node, actor: str) -> bool:
    """Whether ``actor``'s offers belong in the catalogue: the co-op follows it, or a
    network the co-op belongs to lists it (its offers then come from either way)."""
    coop_id = node.peers.coop_id

    def takes(conn: Connection) -> bool:
        state = follows.following_state(conn, actor_id=coop_id, followed=actor)
        return state == follows.ACCEPTED or networks.relays(conn, actor)

    return await node.db.read(takes)


async def on_create_or_update(node: Node, item: InboxItem) -> None:
    """A followed co-op's offer, new or changed: into the catalogue."""
    if not may_be_offer(item.activity.get("object")):
        return  # a post, a reply, a vote: not for the catalogue
    if not await _follows(node, item.actor):
        return  # only the co-ops this node follows fill its catalogue
    document = await _object_of(node, item)
    if not _is_offer(document):
        return
    assert document is not None
    try:
        remote = from_proposal(document)
    except RemoteOfferError as exc:
        log.info("inbox: %s sent an offer we cannot read: %s", item.actor, exc)
        raise
    if remote.attributed_to != item.actor:
        raise NotTheOrigin(f"{remote.id} is attributed to {remote.attributed_to}, not the sender")
    now = node.clock.now()
    entry = remote_entry(remote, document=document, now=now)
    await node.db.write(lambda conn: catalogue.put(conn, entry, now=now))


def relayed_entry(document: dict[str, Any], origin: str, *, now: datetime) -> Entry | None:
    """The catalogue's entry of an offer a network relayed, already checked to be as
    ``origin`` published it (by its proof, or fetched from its origin); None if the
    document is not an offer. One that is not ``origin``'s is refused."""
    if not _is_offer(document):
        return None
    remote = from_proposal(document)
    if remote.attributed_to != origin or not same_origin(remote.id, origin):
        raise NotTheOrigin(f"{remote.id} is not {origin}'s to publish")
    return remote_entry(remote, document=document, now=now)


async def take_relayed(node: Node, document: dict[str, Any], origin: str) -> None:
    """An offer a network relayed (see :func:`relayed_entry`): into the catalogue, where
    an offer that also came straight from its co-op is the same row."""
    now = node.clock.now()
    entry = relayed_entry(document, origin, now=now)
    if entry is not None:
        await node.db.write(lambda conn: catalogue.put(conn, entry, now=now))


async def take_relayed_many(node: Node, entries: list[Entry]) -> None:
    """Many relayed offers' entries (:func:`relayed_entry`), in one unit of work."""
    now = node.clock.now()
    await node.db.write(lambda conn: catalogue.put_many(conn, entries, now=now))


async def withdraw_relayed(node: Node, uri: str, origin: str) -> bool:
    """An offer its origin no longer serves (checked by the caller), withdrawn."""
    now = node.clock.now()
    return await node.db.write(lambda conn: catalogue.withdraw(conn, uri, actor=origin, now=now))


async def on_delete(node: Node, item: InboxItem) -> bool:
    """A Delete of an offer: withdrawn in the catalogue. False if it was not one."""
    target = actor_id(item.activity.get("object"))
    if target is None or target == item.actor:
        return False
    now = node.clock.now()
    return await node.db.write(
        lambda conn: catalogue.withdraw(conn, target, actor=item.actor, now=now)
    )


# --- offers linked from a profile --------------------------------------------------------


async def on_follow_accepted(node: Node, item: InboxItem) -> None:
    """A co-op accepted our follow (the follows feature settled it just before): walk
    its existing offers, and take those its profile links, which no Create brings."""
    if not await follows_inbound.answers_our_follow(node, item):
        return
    await backfill.on_accepted(node, item.actor)
    try:
        # Fetched again: the stored copy of an actor keeps no attachments.
        document = await node.peers.fetch(item.actor)
    except FederationError as exc:
        log.info("inbox: no profile of %s to read offers from: %s", item.actor, exc)
        return
    await take_linked_offers(node, item, document)


async def take_linked_offers(node: Node, item: InboxItem, document: dict[str, Any]) -> None:
    """The FEP-0837 proposals a followed actor links from its profile (FEP-0ea0 payment
    links), into the catalogue. Mitra publishes its proposals this way only: each is
    taken as a Create naming it by id would be (only from an actor the co-op follows,
    fetched from the actor's server, attributed to the actor). One that cannot be taken
    is logged and left: the links are read again at the actor's next Update.

    The links are fetched a few at a time, and all of them together within
    LINKED_OFFERS_SECONDS: a slow server holds the worker's round that long at most,
    not ten fetches' deadlines one after another."""
    gate = asyncio.Semaphore(LINKED_OFFERS_AT_ONCE)

    async def take(url: str) -> None:
        as_create = replace(
            item, type="Create", activity={"type": "Create", "actor": item.actor, "object": url}
        )
        async with gate:
            try:
                await on_create_or_update(node, as_create)
            except FederationError as exc:
                shown = storable(message_of(exc))
                log.info("inbox: %s links the offer %s, not taken: %s", item.actor, url, shown)

    try:
        async with asyncio.timeout(LINKED_OFFERS_SECONDS):
            await asyncio.gather(
                *(take(url) for url in linked_proposals(document, owner=item.actor))
            )
    except TimeoutError:
        log.info(
            "inbox: the offers %s links took over %d s; the rest wait for its next Update",
            item.actor,
            LINKED_OFFERS_SECONDS,
        )


# --- what the inbox dispatches here --------------------------------------------------------


def _may_be_offer(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    return may_be_offer(activity.get("object"))


INBOUND = Inbound(
    name="offers",
    kinds=(
        Kind("Create", OFFER, _may_be_offer),
        # Last of all features: any other Update or Delete may be about an offer, and
        # the handler looks it up.
        Kind("Update", OFFER, anything),
        Kind("Delete", OFFER, anything),
    ),
    handlers={
        ("Create", OFFER): on_create_or_update,
        ("Update", OFFER): on_create_or_update,
        ("Delete", OFFER): on_delete,
        # After the follows feature has settled the follow.
        ("Accept", follows_inbound.FOLLOW): on_follow_accepted,
    },
    profile_readers=(take_linked_offers,),
)
