"""Shared proposals: the members of several co-ops decide together, each co-op on its own
node (PROTOCOL.md, "Counting modes on shared proposals"). This module holds both sides.

The host
    names the co-ops taking part (its electorate), sends them the ``Question``, and at
    the opening reads each one's roster (:mod:`node.governance.rosters`); an actor that
    two co-ops list is one voter. A co-op whose roster cannot be read has no voters, and
    the proposal says why. A co-op that answers ``Reject`` is recorded as declining.

A participating node
    keeps the host's ``Question`` (and its updates) for its members, lets them vote
    through its API, and sends each ballot to the host as Mastodon would, signed as the
    member and with the member's FEP-8b32 proof on the ``Note``; it remembers what each
    member sent. Its admin may decline to take part (``Reject`` to the host).

Counting mode "open" is what runs here: each ballot travels to the host, which counts
it with the same checks as any other and publishes every ballot at the close.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from federation.errors import MalformedInput, NotAuthorized, Refused
from federation.inbox import actor_id
from federation.jsonld import AS_CONTEXT_URL
from federation.origins import same_origin
from node.errors import Conflict, Invalid, NotFound
from node.follows import store as follows
from node.governance import documents
from node.governance.mirrors import mirror_input
from node.governance.proposals import open_mirror, read_colleges
from node.governance.rules.proposal_input import MIN_DURATION, iso, parse_proposal_input
from node.governance.rules.shared_question import SharedQuestion, read_question
from node.governance.rules.tally import Reason
from node.governance.signing import signed_ballot
from node.governance.store import coops
from node.governance.store import proposals as proposal_store
from node.governance.store import remote as remote_store
from node.governance.store.remote import DECLINED, INVITED
from node.governance.store.rows import RemoteProposal
from node.networks import store as networks
from node.runtime import Node
from node.services import metrics, outbox, remote_actors
from node.services.inbox import InboxItem
from node.services.tokens import TokenInfo

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# A followed co-op's invitations waiting for the admin: past this, more are refused until
# the admin answers (a co-op gone wrong cannot bury the admin's page).
MAX_INVITATIONS_WAITING = 20


# --- the host ----------------------------------------------------------------------------------


async def on_reject(node: Node, item: InboxItem) -> bool:
    """A participating co-op declines a shared proposal we host. False if the Reject
    is not about one of our proposals."""
    target = actor_id(item.activity.get("object"))
    if target is None or not target.startswith(node.urls.proposal("")):
        return False
    now = node.clock.now()

    def unit(conn: Connection) -> bool:
        pk = proposal_store.id_of(conn, target)
        if pk is None:
            return False
        coops.decline(conn, pk, item.actor, now=now)
        return True

    return bool(await node.db.write(unit))


# --- a participating node ------------------------------------------------------------------


def key_of(uri: str) -> str:
    """The name a shared proposal has in this node's API."""
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()[:32]


def _names_this_coop(node: Node, document: Any, sender: str) -> bool:
    """Whether an object is a shared proposal naming this co-op in its electorate, and
    said to be its sender's: worth reading further."""
    if not isinstance(document, dict) or document.get("type") != "Question":
        return False
    electorate = document.get("electorate")
    named = electorate if isinstance(electorate, list) else [electorate]
    return node.urls.actor(node.settings.handle) in named and document.get("attributedTo") == sender


def _trusted(conn: Connection, node: Node, host: str) -> bool:
    """Whether the admin listed ``host`` in ``accept_shared_from`` (by actor URL, or by
    handle as its actor document gives it)."""
    trusted = node.settings.accept_shared_from
    if not trusted:
        return False
    if host in trusted:
        return True
    label = remote_actors.labels(conn, [host]).get(host)
    return label is not None and label.username is not None and label.handle.lower() in trusted


async def on_question(node: Node, item: InboxItem) -> bool:
    """A shared proposal that names this co-op in its electorate, new (``Create``) or
    changed (``Update``: counts, outcome), from its host. False if it is not one.

    A proposal is an invitation, not an order: one from a co-op this co-op does not
    follow (nor lists as a fellow member of the network the proposal names) is refused;
    one from a followed co-op (or such a fellow member) waits for the admin
    (``invited``), unless the admin listed its host in ``accept_shared_from``. Until it
    is accepted, members do not see it and nothing is published or signed for it. Only
    the co-op that first sent a proposal may change it."""
    document = item.activity.get("object")
    if not _names_this_coop(node, document, item.actor):
        return False
    assert isinstance(document, dict)
    shared = read_question(document)
    if not same_origin(shared.uri, item.actor):
        raise MalformedInput(f"{item.actor} sent a proposal {shared.uri} its server does not serve")
    hindrance = await _mirror_hindrance(node, document, shared)
    if hindrance is not None and not hindrance.late:
        raise MalformedInput(hindrance.reason)
    now = node.clock.now()
    coop_id = node.peers.coop_id
    state = remote_store.CLOSED if shared.closed else remote_store.OPEN

    def unit(conn: Connection) -> str:
        known = remote_store.by_uri(conn, shared.uri)
        if known is None:
            followed = follows.following_state(conn, actor_id=coop_id, followed=item.actor)
            # A network-wide proposal may come from any co-op of a network this co-op
            # belongs to; it is an invitation all the same.
            fellow = shared.network is not None and networks.relays(
                conn, item.actor, network=shared.network
            )
            if followed != follows.ACCEPTED and not fellow:
                raise Refused(
                    f"{item.actor} is not a co-op this co-op follows, nor a member of a "
                    "network it belongs to: its shared proposals are not taken"
                )
            # Too late for this co-op's own vote: the admin sees it, and may decline.
            trusted = hindrance is None and _trusted(conn, node, item.actor)
            taken = state if trusted else INVITED
            if (
                taken == INVITED
                and remote_store.waiting(conn, item.actor) >= MAX_INVITATIONS_WAITING
            ):
                raise Refused(
                    f"{item.actor} has {MAX_INVITATIONS_WAITING} shared proposals waiting "
                    "for this co-op's answer already"
                )
            remote_store.add(
                conn,
                key=key_of(shared.uri),
                uri=shared.uri,
                host=item.actor,
                document=document,
                state=taken,
                now=now,
            )
            return taken
        if known.host != item.actor:
            raise NotAuthorized(f"{shared.uri} was shared by {known.host}: only it may change it")
        # The admin's answer stands whatever the host says next: a declined proposal
        # stays declined while it is open, an invitation waits for the admin.
        kept = known.state
        if known.state not in (INVITED, DECLINED) or (known.state == DECLINED and shared.closed):
            kept = state
        remote_store.replace(conn, known.id, document, state=kept, now=now)
        return kept

    taken = await node.db.write(unit)
    if taken == remote_store.OPEN:
        # Again at an update, and at a retry: the mirror opens once, whatever failed.
        await _take_part(node, document, shared, item.actor)
    return True


@dataclass(frozen=True, slots=True)
class Hindrance:
    reason: str
    # Only too late: the proposal itself is fine.
    late: bool


async def _mirror_hindrance(
    node: Node, document: dict[str, Any], shared: SharedQuestion
) -> Hindrance | None:
    """Why this co-op could not hold its own vote on a proposal counted by subtotals or by
    co-op ballots (a proposal it cannot mirror, or too late to), or None."""
    if shared.counting_mode not in ("subtotal", "coop") or shared.closed:
        return None
    now = node.clock.now()
    colleges = await node.db.read(read_colleges)
    try:
        checked = parse_proposal_input(
            mirror_input(document, now),
            now=now,
            colleges=colleges,
            opened_elsewhere=True,
        )
    except Invalid as exc:
        where = f" ({exc.field})" if exc.field else ""
        return Hindrance(f"the proposal cannot be voted on here{where}: {exc.reason}", False)
    if checked.closes_at - now < MIN_DURATION:
        return Hindrance(
            "too late to take part: this co-op's own vote would close in less than "
            f"{MIN_DURATION.seconds // 60} minutes",
            True,
        )
    return None


async def _take_part(
    node: Node, document: dict[str, Any], shared: SharedQuestion, host: str
) -> None:
    """What taking part means beyond showing the proposal to members: counted by
    subtotals or by co-op ballots, this co-op's own vote (its mirror) opens."""
    counted_at_home = shared.counting_mode in ("subtotal", "coop")
    if counted_at_home and not shared.closed and shared.ends_at > node.clock.now():
        await open_mirror(node, document, host)


async def accept(node: Node, key: str) -> dict[str, Any]:
    """The admin accepts an invitation: members see the proposal and vote on it."""
    row = await node.db.read(lambda conn: remote_store.find(conn, key))
    if row is None:
        raise NotFound(f"no shared proposal {key!r} here")
    if row.state != INVITED:
        raise Conflict(f"this shared proposal is {row.state}, not waiting for an answer")
    document = row.document
    shared = read_question(document)
    state = remote_store.CLOSED if shared.closed else remote_store.OPEN
    hindrance = await _mirror_hindrance(node, document, shared)
    if hindrance is not None:
        raise Conflict(hindrance.reason)
    # The co-op's own vote first: if it cannot open, the invitation still waits.
    await _take_part(node, document, shared, row.host)
    now = node.clock.now()
    answered = await node.db.write(
        lambda conn: remote_store.answer(conn, row.id, was=[INVITED], state=state, now=now)
    )
    if not answered:
        raise Conflict("this shared proposal was answered meanwhile")
    return {"id": key, "state": state}


async def decline(node: Node, key: str) -> dict[str, Any]:
    """This co-op does not take part: the host is told (``Reject``)."""
    now = node.clock.now()
    row = await node.db.read(lambda conn: remote_store.find(conn, key))
    if row is None:
        raise NotFound(f"no shared proposal {key!r} here")
    if row.state == DECLINED:
        return {"id": key, "state": DECLINED}
    host_document = await node.peers.actor(row.host)
    inbox = host_document.get("inbox")
    if not isinstance(inbox, str):
        raise Conflict(f"{row.host} has no inbox to tell")
    reject = {
        "@context": AS_CONTEXT_URL,
        "id": node.urls.activity(uuid.uuid4().hex),
        "type": "Reject",
        "actor": node.urls.actor(node.settings.handle),
        "to": [row.host],
        "object": row.uri,
    }

    def unit(conn: Connection) -> None:
        if not remote_store.answer(
            conn, row.id, was=[INVITED, remote_store.OPEN], state=DECLINED, now=now
        ):
            raise Conflict("this shared proposal is closed or was answered meanwhile")
        outbox.publish(
            conn,
            reject,
            actor_id=node.peers.coop_id,
            inboxes=[inbox],
            now=now,
            policy=node.peers.policy,
        )

    await node.db.write(unit)
    node.delivery_wakeup.set()
    return {"id": key, "state": DECLINED}


async def vote_remote(
    node: Node, token: TokenInfo, row: RemoteProposal, choices: list[str]
) -> dict[str, Any]:
    """A member's ballot on a proposal hosted elsewhere: one ``Note`` per option, each
    with the member's proof, sent to the host in a ``Create`` signed as the member (as
    Mastodon sends votes). The host decides whether it counts."""
    if row.state == INVITED:
        raise NotFound(f"no shared proposal {row.key!r} here")
    if row.state == DECLINED:
        raise Conflict("this co-op declined to take part in this proposal")
    if row.state == remote_store.CLOSED:
        raise Conflict(Reason.AFTER_CLOSE.value)
    try:
        shared = row.question()
    except (ValueError, MalformedInput) as exc:
        raise Conflict("the host's copy of this proposal cannot be read") from exc
    now = node.clock.now()
    # By this node's own clock, whatever the host has said yet: a ballot the host would
    # refuse is not signed nor sent.
    if shared.starts_at is not None and now < shared.starts_at:
        raise Conflict(Reason.BEFORE_OPENING.value)
    if now >= shared.ends_at:
        raise Conflict(Reason.AFTER_CLOSE.value)
    names = {o.name for o in shared.options}
    if any(c not in names for c in choices):
        raise Invalid(Reason.UNKNOWN_OPTION.value, field="choices")
    if not choices or (not shared.multiple and len(choices) != 1):
        raise Invalid("choose one option", field="choices")
    assert token.actor_id is not None
    member_pk = token.actor_id
    host = await node.peers.actor(row.host)
    inbox = host.get("inbox")
    if not isinstance(inbox, str):
        raise Conflict(f"{row.host} has no inbox to send the ballot to")
    voter, ballot, notes = await signed_ballot(node, member_pk, row.uri, row.host, choices, now)
    creates = [
        documents.ballot_create(
            note, activity_id=f"{note['id']}/activity", actor=voter, to=row.host
        )
        for note in notes
    ]

    def unit(conn: Connection) -> None:
        for create in creates:
            outbox.publish(
                conn,
                create,
                actor_id=member_pk,
                inboxes=[inbox],
                now=now,
                policy=node.peers.policy,
                ordering_key=f"{row.uri} {voter}",
            )
        remote_store.record_sent(
            conn, row.id, member_pk, choices, activity_id=creates[0]["id"], now=now
        )

    await node.db.write(unit)
    node.delivery_wakeup.set()
    metrics.VOTES_SENT.inc()
    return {
        "ballot": ballot,
        "choices": choices,
        "cast_at": iso(now),
        "status": f"sent to {row.host}, which counts it",
        "notes": [c["object"] for c in creates],
    }
