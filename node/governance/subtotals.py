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

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation import proofs
from federation.errors import MalformedInput, NotAuthorized
from federation.inbox import actor_id
from federation.origins import same_origin
from node.governance import documents
from node.governance.mirrors import coop_choice
from node.governance.rules.tally import Result
from node.governance.signing import sign_as_coop
from node.governance.store import coops, tally
from node.governance.store import proposals as proposal_store
from node.governance.store.rows import (
    CoopTakingPart,
    Mirror,
    Mode,
    State,
    StoredProposal,
)
from node.runtime import Node
from node.services import outbox
from node.services.inbox import InboxItem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

GRACE = timedelta(minutes=15)
MAX_COLLEGES = 50


class SubtotalRefused(MalformedInput):
    """A subtotal the host cannot count: the reason says why."""


# --- a participating co-op: its mirror's result -------------------------------------------


def send_coop_ballot(
    conn: Connection, node: Node, p: StoredProposal, mirror: Mirror, result: Result, now: datetime
) -> None:
    """At the close of a co-op's own vote in co-op mode: the co-op's one ballot, signed
    by the co-op, to the host (as any ballot: a Note per option, with a proof)."""
    choice = coop_choice(p.options, result, mirror.tie)
    if choice is None:
        return
    coop = node.urls.actor(node.settings.handle)
    ballot = node.urls.ballot(uuid.uuid4().hex)
    note = documents.ballot_note(
        note_id=f"{ballot}/0", option=choice, proposal=mirror.of, voter=coop, to=mirror.host,
        now=now,
    )  # fmt: skip
    signed = sign_as_coop(conn, node, note, created=now)
    activity = documents.ballot_create(
        signed, activity_id=f"{ballot}/0/activity", actor=coop, to=mirror.host
    )
    outbox.publish(
        conn,
        activity,
        actor_id=node.peers.coop_id,
        inboxes=[mirror.inbox],
        now=now,
        policy=node.peers.policy,
        ordering_key=mirror.of,
    )


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
    """A ``Subtotal`` of ``result`` for the shared proposal ``of``, signed by this co-op."""
    document = documents.subtotal(
        subtotal_id=f"{base}/subtotal/{uuid.uuid4().hex}",
        coop=node.urls.actor(node.settings.handle),
        of=of,
        to=to,
        result=result,
        published=published,
    )
    return sign_as_coop(conn, node, document, created=published)


def keep_own_subtotal(conn: Connection, node: Node, p: StoredProposal, now: datetime) -> None:
    """At the close of a proposal we host by subtotals: our own members' ballots become a
    subtotal like every other co-op's, signed by us and published with theirs, so that
    an auditor adds up signed subtotals only (our members' ballots are secret too)."""
    own = tally.count(conn, p.id, p.tally_settings())
    document = _signed_subtotal(
        conn, node, of=p.uri, to=p.uri, base=p.uri, result=own, published=p.closes_at
    )
    coops.keep_subtotal(
        conn,
        p.id,
        node.urls.actor(node.settings.handle),
        document,
        voters=own.turnout,
        published=p.closes_at,
        now=now,
    )


def send_subtotal(
    conn: Connection, node: Node, p: StoredProposal, mirror: Mirror, result: Result, now: datetime
) -> None:
    """At a mirror's close: its subtotal to the host, in the closing unit of work."""
    document = _signed_subtotal(
        conn, node, of=mirror.of, to=mirror.host, base=p.uri, result=result,
        published=p.closes_at,
    )  # fmt: skip
    activity = documents.subtotal_create(
        document,
        activity_id=node.urls.activity(uuid.uuid4().hex),
        actor=node.urls.actor(node.settings.handle),
    )
    outbox.publish(
        conn,
        activity,
        actor_id=node.peers.coop_id,
        inboxes=[mirror.inbox],
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

    def find(conn: Connection) -> tuple[StoredProposal | None, CoopTakingPart | None]:
        p = None if target is None else proposal_store.by_uri(conn, target)
        if p is None:
            return None, None
        return p, coops.participant(conn, p.id, sender)

    p, coop = await node.db.read(find)
    if p is None or p.counting_mode is not Mode.SUBTOTAL:
        raise SubtotalRefused(f"{target} is no proposal of ours counted by subtotals")
    if coop is None or coop.state != coops.LISTED:
        raise SubtotalRefused(f"{sender} is not a co-op of this proposal's electorate")
    await _verify(node, document, sender)
    published = _time(document.get("published"), "published")
    received = item.received_at or node.clock.now()
    if published > p.closes_at:
        raise SubtotalRefused("a subtotal is published at or before the vote's end")
    if received > p.closes_at + GRACE or p.state is State.CLOSED:
        raise SubtotalRefused("subtotals are taken until 15 minutes after the vote's end")
    voters = _check_counts(document, p, roster_size=coop.roster_size or 0)
    pk = p.id

    def unit(conn: Connection) -> None:
        coops.receive_subtotal(
            conn, pk, sender, document, voters=voters, published=published, received=received
        )

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


def _check_counts(document: dict[str, Any], p: StoredProposal, *, roster_size: int) -> int:
    """The subtotal's figures add up, name existing options (and the proposal's colleges
    where they weigh), and claim no more voters than the co-op's roster had."""
    voters = _whole(document.get("voters"), "voters")
    if voters > roster_size:
        raise SubtotalRefused(
            f"{voters} voters, but the co-op's roster had {roster_size} members at the opening"
        )
    colleges = document.get("colleges")
    if not isinstance(colleges, list) or not 1 <= len(colleges) <= MAX_COLLEGES:
        raise SubtotalRefused("a subtotal lists its colleges (one with name null if none)")
    names = {o.name for o in p.options}
    weights = p.college_weights
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
