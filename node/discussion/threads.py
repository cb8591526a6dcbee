"""What members and admins do with threads: read one, comment or reply, report a
comment; hide, show again or remove one (the admin).

Where a member's comment goes:

- under a proposal of this co-op (or one of its offers): the co-op ``Announce``s it to
  the proposal's audience (its followers, its members on other servers, the co-ops
  taking part, the voters' servers), as a Lemmy community does its posts (FEP-1b12):
  followers on Mastodon see it as the co-op's boost;
- under a shared proposal another co-op hosts: a ``Create`` from the member to the
  host, which relays it to the others;
- and when it answers a comment from another server, a ``Create`` to that author's
  server too, so that its author hears of the answer.

A removal follows the same way: a ``Delete`` of the member's Note, from the member.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from federation.jsonld import AS_CONTEXT_URL
from node.discussion import documents, reading, store
from node.discussion.store import Comment, Root
from node.documents import PUBLIC
from node.errors import Conflict, Forbidden, Invalid, NotFound
from node.governance.audience import audience
from node.offers.markdown import render_markdown
from node.runtime import Node
from node.services import outbox

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

MAX_REASON = 1000


@dataclass(frozen=True, slots=True)
class Thread:
    root: Root
    comments: list[Comment]
    # For an admin: how many open reports each comment has.
    reported: dict[int, int]


def _host(uri: str) -> str:
    return (urlsplit(uri).hostname or "").lower()


def _shown(node: Node, comments: list[Comment]) -> list[Comment]:
    """Comments from a blocked server are not shown (nor are those of its subdomains)."""
    return [c for c in comments if node.peers.policy.refusal(c.author_host) is None]


async def thread(node: Node, key: str, *, admin: bool = False) -> Thread:
    """A proposal's thread by the proposal's key (this co-op's, or a shared one); an
    admin also sees the hidden comments, marked."""
    states = (store.VISIBLE, store.HIDDEN) if admin else (store.VISIBLE,)

    def read(conn: Connection) -> Thread:
        root = store.root_by_key(conn, key)
        if root is None:
            raise NotFound("no such proposal")
        found = store.thread(conn, root.uri, states=states)
        partners = store.partner_hosts(conn, root)
        found = [replace(c, partner=True) if c.author_host in partners else c for c in found]
        reported = store.reported_counts(conn, [c.id for c in found]) if admin else {}
        return Thread(root, found, reported)

    found = await node.db.read(read)
    return Thread(found.root, _shown(node, found.comments), found.reported)


async def offer_thread(node: Node, offer_key: str, *, admin: bool = False) -> Thread:
    """The questions under one of the co-op's offers (where it takes them)."""
    if not node.settings.offer_questions:
        raise NotFound("this co-op takes no questions on its offers")
    uri = node.urls.offer(offer_key)
    states = (store.VISIBLE, store.HIDDEN) if admin else (store.VISIBLE,)

    def read(conn: Connection) -> Thread:
        root = store.root_by_uri(conn, uri)
        if root is None or root.kind != "offer":
            raise NotFound("no such offer")
        found = store.thread(conn, root.uri, states=states)
        reported = store.reported_counts(conn, [c.id for c in found]) if admin else {}
        return Thread(root, found, reported)

    found = await node.db.read(read)
    return Thread(found.root, _shown(node, found.comments), found.reported)


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise Invalid("write the comment as text", field="text")
    text = raw.strip()
    if not text:
        raise Invalid("the comment is empty", field="text")
    if len(text) > documents.MAX_SOURCE:
        raise Invalid(f"a comment is at most {documents.MAX_SOURCE} characters", field="text")
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise Invalid("the comment holds characters that are not text", field="text")
    return text


async def _inbox_of(node: Node, actor: str) -> str | None:
    try:
        document = await node.peers.actor(actor)
    except Exception:  # a server gone: the others still hear of the comment
        return None
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    inbox = shared if isinstance(shared, str) else document.get("inbox")
    return inbox if isinstance(inbox, str) else None


async def post(
    node: Node,
    actor_pk: int,
    *,
    key: str | None = None,
    root_uri: str | None = None,
    text: Any,
    reply_to: str | None = None,
) -> Comment:
    """A member's comment under the proposal ``key`` (or the object ``root_uri``),
    answering the comment ``reply_to`` (its key) when given."""
    body = _text(text)

    def read(conn: Connection) -> tuple[Root, Comment | None, tuple[str, str]]:
        root = (
            store.root_by_key(conn, key)
            if key is not None
            else store.root_by_uri(conn, root_uri or "")
        )
        if root is None:
            raise NotFound("no such proposal")
        if root.kind == "offer" and not node.settings.offer_questions:
            raise Forbidden("this co-op takes no questions on its offers")
        if root.kind == "offer" and not root.open:
            raise Conflict("this offer is withdrawn")
        parent = None
        if reply_to:
            parent = store.by_key(conn, reply_to)
            if parent is None or parent.thread != root.uri or parent.state != store.VISIBLE:
                raise Invalid("the comment answered is not in this thread", field="reply_to")
        author = store.local_author(conn, actor_pk)
        if author is None:
            raise Forbidden("comments are written by members")
        return root, parent, author

    root, parent, (username, name) = await node.db.read(read)
    urls = node.urls
    comment_key = store.new_key()
    uri = urls.comment(comment_key)
    author = urls.actor(username)
    in_reply_to = parent.uri if parent is not None else root.uri
    cc = [urls.actor(node.settings.handle)]
    direct: list[str] = []
    if root.kind == "shared" and root.host:
        cc = [root.host]
        inbox = await _inbox_of(node, root.host)
        if inbox:
            direct.append(inbox)
    if parent is not None and parent.actor_id is None:
        cc.append(parent.author)
        inbox = await _inbox_of(node, parent.author)
        if inbox:
            direct.append(inbox)
    content = render_markdown(body)
    now = node.clock.now()
    note = documents.note(
        uri=uri,
        author=author,
        in_reply_to=in_reply_to,
        thread=root.uri,
        content=content,
        source=body,
        published=now,
        url=reading.page_of(node, root, comment_key),
        cc=cc,
    )

    def write(conn: Connection) -> int:
        row_id = store.add(
            conn,
            uri=uri,
            key=comment_key,
            thread=root.uri,
            in_reply_to=in_reply_to,
            author=author,
            author_name=name,
            author_host=_host(author),
            actor_id=actor_pk,
            content=content,
            source=body,
            published=now,
            now=now,
        )
        assert row_id is not None  # a new key: never stored before
        if direct:
            outbox.publish(
                conn,
                _activity(node, "Create", author, note, cc),
                actor_id=actor_pk,
                inboxes=direct,
                now=now,
                policy=node.peers.policy,
                ordering_key=uri,
            )
        if root.kind in ("proposal", "offer"):
            announce(node, conn, note, root, now=now, exclude=())
        return row_id

    row_id = await node.db.write(write)
    node.delivery_wakeup.set()
    found = await node.db.read(lambda conn: store.by_id(conn, row_id))
    assert found is not None
    return found


def _activity(node: Node, kind: str, actor: str, obj: Any, cc: list[str]) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT_URL,
        "id": node.urls.activity(str(uuid.uuid4())),
        "type": kind,
        "actor": actor,
        "to": [PUBLIC],
        "cc": cc,
        "object": obj,
    }


def _thread_audience(node: Node, conn: Connection, root: Root) -> list[str]:
    if root.kind == "proposal":
        return audience(conn, node, root.pk)
    return audience(conn, node)


def announce_id(node: Node, comment_key: str) -> str:
    """The id of the co-op's Announce of a comment: one per comment, so that it can be
    undone by its id."""
    return f"{node.urls.comment(comment_key)}/announce"


def announce(
    node: Node,
    conn: Connection,
    note: dict[str, Any] | str,
    root: Root,
    *,
    now: datetime,
    exclude: tuple[str, ...],
    key: str | None = None,
) -> None:
    """The co-op relays a comment in one of its threads to the thread's audience (but
    not back to the servers in ``exclude``, each ``host[:port]``). Our own members'
    Notes go embedded; another server's go by id, for each receiver to read from their
    origin."""
    uri = note["id"] if isinstance(note, dict) else note
    comment_key = key or uri.rsplit("/", 1)[-1]
    embedded = (
        {k: v for k, v in note.items() if k != "@context"} if isinstance(note, dict) else note
    )
    handle = node.settings.handle
    activity = {
        "@context": AS_CONTEXT_URL,
        "id": announce_id(node, comment_key),
        "type": "Announce",
        "actor": node.urls.actor(handle),
        "to": [PUBLIC],
        "cc": [node.urls.followers(handle)],
        "object": embedded,
    }
    inboxes = [i for i in _thread_audience(node, conn, root) if urlsplit(i).netloc not in exclude]
    outbox.publish(
        conn,
        activity,
        actor_id=node.peers.coop_id,
        inboxes=inboxes,
        now=now,
        policy=node.peers.policy,
        public=True,
        ordering_key=uri,
    )


def unrelay(node: Node, conn: Connection, comment: Comment, root: Root, *, now: datetime) -> None:
    """Undo the co-op's relay of another server's comment (removed by its author, or by
    the admin), for the thread's audience."""
    handle = node.settings.handle
    undo = _activity(
        node,
        "Undo",
        node.urls.actor(handle),
        {
            "id": announce_id(node, comment.key),
            "type": "Announce",
            "actor": node.urls.actor(handle),
            "object": comment.uri,
        },
        [node.urls.followers(handle)],
    )
    outbox.publish(
        conn,
        undo,
        actor_id=node.peers.coop_id,
        inboxes=_thread_audience(node, conn, root),
        now=now,
        policy=node.peers.policy,
        ordering_key=comment.uri,
    )


# --- moderation -----------------------------------------------------------------------


async def _comment(node: Node, comment_key: str) -> Comment:
    found = await node.db.read(lambda conn: store.by_key(conn, comment_key))
    if found is None or not found.thread:
        raise NotFound("no such comment")
    return found


async def hide(node: Node, comment_key: str) -> Comment:
    """Hide a comment here (kept, reversible); its open reports are closed."""
    found = await _comment(node, comment_key)
    now = node.clock.now()

    def write(conn: Connection) -> None:
        if not store.set_state(
            conn, found.id, store.HIDDEN, now=now, was=(store.VISIBLE, store.HIDDEN)
        ):
            raise Conflict("this comment was removed")
        store.close_reports(conn, found.id)

    await node.db.write(write)
    return await _comment(node, comment_key)


async def unhide(node: Node, comment_key: str) -> Comment:
    found = await _comment(node, comment_key)
    now = node.clock.now()

    def write(conn: Connection) -> None:
        if not store.set_state(
            conn, found.id, store.VISIBLE, now=now, was=(store.HIDDEN, store.VISIBLE)
        ):
            raise Conflict("this comment was removed")

    await node.db.write(write)
    return await _comment(node, comment_key)


async def dismiss(node: Node, comment_key: str) -> int:
    """Close a comment's reports without acting on it."""
    found = await _comment(node, comment_key)
    return await node.db.write(lambda conn: store.close_reports(conn, found.id))


async def remove(node: Node, comment_key: str) -> Comment:
    """Remove a comment for good. One of this node's members' is deleted where it went
    (a ``Delete`` from its author); another server's is removed here, and where the
    co-op relayed it the relay is undone (an ``Undo`` of its ``Announce``)."""
    found = await _comment(node, comment_key)
    if found.state == store.REMOVED:
        return found
    direct: list[str] = []
    root = await node.db.read(lambda conn: store.root_by_uri(conn, found.thread))
    if found.actor_id is not None and root is not None and root.kind == "shared" and root.host:
        inbox = await _inbox_of(node, root.host)
        if inbox:
            direct.append(inbox)
    if found.actor_id is not None:
        # An answer to another server's comment went to its author's server too.
        parent = await node.db.read(lambda conn: store.by_uri(conn, found.in_reply_to))
        if parent is not None and parent.actor_id is None:
            inbox = await _inbox_of(node, parent.author)
            if inbox:
                direct.append(inbox)
    now = node.clock.now()

    def write(conn: Connection) -> None:
        if not store.set_state(
            conn, found.id, store.REMOVED, now=now, was=(store.VISIBLE, store.HIDDEN)
        ):
            return
        store.close_reports(conn, found.id)
        if root is None:
            return
        inboxes = list(direct)
        if root.kind in ("proposal", "offer"):
            inboxes += _thread_audience(node, conn, root)
        if found.actor_id is not None:
            delete = _activity(
                node, "Delete", found.author, documents.tombstone(found.uri, now), []
            )
            delete["object"].pop("@context", None)
            outbox.publish(
                conn,
                delete,
                actor_id=found.actor_id,
                inboxes=inboxes,
                now=now,
                policy=node.peers.policy,
                ordering_key=found.uri,
            )
        elif root.kind in ("proposal", "offer"):
            unrelay(node, conn, found, root, now=now)

    await node.db.write(write)
    node.delivery_wakeup.set()
    return await _comment(node, comment_key)


async def report(node: Node, reporter: str, comment_key: str, reason: Any) -> bool:
    """A member reports a comment to the admin; False when they already did."""
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON or "\x00" in reason:
        raise Invalid(f"give the reason as text, at most {MAX_REASON} characters", field="reason")
    found = await _comment(node, comment_key)
    if found.state != store.VISIBLE:
        raise NotFound("no such comment")
    now = node.clock.now()
    return await node.db.write(
        lambda conn: store.report(
            conn,
            found.id,
            reporter=reporter,
            origin="member",
            reason=reason.strip(),
            activity_id=None,
            now=now,
        )
    )


async def reports(node: Node) -> list[tuple[store.Report, Comment]]:
    return await node.db.read(store.open_reports)


async def recent(node: Node, *, hidden: bool = False, limit: int = 100) -> list[Comment]:
    states = (store.HIDDEN,) if hidden else (store.VISIBLE, store.HIDDEN)
    return await node.db.read(lambda conn: store.recent(conn, states=states, limit=limit))
