"""Signed GETs: whether a request for a document that is not public was signed by one of
the servers allowed to read it, as every coopnode and Mastodon in secure mode sign their
fetches (draft-cavage).

A signature whose key is on another server is not checked at all: nothing is fetched
for a stranger. A signature from an allowed server that fails is refused with the
reason (federation's errors), so that its admin can act.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from federation import httpsig
from node.runtime import Node


async def signed_by(request: Request, node: Node, hosts: Collection[str]) -> bool:
    """Whether the request is signed with a key of one of ``hosts`` (host[:port], lower
    case), the signature verified."""
    header = request.headers.get("signature")
    if not hosts or header is None:
        return False
    key_id = httpsig.parse_signature_header(header).key_id
    if urlsplit(key_id).netloc.lower() not in hosts:
        return False

    async def lookup(key_id: str) -> Any:
        return (await node.peers.keys.get(key_id)).public_key

    async def refetch(key_id: str) -> Any:
        key = await node.peers.keys.refetch(key_id)
        return None if key is None else key.public_key

    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    await httpsig.verify_request(
        method=request.method,
        path=raw_path.decode("ascii"),
        query=request.url.query,
        headers=request.headers,
        body=b"",
        now=node.clock.now(),
        key_lookup=lookup,
        refetch=refetch,
    )
    return True
