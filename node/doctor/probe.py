"""What the node answers to the doctor's probe through its public URL: that it knows
the nonce (it reads the database the doctor wrote it in), and how the request reached
it."""

from __future__ import annotations

from node.doctor import store
from node.runtime import Node

NONCE_MAX = 64


async def known(node: Node, nonce: str) -> bool:
    if not 0 < len(nonce) <= NONCE_MAX:
        return False
    now = node.clock.now()
    return await node.db.read(lambda conn: store.probe_known(conn, nonce, now=now))
