"""Every activity about an order goes to the other party's inbox alone (never public,
never a shared inbox's other readers), after the order's earlier activities."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from node.runtime import Node
from node.services import outbox

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def send(
    node: Node,
    conn: Connection,
    activity: dict[str, Any],
    *,
    actor_pk: int,
    inbox: str,
    order_key: str,
    now: datetime,
) -> None:
    """Queue ``activity`` (signed as the actor ``actor_pk``) for ``inbox``, in order with
    the other activities of the order whose ``Offer`` is ``order_key``."""
    outbox.publish(
        conn,
        activity,
        actor_id=actor_pk,
        inboxes=[inbox],
        now=now,
        policy=node.peers.policy,
        ordering_key=order_key,
    )
