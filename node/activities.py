"""The activities the node sends, built from plain data.

Accept and Reject embed the Follow they answer (its id, actor and object), which is what
Mastodon and most servers match on; Undo embeds the Follow it withdraws likewise.
"""

from __future__ import annotations

import uuid
from typing import Any

from federation.jsonld import AS_CONTEXT_URL
from node.documents import PUBLIC
from node.urls import Urls


def new_id(urls: Urls) -> str:
    return urls.activity(str(uuid.uuid4()))


def follow(urls: Urls, username: str, target: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT_URL,
        "id": new_id(urls),
        "type": "Follow",
        "actor": urls.actor(username),
        "object": target,
    }


def answer_follow(
    urls: Urls, username: str, kind: str, *, follow_id: str, follower: str
) -> dict[str, Any]:
    """``Accept`` or ``Reject`` of the Follow ``follow_id`` that ``follower`` sent."""
    if kind not in ("Accept", "Reject"):
        raise ValueError(f"a Follow is answered by Accept or Reject, not {kind}")
    actor = urls.actor(username)
    return {
        "@context": AS_CONTEXT_URL,
        "id": new_id(urls),
        "type": kind,
        "actor": actor,
        "object": {"id": follow_id, "type": "Follow", "actor": follower, "object": actor},
    }


def undo_follow(urls: Urls, username: str, *, follow_id: str, target: str) -> dict[str, Any]:
    actor = urls.actor(username)
    return {
        "@context": AS_CONTEXT_URL,
        "id": new_id(urls),
        "type": "Undo",
        "actor": actor,
        "object": {"id": follow_id, "type": "Follow", "actor": actor, "object": target},
    }


def update_actor(urls: Urls, document: dict[str, Any]) -> dict[str, Any]:
    """``Update`` of one of our actors, carrying its whole new document, to the public.

    The activity takes the document's context (its terms, ``publicKey`` and the rest,
    are used in the embedded copy); receivers that trust nobody refetch the actor.
    """
    embedded = {k: v for k, v in document.items() if k != "@context"}
    actor = str(document["id"])
    return {
        "@context": document["@context"],
        "id": new_id(urls),
        "type": "Update",
        "actor": actor,
        "to": [PUBLIC],
        "cc": [str(document["followers"])],
        "object": embedded,
    }


def about_object(
    urls: Urls, kind: str, document: dict[str, Any], *, actor: str, followers: str
) -> dict[str, Any]:
    """``Create``, ``Update`` or ``Delete`` of one of our public objects, to the public
    and the actor's followers. The activity takes the object's context (and a signed
    object keeps it too)."""
    if kind not in ("Create", "Update", "Delete"):
        raise ValueError(f"an object is created, updated or deleted, not {kind}d")
    # A signed object keeps its own context: its proof covers it.
    embedded = (
        document if "proof" in document else {k: v for k, v in document.items() if k != "@context"}
    )
    return {
        "@context": document.get("@context", AS_CONTEXT_URL),
        "id": new_id(urls),
        "type": kind,
        "actor": actor,
        "to": [PUBLIC],
        "cc": [followers],
        "object": embedded,
    }
