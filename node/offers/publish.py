"""Publishing the co-op's offers: create, change, withdraw.

Publishing writes the offer to the catalogue and its activities to the outbox in one
unit of work: ``Create``, ``Update`` or ``Delete`` of the FEP-0837 ``Proposal`` to every
follower, and of the readable ``Note`` companion to followers whose servers do not say
(FEP-844e ``implements``) that they read our vocabulary. Every activity about one object
shares an ordering key, so peers receive them in the order they were made. The member
who publishes an offer is recorded as its author (``offers.author_id``); only the author
or an admin may change or withdraw it (:class:`Changer`).

(Taking in the offers of the co-ops this node follows is :mod:`node.offers.inbound`'s.)
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from federation.jsonld import AS_CONTEXT_URL
from node import activities
from node.catalogue import store as catalogue
from node.catalogue.entries import local_entry
from node.documents import IMPLEMENTS
from node.errors import Forbidden, Invalid, NotFound
from node.follows import store as follows
from node.networks import store as networks
from node.offers import store
from node.offers.model import Offer
from node.offers.validation import apply_update, offer_to_input, parse_offer_input
from node.offers.wire import to_note, to_proposal
from node.orders import store as orders_store
from node.runtime import Node
from node.services import integrity, media, outbox

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

VOCABULARY = str(IMPLEMENTS[0]["href"])

NOT_THE_AUTHOR = "only its author or an admin may change this offer"


@dataclass(frozen=True, slots=True)
class Changer:
    """Who asks to change one of the co-op's offers: an admin may change any of them,
    anyone else only those whose author they are (``member_id``)."""

    member_id: int | None
    admin: bool = False

    def may_change(self, author_id: int | None) -> bool:
        return self.admin or (self.member_id is not None and author_id == self.member_id)


def author_of(conn: Connection, node: Node, key: str) -> int | None:
    """The member who published the co-op's offer ``key`` (``None`` when no member
    did); :class:`NotFound` if the co-op has no such offer."""
    found = store.find_editable(conn, node.urls.offer(key))
    if found is None:
        raise NotFound(f"this co-op has no offer {key!r}")
    return found.author_id


def _check_changer(conn: Connection, node: Node, key: str, by: Changer | None) -> None:
    if by is None:
        return  # the node's operator (the command line)
    if not by.may_change(author_of(conn, node, key)):
        raise Forbidden(NOT_THE_AUTHOR)


# --- our offers -----------------------------------------------------------------------


def _documents(
    node: Node, offer: Offer, key: str, published: datetime, updated: datetime | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    handle = node.settings.handle
    common: dict[str, Any] = {
        "actor": node.urls.actor(handle),
        "published": published,
        "updated": updated,
        "followers": node.urls.followers(handle),
        "hashtag_href": node.urls.tag,
    }
    uri = node.urls.offer(key)
    proposal = to_proposal(offer, id=uri, **common)
    note = to_note(offer, id=node.urls.offer_note(key), proposal_id=uri, **common)
    return proposal, note


def _publish_pair(
    node: Node,
    conn: Connection,
    kind: str,
    proposal: dict[str, Any],
    note: dict[str, Any],
    now: datetime,
) -> None:
    coop_id = node.peers.coop_id
    # The Proposal to every follower, the Note to those whose server does not declare
    # that it reads our vocabulary.
    everyone, readers = follows.audiences(conn, actor_id=coop_id, vocabulary=VOCABULARY)
    # The networks the co-op belongs to relay its offers to their other members.
    everyone = [*everyone, *networks.network_inboxes(conn)]
    for document, inboxes in ((proposal, everyone), (note, readers)):
        activity = activities.about_object(
            node.urls,
            kind,
            document,
            actor=node.urls.actor(node.settings.handle),
            followers=node.urls.followers(node.settings.handle),
        )
        outbox.publish(
            conn,
            activity,
            actor_id=coop_id,
            inboxes=inboxes,
            now=now,
            policy=node.peers.policy,
            public=True,
            ordering_key=str(document["id"]),
        )


def _store_and_publish(
    node: Node,
    conn: Connection,
    kind: str,
    offer: Offer,
    key: str,
    *,
    published: datetime,
    now: datetime,
) -> dict[str, Any]:
    """Write our offer to the catalogue and announce it (``Create`` or ``Update``), in
    the caller's unit of work; returns what the API answers."""
    proposal, note = _documents(node, offer, key, published, None if kind == "Create" else now)
    # Signed as the co-op (FEP-8b32), so that a network relaying it needs no fetch.
    proposal = integrity.sign_as(conn, node, node.settings.handle, proposal, created=now)
    source = offer_to_input(offer)
    entry = local_entry(
        offer,
        uri=proposal["id"],
        actor=proposal["attributedTo"],
        document=proposal,
        source=source,
        published=published,
        updated=now,
    )
    catalogue.put(conn, entry, now=now)
    _publish_pair(node, conn, kind, proposal, note, now)
    return {"id": key, "uri": proposal["id"], "offer": source, "proposal": proposal}


def _count_stock(conn: Connection, uri: str, available: Decimal | None, now: datetime) -> None:
    """The stock orders hold their quantities out of (node.orders.store), as the
    offer's author set it."""
    shown = store.shown_local(conn, uri)
    if shown is not None:
        orders_store.set_stock(conn, shown.id, available, now=now, announced=True)


def _with_uploads(conn: Connection, node: Node, data: Any) -> Any:
    """The input with each image named by ``media_id`` (an upload to this node) filled
    in from the upload itself: its URL, type and size are the node's, not the member's
    say. An id with no upload is refused, naming the image."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        return data
    images = []
    for n, image in enumerate(data["images"]):
        if isinstance(image, dict) and isinstance(image.get("media_id"), str):
            found = media.find(conn, image["media_id"])
            if found is None:
                raise Invalid(
                    "no upload with this id on this node (POST /api/v1/media first)",
                    field=f"images[{n}].media_id",
                )
            image = {
                "description": found.description,
                **image,
                "url": node.urls.media(found.key, found.extension),
                "media_type": found.media_type,
                "size": found.size,
            }
        images.append(image)
    return {**data, "images": images}


async def create_offer(node: Node, data: Any, *, author_id: int | None = None) -> dict[str, Any]:
    """Publish a new offer from the JSON API's input; returns its stored form.
    ``author_id`` is the member who publishes it (members.id), if a member does."""
    now = node.clock.now()
    data = await node.db.read(lambda conn: _with_uploads(conn, node, data))
    offer = parse_offer_input(data, now=now)
    key = uuid.uuid4().hex

    def unit(conn: Connection) -> dict[str, Any]:
        result = _store_and_publish(node, conn, "Create", offer, key, published=now, now=now)
        if author_id is not None:
            store.set_author(conn, node.urls.offer(key), author_id)
        _count_stock(conn, node.urls.offer(key), offer.available, now)
        return result

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


def _load_local(conn: Connection, node: Node, key: str) -> tuple[Offer, datetime]:
    row = store.find_own_input(conn, node.urls.offer(key))
    if row is None or row.source is None:
        raise NotFound(f"this co-op has no offer {key!r}")
    # Read back as it was validated, at the time it was last changed.
    offer = parse_offer_input(json.loads(row.source), now=row.updated)
    return offer, row.published


async def update_offer(
    node: Node, key: str, data: Any, *, by: Changer | None = None
) -> dict[str, Any]:
    """Change an offer (stock, price, expiry...); followers get an ``Update``. With
    ``by``, only its author or an admin may (else :class:`Forbidden`)."""
    now = node.clock.now()

    def unit(conn: Connection) -> dict[str, Any]:
        _check_changer(conn, node, key, by)
        offer, published = _load_local(conn, node, key)
        if offer.withdrawn:
            raise NotFound(f"the offer {key!r} was withdrawn")
        changed = apply_update(offer, _with_uploads(conn, node, data), now=now)
        result = _store_and_publish(
            node, conn, "Update", changed, key, published=published, now=now
        )
        if changed.available != offer.available:
            # The member says how many are left: orders count down from there.
            _count_stock(conn, node.urls.offer(key), changed.available, now)
        return result

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


async def announce_stock(node: Node, uri: str, available: Decimal | None) -> bool:
    """Followers get an ``Update`` of the offer at ``uri`` with the stock orders left
    (``availableQuantity``); False if it is withdrawn or not ours."""
    now = node.clock.now()
    key = uri.rsplit("/", 1)[-1]
    if node.urls.offer(key) != uri:
        return False

    def unit(conn: Connection) -> bool:
        try:
            offer, published = _load_local(conn, node, key)
        except NotFound:
            return False
        if offer.withdrawn or offer.available == available:
            return False
        changed = replace(offer, available=available)
        _store_and_publish(node, conn, "Update", changed, key, published=published, now=now)
        return True

    sent = await node.db.write(unit)
    if sent:
        node.delivery_wakeup.set()
    return sent


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def tombstone(uri: str, former: str, deleted: datetime) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT_URL,
        "id": uri,
        "type": "Tombstone",
        "formerType": former,
        "deleted": deleted.isoformat().replace("+00:00", "Z"),
    }


async def withdraw_offer(node: Node, key: str, *, by: Changer | None = None) -> None:
    """Withdraw an offer: it stays at its id as a ``Tombstone``; followers get a
    ``Delete``. With ``by``, only its author or an admin may (else :class:`Forbidden`)."""
    now = node.clock.now()
    uri = node.urls.offer(key)
    actor = node.urls.actor(node.settings.handle)

    def unit(conn: Connection) -> None:
        _check_changer(conn, node, key, by)
        offer, _ = _load_local(conn, node, key)
        if offer.withdrawn:
            return  # already gone: nothing to say again
        if not catalogue.withdraw(conn, uri, actor=actor, now=now):
            raise NotFound(f"this co-op has no offer {key!r}")
        source = {**offer_to_input(offer), "status": "withdrawn"}
        store.set_source(conn, uri, json.dumps(source, ensure_ascii=False))
        _publish_pair(
            node,
            conn,
            "Delete",
            tombstone(uri, "Proposal", now),
            tombstone(node.urls.offer_note(key), "Note", now),
            now,
        )
        # The outbox no longer lists its Creates: its pages need not read past them.
        outbox.unlist(
            conn, actor_id=node.peers.coop_id, object_ids=[uri, node.urls.offer_note(key)]
        )

    await node.db.write(unit)
    node.delivery_wakeup.set()
