"""The activities the node sends, built from plain data.

Accept and Reject embed the Follow they answer (its id, actor and object), which is what
Mastodon and most servers match on; Undo embeds the Follow it withdraws likewise.
"""

from __future__ import annotations

import uuid
from typing import Any

from federation.jsonld import AS_CONTEXT_URL
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
