"""Counting mode "subtotal": no individual choice leaves its co-op's node.

Each co-op taking part runs a *mirror* of the shared proposal for its own members (a
proposal of its own, published to its followers and remote members, so that members on
Mastodon vote there too), closes it at the host's ``endTime``, and sends the host one
``Subtotal``: per college, how many of its members voted and for which option, signed
by the co-op (a FEP-8b32 proof with the co-op's key), ``published`` at the close. The
mirror's ballots stay at home; who voted (not how) is published there, so that a member
can check they were counted.

The host counts its own members' ballots as usual, and from the other co-ops accepts a
subtotal until 15 minutes after ``endTime``: only from a co-op in the electorate whose
roster it read at the opening, proven by that co-op's own key, published at or before
``endTime``, naming existing options, adding up, and with no more voters than the
co-op's roster had at the opening. A newer subtotal replaces the earlier one of the
same co-op until the deadline. The host closes at the deadline; a co-op that sent
nothing is shown as such in the outcome.

What subtotals cannot show: an actor that two co-ops list may vote in both mirrors (the
host sees counts, not voters). The rosters read at the opening make the denominator.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from federation import keys, proofs
from federation.errors import MalformedInput, NotAuthorized
from federation.inbox import actor_id
from federation.jsonld import AS_CONTEXT_URL, DATA_INTEGRITY_V2_CONTEXT_URL, coop_context
from federation.origins import same_origin
from node.governance.rules.proposal_input import iso
from node.governance.rules.tally import Result
from node.runtime import Node
from node.services import identity, outbox
from node.services.inbox import InboxItem
from node.storage.tables import proposal_coops, proposals, subtotals

GRACE = timedelta(minutes=15)
# Co-op mode: a co-op's own vote ends this long before the shared one, so that its
# ballot reaches the host before the end.
COOP_LEAD = timedelta(minutes=15)
CONTEXT = [AS_CONTEXT_URL, coop_context(), DATA_INTEGRITY_V2_CONTEXT_URL]
MAX_COLLEGES = 50


class SubtotalRefused(MalformedInput):
    """A subtotal the host cannot count: the reason says why."""


# --- a participating co-op: its mirror and its subtotal -------------------------------------


def mirror_input(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The API input of a co-op's own vote mirroring a host's ``Question``."""
    options = document.get("oneOf") or []
    rule = document.get("decisionRule") or {}
    data: dict[str, Any] = {
        "title": str(document.get("name", ""))[:200],
        "text": "",
        "options": [
            {"name": o.get("name"), "role": o.get("optionRole", "plain")}
            for o in options
            if isinstance(o, dict)
        ],
        "rule": rule.get("type"),
        "quorum": "0%",  # quorum is the host's, over the whole electorate
        # The host's opening, not the moment this co-op heard of it or took part: who
        # may vote is who was a member then, as on every other co-op of the proposal.
        "opens_at": start if isinstance(start := document.get("startTime"), str) else iso(now),
        "closes_at": _mirror_end(document),
        "allow_change": bool(document.get("allowBallotChange", True)),
        "abstentions_count": bool(document.get("abstentionsCountTowardQuorum", False)),
        "open_ballot": False,
    }
    if rule.get("type") == "qualified":
        data["threshold"] = rule.get("threshold")
    if rule.get("type") == "consent":
        data["block_at"] = rule.get("blockAt", 1)
    return data


def _mirror_end(document: dict[str, Any]) -> Any:
    end = document.get("endTime")
    if document.get("countingMode") != "coop" or not isinstance(end, str):
        return end
    try:
        moment = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return end
    return iso(moment - COOP_LEAD)


def coop_choice(row: RowMapping, result: Result, tie: str) -> str | None:
    """The option a co-op casts in co-op mode, from its members' vote: for if it passed,
    against if it was rejected (an objection if blocked), and on a tie or without quorum
    what the proposal says (abstain, or against); None where there is no such option."""
    from node.governance.proposing import options_of
    from node.governance.rules.tally import Outcome, Role

    by_role = {o.role: o.name for o in options_of(row)}
    for_votes = sum(n for name, n in result.counts.items() if by_role.get(Role.FOR) == name)
    against = sum(n for name, n in result.counts.items() if by_role.get(Role.AGAINST) == name)
    if result.outcome is Outcome.PASSED:
        return by_role.get(Role.FOR)
    if result.outcome is Outcome.BLOCKED:
        return by_role.get(Role.OBJECTION)
    tied = result.outcome is Outcome.REJECTED and for_votes == against
    if tied or result.outcome is Outcome.NO_QUORUM:
        if tie == "against" and tied:
            return by_role.get(Role.AGAINST) or by_role.get(Role.OBJECTION)
        return by_role.get(Role.ABSTAIN)
    return by_role.get(Role.AGAINST)


def send_coop_ballot(
    conn: Connection, node: Node, row: RowMapping, result: Result, now: datetime
) -> None:
    """At the close of a co-op's own vote in co-op mode: the co-op's one ballot, signed
    by the co-op, to the host (as any ballot: a Note per option, with a proof)."""
    mirror = json.loads(row["mirror"])
    choice = coop_choice(row, result, mirror.get("tie") or "abstain")
    if choice is None:
        return
    handle = node.settings.handle
    coop = node.urls.actor(handle)
    ballot = node.urls.ballot(uuid.uuid4().hex)
    note = {
        "@context": [AS_CONTEXT_URL, DATA_INTEGRITY_V2_CONTEXT_URL],
        "id": f"{ballot}/0",
        "type": "Note",
        "name": choice,
        "inReplyTo": mirror["of"],
        "attributedTo": coop,
        "to": [mirror["host"]],
        "published": iso(now),
    }
    pem = identity.get_actor(conn, handle).ed25519_private_pem
    assert pem is not None
    private = keys.load_own_private_key(pem)
    assert isinstance(private, Ed25519PrivateKey)
    signed = proofs.sign(
        note, private, verification_method=node.urls.actor_multikey(handle), created=now
    )
    activity = {
        "@context": [AS_CONTEXT_URL, DATA_INTEGRITY_V2_CONTEXT_URL],
        "id": f"{ballot}/0/activity",
        "type": "Create",
        "actor": coop,
        "to": [mirror["host"]],
        "object": signed,
    }
    outbox.publish(
        conn,
        activity,
        actor_id=node.peers.coop_id,
        inboxes=[str(mirror["inbox"])],
        now=now,
        policy=node.peers.policy,
        ordering_key=str(mirror["of"]),
    )


def subtotal_document(
    conn: Connection, node: Node, row: RowMapping, result: Result
) -> tuple[dict[str, Any], str]:
    """The signed subtotal of a closed mirror, and the inbox it goes to."""
    mirror = json.loads(row["mirror"])
    document = _signed_subtotal(
        conn, node, of=mirror["of"], to=mirror["host"], base=row["uri"], result=result,
        published=row["closes_at"],
    )  # fmt: skip
    return document, str(mirror["inbox"])


def _signed_subtotal(
    conn: Connection,
    node: Node,
    *,
    of: str,
    to: str,
    base: str,
    result: Result,
    published: datetime,
) -> dict[str, Any]:
    """A ``Subtotal`` of ``result`` for the shared proposal ``of``, signed by this co-op:
    per college, its voters and their choices."""
    handle = node.settings.handle
    if result.colleges:
        colleges = [
            {"name": c.name, "voters": c.voters, "counts": dict(c.counts)} for c in result.colleges
        ]
    else:
        colleges = [{"name": None, "voters": result.turnout, "counts": dict(result.counts)}]
    document = {
        "@context": CONTEXT,
        "id": f"{base}/subtotal/{uuid.uuid4().hex}",
        "type": "Subtotal",
        "attributedTo": node.urls.actor(handle),
        "inReplyTo": of,
        "published": iso(published),
        "voters": result.turnout,
        "colleges": colleges,
        "to": [to],
    }
    pem = identity.get_actor(conn, handle).ed25519_private_pem
    assert pem is not None
    private = keys.load_own_private_key(pem)
    assert isinstance(private, Ed25519PrivateKey)
    return proofs.sign(
        document, private, verification_method=node.urls.actor_multikey(handle), created=published
    )


def keep_own_subtotal(conn: Connection, node: Node, row: RowMapping, now: datetime) -> None:
    """At the close of a proposal we host by subtotals: our own members' ballots become a
    subtotal like every other co-op's, signed by us and published with theirs, so that
    an auditor adds up signed subtotals only (our members' ballots are secret too)."""
    from node.governance import stored
    from node.governance.proposing import tally_proposal

    own = stored.count(conn, row["id"], tally_proposal(row))
    coop = node.urls.actor(node.settings.handle)
    document = _signed_subtotal(
        conn, node, of=row["uri"], to=row["uri"], base=row["uri"], result=own,
        published=row["closes_at"],
    )  # fmt: skip
    conn.execute(
        insert(subtotals).values(
            proposal_id=row["id"],
            coop=coop,
            document=json.dumps(document, ensure_ascii=False),
            voters=own.turnout,
            published=row["closes_at"],
            received_at=now,
        )
    )


def send_subtotal(
    conn: Connection, node: Node, row: RowMapping, result: Result, now: datetime
) -> None:
    """At a mirror's close: its subtotal to the host, in the closing unit of work."""
    document, inbox = subtotal_document(conn, node, row, result)
    coop = node.urls.actor(node.settings.handle)
    activity = {
        "@context": CONTEXT,
        "id": node.urls.activity(uuid.uuid4().hex),
        "type": "Create",
        "actor": coop,
        "to": document["to"],
        "object": document,
    }
    outbox.publish(
        conn,
        activity,
        actor_id=node.peers.coop_id,
        inboxes=[inbox],
        now=now,
        policy=node.peers.policy,
        ordering_key=str(document["inReplyTo"]),
    )


# --- the host -------------------------------------------------------------------------------


def is_subtotal(activity: dict[str, Any]) -> bool:
    obj = activity.get("object")
    return isinstance(obj, dict) and obj.get("type") == "Subtotal"


async def on_subtotal(node: Node, item: InboxItem) -> None:
    """A co-op's subtotal for a shared proposal we host: checked, then kept (replacing
    an earlier one of that co-op). Refused with the reason otherwise."""
    document = item.activity["object"]
    sender = item.actor
    if actor_id(document.get("attributedTo")) != sender:
        raise NotAuthorized(f"a subtotal attributed to someone else than {sender}")
    subtotal_id = actor_id(document)
    if subtotal_id is None or not same_origin(subtotal_id, sender):
        raise SubtotalRefused(f"{sender} sent a subtotal its host does not serve")
    target = actor_id(document.get("inReplyTo"))

    def find(conn: Connection) -> tuple[RowMapping | None, RowMapping | None]:
        row = conn.execute(select(proposals).where(proposals.c.uri == target)).mappings().first()
        if row is None:
            return None, None
        coop = (
            conn.execute(
                select(proposal_coops).where(
                    proposal_coops.c.proposal_id == row["id"], proposal_coops.c.coop == sender
                )
            )
            .mappings()
            .first()
        )
        return row, coop

    row, coop = await node.db.read(find)
    if row is None or row["counting_mode"] != "subtotal":
        raise SubtotalRefused(f"{target} is no proposal of ours counted by subtotals")
    if coop is None or coop["state"] != "listed":
        raise SubtotalRefused(f"{sender} is not a co-op of this proposal's electorate")
    await _verify(node, document, sender)
    published = _time(document.get("published"), "published")
    received = item.received_at or node.clock.now()
    if published > row["closes_at"]:
        raise SubtotalRefused("a subtotal is published at or before the vote's end")
    if received > row["closes_at"] + GRACE or row["state"] == "closed":
        raise SubtotalRefused("subtotals are taken until 15 minutes after the vote's end")
    voters = _check_counts(document, row, roster_size=coop["roster_size"] or 0)
    text = json.dumps(document, ensure_ascii=False)

    def unit(conn: Connection) -> None:
        earlier = conn.execute(
            select(subtotals.c.id, subtotals.c.published).where(
                subtotals.c.proposal_id == row["id"], subtotals.c.coop == sender
            )
        ).first()
        values = {
            "document": text,
            "voters": voters,
            "published": published,
            "received_at": received,
        }
        if earlier is None:
            conn.execute(insert(subtotals).values(proposal_id=row["id"], coop=sender, **values))
        elif earlier.published < published:
            conn.execute(update(subtotals).where(subtotals.c.id == earlier.id).values(values))

    await node.db.write(unit)


async def _verify(node: Node, document: dict[str, Any], coop: str) -> None:
    try:
        method = proofs.verification_method(document)
    except proofs.ProofError as exc:
        raise NotAuthorized(f"the subtotal's proof is unusable: {exc}") from exc
    key = await node.peers.keys.get(method)
    if key.owner != coop or not isinstance(key.public_key, Ed25519PublicKey):
        raise NotAuthorized(f"the subtotal's proof uses a key of {key.owner}, not of {coop}")
    try:
        proofs.verify(document, key.public_key)
    except proofs.ProofError as exc:
        raise NotAuthorized(f"the subtotal's proof does not verify: {exc}") from exc


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise SubtotalRefused(f"a subtotal's {field} is a date and time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SubtotalRefused(f"a subtotal's {field} is a date and time") from exc
    if moment.tzinfo is None:
        raise SubtotalRefused(f"a subtotal's {field} has a time zone")
    return moment


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SubtotalRefused(f"{what} is a whole number")
    return value


def _check_counts(document: dict[str, Any], row: RowMapping, *, roster_size: int) -> int:
    """The subtotal's figures add up, name existing options (and the proposal's colleges
    where they weigh), and claim no more voters than the co-op's roster had."""
    from node.governance.proposing import options_of, weights_of

    voters = _whole(document.get("voters"), "voters")
    if voters > roster_size:
        raise SubtotalRefused(
            f"{voters} voters, but the co-op's roster had {roster_size} members at the opening"
        )
    colleges = document.get("colleges")
    if not isinstance(colleges, list) or not 1 <= len(colleges) <= MAX_COLLEGES:
        raise SubtotalRefused("a subtotal lists its colleges (one with name null if none)")
    names = {o.name for o in options_of(row)}
    weights = weights_of(row)
    seen: set[str | None] = set()
    total = 0
    for college in colleges:
        if not isinstance(college, dict):
            raise SubtotalRefused("each college of a subtotal is an object")
        name = college.get("name")
        if name is not None and not isinstance(name, str):
            raise SubtotalRefused("a college's name is text or null")
        if name in seen:
            raise SubtotalRefused(f"the college {name!r} is listed twice")
        seen.add(name)
        if weights is not None and name not in weights:
            raise SubtotalRefused(f"{name!r} is not one of this proposal's colleges")
        in_college = _whole(college.get("voters"), f"college {name!r} voters")
        counts = college.get("counts")
        if not isinstance(counts, dict) or not set(counts) <= names:
            raise SubtotalRefused(f"college {name!r} counts options this proposal does not have")
        cast = sum(_whole(n, f"college {name!r} count") for n in counts.values())
        if cast != in_college:
            raise SubtotalRefused(
                f"college {name!r}: {cast} choices for {in_college} voters (one each)"
            )
        total += in_college
    if total != voters:
        raise SubtotalRefused(f"the colleges' voters add up to {total}, not {voters}")
    return voters


def host_pairs(conn: Connection, row: RowMapping) -> dict[str | None, dict[tuple[str, ...], int]]:
    """The other co-ops' subtotals' counts in the form the tally decides from (the host's
    own subtotal, made at the close, repeats its members' ballots)."""
    pairs: dict[str | None, dict[tuple[str, ...], int]] = {}
    host = select(proposal_coops.c.coop).where(
        proposal_coops.c.proposal_id == row["id"], proposal_coops.c.state == "host"
    )
    query = select(subtotals.c.document).where(
        subtotals.c.proposal_id == row["id"], subtotals.c.coop.not_in(host)
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
