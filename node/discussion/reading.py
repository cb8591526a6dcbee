"""Comments as others read them: a member's comment at its own address (the ``Note``,
or its ``Tombstone`` once removed), and who a report comes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from federation.jsonld import AS_CONTEXT_URL
from node.discussion import documents, store
from node.runtime import Node

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True, slots=True)
class Published:
    document: dict[str, Any]
    gone: bool
    # The thread's page, where a browser is sent (the comment's anchor).
    page: str | None


def page_of(node: Node, root: store.Root, comment_key: str) -> str:
    if root.kind == "shared":
        base = f"{node.settings.base_url}/proposals/shared/{root.key}"
    elif root.kind == "offer":
        base = root.uri
    else:
        base = node.urls.proposal(root.key)
    return f"{base}#comment-{comment_key}"


async def published(node: Node, key: str) -> Published | None:
    """One of this node's members' comments, as its id serves it; None when there is
    no such comment here, or it is hidden."""

    def read(conn: Connection) -> Published | None:
        found = store.by_key(conn, key)
        if found is None or found.actor_id is None or found.state == store.HIDDEN:
            return None
        if found.state == store.REMOVED:
            return Published(documents.tombstone(found.uri, found.updated), True, None)
        root = store.root_by_uri(conn, found.thread)
        page = None if root is None else page_of(node, root, found.key)
        cc = [node.urls.actor(node.settings.handle)]
        if root is not None and root.kind == "shared" and root.host:
            cc = [root.host]
        document = documents.note(
            uri=found.uri,
            author=found.author,
            in_reply_to=found.in_reply_to,
            thread=found.thread,
            content=found.content,
            source=found.source or "",
            published=found.published,
            url=page or found.uri,
            cc=cc,
        )
        return Published(document, False, page)

    return await node.db.read(read)


async def reporter(node: Node, actor_pk: int | None) -> str:
    """Who reports: the member's actor, or the co-op's for its own admin token."""
    if actor_pk is None:
        return node.urls.actor(node.settings.handle)
    found = await node.db.read(lambda conn: store.local_author(conn, actor_pk))
    if found is None:
        return node.urls.actor(node.settings.handle)
    return node.urls.actor(found[0])


REPLIES_PAGE = 100


async def replies(node: Node, key: str, page: int | None) -> dict[str, Any] | None:
    """The ``replies`` collection of a proposal of this co-op: the ids of the visible
    comments under it, oldest first, :data:`REPLIES_PAGE` a page (None: no such
    proposal). A blocked server's comments are left out, as on the page."""
    uri = node.urls.proposal_replies(key)

    def read(conn: Connection) -> list[str] | None:
        root = store.root_by_key(conn, key)
        if root is None or root.kind != "proposal":
            return None
        found = store.thread(conn, root.uri, limit=10_000)
        return [c.uri for c in found if node.peers.policy.refusal(c.author_host) is None]

    found = await node.db.read(read)
    if found is None:
        return None
    if page is None:
        return {
            "@context": AS_CONTEXT_URL,
            "id": uri,
            "type": "OrderedCollection",
            "totalItems": len(found),
            "first": f"{uri}?page=1",
        }
    start = (page - 1) * REPLIES_PAGE
    items = found[start : start + REPLIES_PAGE]
    document: dict[str, Any] = {
        "@context": AS_CONTEXT_URL,
        "id": f"{uri}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": uri,
        "orderedItems": items,
    }
    if start + REPLIES_PAGE < len(found):
        document["next"] = f"{uri}?page={page + 1}"
    return document
