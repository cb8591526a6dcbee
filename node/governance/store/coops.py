"""The host's side of a shared proposal: the ``proposal_coops`` table (the co-ops taking
part and what became of each) and the ``subtotals`` table (what each co-op counted,
as it signed it)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from node.governance.store.rows import CoopTakingPart, coop_of
from node.storage.tables import proposal_coops, subtotals

HOST, INVITED, LISTED, DECLINED, FAILED = "host", "invited", "listed", "declined", "failed"


def invite(
    conn: Connection, pk: int, coops: Iterable[tuple[str, str]], *, own: str, now: datetime
) -> None:
    """Record the co-ops taking part, (actor, inbox) each, the host ``own`` among them."""
    rows = [{"coop": own, "inbox": None, "state": HOST}] + [
        {"coop": coop, "inbox": inbox, "state": INVITED} for coop, inbox in coops
    ]
    conn.execute(
        insert(proposal_coops),
        [{**row, "proposal_id": pk, "updated_at": now} for row in rows],
    )


def participants(conn: Connection, pk: int) -> list[CoopTakingPart]:
    """The co-ops of the shared proposal ``pk``, the host first; none for an internal
    proposal."""
    rows = conn.execute(
        select(proposal_coops)
        .where(proposal_coops.c.proposal_id == pk)
        .order_by(proposal_coops.c.state != HOST, proposal_coops.c.coop)
    ).mappings()
    return [coop_of(row) for row in rows]


def participant(conn: Connection, pk: int, coop: str) -> CoopTakingPart | None:
    row = (
        conn.execute(
            select(proposal_coops).where(
                proposal_coops.c.proposal_id == pk, proposal_coops.c.coop == coop
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else coop_of(row)


def settle(
    conn: Connection,
    pk: int,
    coop: str,
    *,
    now: datetime,
    roster_size: int | None = None,
    state: str | None = None,
    reason: str | None = None,
) -> None:
    """What the opening made of a co-op: its roster's size, and listed or failed (why)."""
    values: dict[str, Any] = {"updated_at": now}
    if roster_size is not None:
        values["roster_size"] = roster_size
    if state is not None:
        values["state"] = state
    if reason is not None:
        values["reason"] = reason
    conn.execute(
        update(proposal_coops)
        .where(proposal_coops.c.proposal_id == pk, proposal_coops.c.coop == coop)
        .values(values)
    )


def decline(conn: Connection, pk: int, coop: str, *, now: datetime) -> None:
    """A co-op answered ``Reject``: it does not take part."""
    conn.execute(
        update(proposal_coops)
        .where(
            proposal_coops.c.proposal_id == pk,
            proposal_coops.c.coop == coop,
            proposal_coops.c.state != HOST,
        )
        .values(state=DECLINED, reason="the co-op declined to take part", updated_at=now)
    )


# --- subtotals -------------------------------------------------------------------------------


def keep_subtotal(
    conn: Connection,
    pk: int,
    coop: str,
    document: dict[str, Any],
    *,
    voters: int,
    published: datetime,
    now: datetime,
) -> None:
    """Store the host's own subtotal, made at the close."""
    conn.execute(
        insert(subtotals).values(
            proposal_id=pk,
            coop=coop,
            document=json.dumps(document, ensure_ascii=False),
            voters=voters,
            published=published,
            received_at=now,
        )
    )


def receive_subtotal(
    conn: Connection,
    pk: int,
    coop: str,
    document: dict[str, Any],
    *,
    voters: int,
    published: datetime,
    received: datetime,
) -> None:
    """Store a co-op's subtotal, replacing an earlier one of that co-op (not a newer one)."""
    earlier = conn.execute(
        select(subtotals.c.id, subtotals.c.published).where(
            subtotals.c.proposal_id == pk, subtotals.c.coop == coop
        )
    ).first()
    values = {
        "document": json.dumps(document, ensure_ascii=False),
        "voters": voters,
        "published": published,
        "received_at": received,
    }
    if earlier is None:
        conn.execute(insert(subtotals).values(proposal_id=pk, coop=coop, **values))
    elif earlier.published < published:
        conn.execute(update(subtotals).where(subtotals.c.id == earlier.id).values(values))


def host_pairs(conn: Connection, pk: int) -> dict[str | None, dict[tuple[str, ...], int]]:
    """The other co-ops' subtotals' counts in the form the tally decides from (the host's
    own subtotal, made at the close, repeats its members' ballots)."""
    pairs: dict[str | None, dict[tuple[str, ...], int]] = {}
    host = select(proposal_coops.c.coop).where(
        proposal_coops.c.proposal_id == pk, proposal_coops.c.state == HOST
    )
    query = select(subtotals.c.document).where(
        subtotals.c.proposal_id == pk, subtotals.c.coop.not_in(host)
    )
    for (text,) in conn.execute(query):
        for college in json.loads(text)["colleges"]:
            made = pairs.setdefault(college["name"], {})
            for option, n in college["counts"].items():
                if n:
                    made[(option,)] = made.get((option,), 0) + int(n)
    return pairs


def received(conn: Connection, pk: int) -> dict[str, int]:
    """Each co-op's subtotal voters."""
    return dict(
        conn.execute(
            select(subtotals.c.coop, subtotals.c.voters).where(subtotals.c.proposal_id == pk)
        ).all()
    )


def subtotal_documents(conn: Connection, pk: int) -> list[dict[str, Any]]:
    """The subtotals as each co-op signed them, by co-op."""
    found = conn.execute(
        select(subtotals.c.document).where(subtotals.c.proposal_id == pk).order_by(subtotals.c.coop)
    ).scalars()
    return [json.loads(text) for text in found]
