"""Offers between co-ops: publishing ours, and taking in those of the co-ops we follow.

Publishing writes the offer to the catalogue and its activities to the outbox in one
unit of work: ``Create``, ``Update`` or ``Delete`` of the FEP-0837 ``Proposal`` to every
follower, and of the readable ``Note`` companion to followers whose servers do not say
(FEP-844e ``implements``) that they read our vocabulary. Every activity about one object
shares an ordering key, so peers receive them in the order they were made. The member
who publishes an offer is recorded as its author (``offers.author_id``); only the author
or an admin may change or withdraw it (:class:`Changer`).

Taking in: an offer is stored only from a co-op this node follows, only by its origin
(the object's id on the sending actor's host, attributed to that actor), and validated
as FEP-0837 before it reaches the catalogue.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from federation.inbox import actor_id
from federation.jsonld import AS_CONTEXT_URL
from federation.origins import same_origin
from node import activities
from node.catalogue import store as catalogue
from node.catalogue.entries import local_entry, remote_entry
from node.documents import IMPLEMENTS
from node.errors import Forbidden, Invalid, NotFound
from node.follows import store as follows
from node.offers import (
    Offer,
    RemoteOfferError,
    apply_update,
    from_proposal,
    offer_to_input,
    parse_offer_input,
    to_note,
    to_proposal,
)
from node.runtime import Node
from node.services import media, outbox
from node.services.inbox import InboxItem
from node.storage.tables import followers, members, offers, remote_actors

log = logging.getLogger(__name__)

VOCABULARY = str(IMPLEMENTS[0]["href"])


class NotTheOrigin(Exception):
    """An offer sent by an actor that did not publish it: refused, nothing changes."""


NOT_THE_AUTHOR = "only its author or an admin may change this offer"


@dataclass(frozen=True, slots=True)
class Changer:
    """Who asks to change one of the co-op's offers: an admin may change any of them,
    anyone else only those whose author they are (``member_id``)."""

    member_id: int | None
    admin: bool = False

    def may_change(self, author_id: int | None) -> bool:
        return self.admin or (self.member_id is not None and author_id == self.member_id)


def member_of_actor(conn: Connection, actor_id: int | None) -> int | None:
    """The current member whose actor is ``actor_id`` (an API token's), or ``None``."""
    if actor_id is None:
        return None
    found = conn.execute(
        select(members.c.id).where(
            members.c.actor_id == actor_id,
            members.c.left_at.is_(None),
            members.c.state == "confirmed",
        )
    ).scalar()
    return None if found is None else int(found)


def author_of(conn: Connection, node: Node, key: str) -> int | None:
    """The member who published the co-op's offer ``key`` (``None`` when no member
    did); :class:`NotFound` if the co-op has no such offer."""
    row = conn.execute(
        select(offers.c.author_id).where(offers.c.uri == node.urls.offer(key), offers.c.local == 1)
    ).first()
    if row is None:
        raise NotFound(f"this co-op has no offer {key!r}")
    return None if row.author_id is None else int(row.author_id)


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


def _audiences(conn: Connection, coop_id: int) -> tuple[list[str], list[str]]:
    """Inboxes for the Proposal (every follower) and for the Note (followers whose
    server does not declare our vocabulary), each collapsed to shared inboxes. The
    database looks for the vocabulary in each stored actor; the documents stay there."""
    declares = remote_actors.c.document.contains(VOCABULARY, autoescape=True)
    rows = conn.execute(
        select(followers.c.inbox, followers.c.shared_inbox, declares.label("reads_offers"))
        .select_from(
            followers.outerjoin(remote_actors, remote_actors.c.uri == followers.c.follower)
        )
        .where(followers.c.actor_id == coop_id, followers.c.state == follows.ACCEPTED)
    ).all()
    everyone: dict[str, None] = {}
    readers: dict[str, None] = {}
    for row in rows:
        inbox = row.shared_inbox or row.inbox
        everyone[inbox] = None
        if not row.reads_offers:  # also None: an actor we never stored
            readers[inbox] = None
    return list(everyone), list(readers)


def _publish_pair(
    node: Node,
    conn: Connection,
    kind: str,
    proposal: dict[str, Any],
    note: dict[str, Any],
    now: datetime,
) -> None:
    coop_id = node.peers.coop_id
    everyone, readers = _audiences(conn, coop_id)
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
            conn.execute(
                offers.update()
                .where(offers.c.uri == node.urls.offer(key))
                .values(author_id=author_id)
            )
        return result

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


def _load_local(conn: Connection, node: Node, key: str) -> tuple[Offer, datetime]:
    row = conn.execute(
        select(offers.c.source, offers.c.published, offers.c.updated, offers.c.status).where(
            offers.c.uri == node.urls.offer(key), offers.c.local == 1
        )
    ).first()
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
        return _store_and_publish(node, conn, "Update", changed, key, published=published, now=now)

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


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
        conn.execute(
            offers.update()
            .where(offers.c.uri == uri)
            .values(source=json.dumps(source, ensure_ascii=False))
        )
        _publish_pair(
            node,
            conn,
            "Delete",
            tombstone(uri, "Proposal", now),
            tombstone(node.urls.offer_note(key), "Note", now),
            now,
        )

    await node.db.write(unit)
    node.delivery_wakeup.set()


# --- peers' offers --------------------------------------------------------------------


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
    coop_id = node.peers.coop_id
    state = await node.db.read(
        lambda conn: follows.following_state(conn, actor_id=coop_id, followed=actor)
    )
    return state == follows.ACCEPTED


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


async def on_delete(node: Node, item: InboxItem) -> bool:
    """A Delete of an offer: withdrawn in the catalogue. False if it was not one."""
    target = actor_id(item.activity.get("object"))
    if target is None or target == item.actor:
        return False
    now = node.clock.now()
    return await node.db.write(
        lambda conn: catalogue.withdraw(conn, target, actor=item.actor, now=now)
    )
