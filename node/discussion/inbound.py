"""What the inbox hands to the discussion threads:

- a ``Create`` of a ``Note`` in reply to something, with content (a reply without content
  and with a name is a vote, taken by governance first): kept when it answers one of our
  threads (a proposal of ours, a shared proposal we take part in, one of our offers, or
  a comment in one of them), from its author only, public only; under a thread this
  co-op hosts, the co-op relays it (``Announce``) to the thread's audience;
- an ``Announce`` of a comment by the co-op hosting a shared proposal we take part in:
  the Note is read from its origin (or taken embedded when the host is its origin);
- a ``Delete`` or ``Update`` of a comment, from its author (after offers, which take
  every other Delete and Update first); an ``Undo`` of the host's ``Announce``;
- a ``Flag`` (a report from another server, Mastodon's shape: ``object`` the reported
  account and notes, ``content`` the reason): for the admin's queue, when it names a
  comment of ours.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from federation.errors import MalformedInput, NotAuthorized
from federation.inbox import actor_id
from node.discussion import documents, store, threads
from node.discussion.store import Root
from node.follows import inbound as follows_inbound
from node.inbox.feature import Inbound, Kind, anything
from node.offers import inbound as offers_inbound
from node.offers.markdown import plain_text
from node.runtime import Node
from node.services.inbox import InboxItem
from node.urls import Urls

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

COMMENT = "comment"
REPORT = "report"
MAX_FLAG_OBJECTS = 50
# Reports one Flag makes at most (a Flag names an account and a few of its notes).
MAX_FLAG_REPORTS = 10
# Comments one account from another server may add to one thread in an hour.
PER_AUTHOR_HOURLY = 20
# And all the accounts of one server together.
PER_SERVER_HOURLY = 100
HOUR = timedelta(hours=1)
SHOWN_AS_OF = timedelta(days=1)
MAX_REASON = 1000


def _is_comment(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    obj = activity.get("object")
    return (
        isinstance(obj, dict)
        and obj.get("type") == "Note"
        and obj.get("inReplyTo") is not None
        and bool(obj.get("content"))
    )


def _announces_a_note(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    obj = activity.get("object")
    return isinstance(obj, str) or (isinstance(obj, dict) and obj.get("type") == "Note")


def _host(uri: str) -> str:
    return (urlsplit(uri).hostname or "").lower()


def _name(document: dict[str, Any], uri: str) -> str:
    for field in ("name", "preferredUsername"):
        value = document.get(field)
        if isinstance(value, str) and value.strip() and len(value) <= 255:
            return plain_text(value)[:255] or uri
    return uri


def _root_of(conn: Connection, in_reply_to: str, *, offers: bool) -> tuple[Root, str] | None:
    """The thread a reply joins: its root, and what it answers (the root, or a comment
    in the thread). Offers have threads where the co-op takes questions on them."""
    root = store.root_by_uri(conn, in_reply_to, offers_too=offers)
    if root is not None:
        return root, in_reply_to
    parent = store.by_uri(conn, in_reply_to)
    if parent is None or not parent.thread or parent.state == store.REMOVED:
        return None
    root = store.root_by_uri(conn, parent.thread, offers_too=offers)
    return None if root is None else (root, in_reply_to)


async def _keep(node: Node, note: documents.PeerNote, *, relayed_by: str | None) -> bool:
    """Store a peer's comment, when it joins one of our threads; relay it when this
    co-op hosts the thread. ``relayed_by``: the host that Announced it to us."""
    # Its server unreadable now: the activity is tried again later.
    author = await node.peers.actor(note.author)
    name = _name(author, note.author)
    now = node.clock.now()

    def write(conn: Connection) -> bool:
        found = _root_of(conn, note.in_reply_to, offers=node.settings.offer_questions)
        if found is None:
            return False
        root, in_reply_to = found
        if relayed_by is not None and (root.kind != "shared" or root.host != relayed_by):
            # Only the host of a shared thread relays its comments to us.
            return False
        author_host = _host(note.author)
        if (
            store.recent_by(conn, note.author, root.uri, since=now - HOUR) >= PER_AUTHOR_HOURLY
            or store.recent_from(conn, author_host, root.uri, since=now - HOUR) >= PER_SERVER_HOURLY
        ):
            # A flood: one account, or one server's many, cannot fill a co-op's thread.
            log.info("discussion: too much from %s under %s this hour", note.author, root.uri)
            return False
        row_id = store.add(
            conn,
            uri=note.uri,
            key=store.new_key(),
            thread=root.uri,
            in_reply_to=in_reply_to,
            author=note.author,
            author_name=name,
            author_host=_host(note.author),
            actor_id=None,
            content=note.content,
            source=None,
            # A peer's date, kept between a day before it came and now: a comment
            # dated 1900 would otherwise sort before every other, for ever.
            published=min(max(note.published or now, now - SHOWN_AS_OF), now),
            now=now,
        )
        if row_id is None:
            return False  # already here, or deleted before it came
        if root.kind in ("proposal", "offer"):
            stored = store.by_id(conn, row_id)
            assert stored is not None
            threads.announce(
                node,
                conn,
                note.uri,
                root,
                now=now,
                # Not back to the comment's own server (by host and port: two ports on
                # one address are two servers).
                exclude=(urlsplit(note.author).netloc,),
                key=stored.key,
            )
        return True

    kept = await node.db.write(write)
    if kept:
        node.delivery_wakeup.set()
    return kept


async def on_create(node: Node, item: InboxItem) -> None:
    obj = item.activity.get("object")
    if not isinstance(obj, dict) or not documents.is_public(obj):
        return  # followers-only or direct: not for a co-op's thread
    note = documents.read_note(obj)
    if note.author != item.actor:
        raise NotAuthorized("a comment is created by its author")
    await _keep(node, note, relayed_by=None)


async def on_announce(node: Node, item: InboxItem) -> None:
    """A host relays a comment in a shared proposal's thread: taken as its origin
    serves it (embedded only when the host is the Note's own server)."""
    is_host = await node.db.read(lambda conn: store.hosts_shared(conn, item.actor))
    if not is_host:
        return  # a boost of anything else: nothing for the threads
    obj = item.activity.get("object")
    uri = actor_id(obj)
    if uri is None:
        raise MalformedInput("the Announce names no object")
    known = await node.db.read(lambda conn: store.by_uri(conn, uri))
    if known is not None:
        return
    if isinstance(obj, dict) and _host(uri) == _host(item.actor):
        document: Any = obj
    else:
        document = await node.peers.fetch(uri)
        if actor_id(document) != uri:
            raise MalformedInput("the relayed note is not at its id")
    if not isinstance(document, dict) or not documents.is_public(document):
        return
    await _keep(node, documents.read_note(document), relayed_by=item.actor)


async def on_delete(node: Node, item: InboxItem) -> None:
    """A comment deleted by its author: removed here (a tombstone kept, so that a late
    copy brings nothing back), and the co-op's relay of it undone."""
    target = actor_id(item.activity.get("object"))
    if target is None or target == item.actor:
        return
    now = node.clock.now()

    def write(conn: Connection) -> bool:
        found = store.by_uri(conn, target)
        if found is None or found.author != item.actor or found.actor_id is not None:
            return False
        if not store.set_state(
            conn, found.id, store.REMOVED, now=now, was=(store.VISIBLE, store.HIDDEN)
        ):
            return False
        root = store.root_by_uri(conn, found.thread)
        if root is not None and root.kind in ("proposal", "offer"):
            threads.unrelay(node, conn, found, root, now=now)
        return True

    if await node.db.write(write):
        node.delivery_wakeup.set()


async def on_update(node: Node, item: InboxItem) -> None:
    """A comment edited by its author."""
    obj = item.activity.get("object")
    if not isinstance(obj, dict) or obj.get("type") != "Note":
        return
    uri = actor_id(obj)
    if uri is None:
        return
    known = await node.db.read(lambda conn: store.by_uri(conn, uri))
    if known is None or known.author != item.actor or known.actor_id is not None:
        return
    note = documents.read_note(obj)
    if note.author != item.actor:
        raise NotAuthorized("a comment is edited by its author")
    now = node.clock.now()
    await node.db.write(lambda conn: store.edit(conn, known.id, content=note.content, now=now))


async def on_undo(node: Node, item: InboxItem) -> None:
    """The host of a shared thread withdrew its relay of a comment (its admin removed
    it): removed here too."""
    obj = item.activity.get("object")
    if not isinstance(obj, dict) or obj.get("type") != "Announce":
        return
    target = actor_id(obj.get("object"))
    if target is None or actor_id(obj.get("actor")) != item.actor:
        return
    now = node.clock.now()

    def write(conn: Connection) -> None:
        found = store.by_uri(conn, target)
        if found is None or found.actor_id is not None:
            return
        root = store.root_by_uri(conn, found.thread)
        if root is None or root.kind != "shared" or root.host != item.actor:
            return
        store.set_state(conn, found.id, store.REMOVED, now=now, was=(store.VISIBLE, store.HIDDEN))

    await node.db.write(write)


async def on_flag(node: Node, item: InboxItem) -> None:
    """A report from another server: one row per comment of ours it names."""
    raw = item.activity.get("object")
    named = raw if isinstance(raw, list) else [raw]
    uris = [u for u in (actor_id(v) for v in named[:MAX_FLAG_OBJECTS]) if u is not None]
    content = item.activity.get("content")
    reason = ""
    if isinstance(content, str) and "\x00" not in content:
        reason = plain_text(content[: MAX_REASON * 4])[:MAX_REASON]
    now = node.clock.now()
    flag_id = item.activity_id

    def write(conn: Connection) -> int:
        found = store.reportable(conn, uris)
        made = 0
        for index, comment_id in enumerate(found[:MAX_FLAG_REPORTS]):
            # Each report of the Flag under an id of its own, bounded in length.
            derived = (
                flag_id if index == 0 else f"{hashlib.sha256(flag_id.encode()).hexdigest()}#{index}"
            )
            made += store.report(
                conn,
                comment_id,
                reporter=item.actor,
                origin="flag",
                reason=reason,
                activity_id=derived[:2048],
                now=now,
            )
        return made

    await node.db.write(write)


INBOUND = Inbound(
    name="discussion",
    kinds=(
        Kind("Create", COMMENT, _is_comment),
        Kind("Announce", COMMENT, _announces_a_note),
        Kind("Flag", REPORT, anything),
    ),
    handlers={
        ("Create", COMMENT): on_create,
        ("Announce", COMMENT): on_announce,
        ("Flag", REPORT): on_flag,
        # After offers, which take every other Update and Delete first.
        ("Delete", offers_inbound.OFFER): on_delete,
        ("Update", offers_inbound.OFFER): on_update,
        # After follows, which take every Undo first.
        ("Undo", follows_inbound.FOLLOW): on_undo,
    },
)
