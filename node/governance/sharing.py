"""Shared proposals: the members of several co-ops decide together, each co-op on its own
node (PROTOCOL.md, "Counting modes on shared proposals"). This module holds both sides.

The host
    names the co-ops taking part (its electorate), sends them the ``Question``, and at
    the opening reads each one's roster (its ``members`` collection, with a signed
    request, so a co-op that shows its roster only to partners can show it to the host).
    Eligibility is fixed then: the voting members each roster lists as members since
    the opening or before, with the college their co-op gives them; an actor that two
    co-ops list is one voter. A co-op whose roster cannot be read has no voters, and
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
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from federation.errors import MalformedInput, NotAuthorized, Refused
from federation.inbox import actor_id
from federation.jsonld import AS_CONTEXT_URL
from federation.origins import same_origin
from node.errors import Conflict, Forbidden, Invalid, NotFound
from node.follows import store as follows
from node.governance.rules.proposal_input import MIN_DURATION, iso, parse_proposal_input
from node.governance.rules.shared_question import SharedQuestion, read_question
from node.governance.rules.tally import Reason
from node.members.store import VOTING_ROLES
from node.runtime import Node
from node.services import outbox, remote_actors
from node.services.inbox import InboxItem
from node.services.tokens import TokenInfo
from node.storage.tables import proposal_coops, remote_proposals, sent_ballots

log = logging.getLogger(__name__)

MAX_COOPS = 50
MAX_ROSTER_PAGES = 1000
MAX_ROSTER = 200_000
COOP_TYPES = ("Group", "Organization")
# A shared proposal from a followed co-op, waiting for the admin to accept or decline it.
INVITED = "invited"
# A followed co-op's invitations waiting for the admin: past this, more are refused until
# the admin answers (a co-op gone wrong cannot bury the admin's page).
MAX_INVITATIONS_WAITING = 20


@dataclass(frozen=True, slots=True)
class Participant:
    coop: str
    inbox: str


@dataclass(frozen=True, slots=True)
class Elector:
    voter: str
    college: str | None
    coop: str


# --- the host ----------------------------------------------------------------------------------


async def resolve_electorate(node: Node, targets: Any) -> list[Participant]:
    """The co-ops named by handle or actor URL, each resolved (WebFinger and the actor
    document agreeing) and checked to be a co-op; this co-op itself is left out, since
    the host always takes part."""
    if targets is None:
        return []
    if not isinstance(targets, list) or len(targets) > MAX_COOPS:
        raise Invalid(f"electorate is a list of up to {MAX_COOPS} co-ops", field="electorate")
    own = node.urls.actor(node.settings.handle)
    found: dict[str, Participant] = {}
    for n, target in enumerate(targets):
        where = f"electorate[{n}]"
        if not isinstance(target, str) or not target.strip():
            raise Invalid("a co-op is named by its handle or actor URL", field=where)
        try:
            document = await node.peers.resolve(target.strip())
        except Exception as exc:
            raise Invalid(f"{target}: {exc}", field=where) from exc
        coop = str(document["id"])
        if coop == own:
            continue
        if document.get("type") not in COOP_TYPES:
            raise Invalid(f"{target} is a {document.get('type')}, not a co-op", field=where)
        inbox = remote_actors.delivery_inbox(document)
        if inbox is None:
            raise Invalid(f"{target} has no inbox", field=where)
        found[coop] = Participant(coop, inbox)
    return list(found.values())


def invite(
    conn: Connection, pk: int, participants: list[Participant], *, own: str, now: datetime
) -> None:
    """Record the co-ops taking part, the host among them."""
    rows = [{"coop": own, "inbox": None, "state": "host"}] + [
        {"coop": p.coop, "inbox": p.inbox, "state": "invited"} for p in participants
    ]
    conn.execute(
        insert(proposal_coops),
        [{**row, "proposal_id": pk, "updated_at": now} for row in rows],
    )


def participants(conn: Connection, pk: int) -> list[RowMapping]:
    return list(
        conn.execute(
            select(proposal_coops)
            .where(proposal_coops.c.proposal_id == pk)
            .order_by(proposal_coops.c.state != "host", proposal_coops.c.coop)
        ).mappings()
    )


async def read_roster(node: Node, coop: str, opens_at: datetime) -> list[Elector]:
    """The voting members the co-op's roster lists as members at ``opens_at``."""
    document = await node.peers.actor(coop)
    collection = document.get("members")
    if not isinstance(collection, str) or not same_origin(collection, coop):
        raise MalformedInput(f"{coop} publishes no roster on its own host")
    first = (await node.peers.fetch(collection)).get("first")
    if first is None:
        raise Forbidden(
            f"{coop} does not show its roster to this co-op "
            f"(its admin may name {node.settings.domain} in roster_partners)"
        )
    page_url = actor_id(first)
    electors: dict[str, Elector] = {}
    pages = 0
    while page_url is not None:
        pages += 1
        if pages > MAX_ROSTER_PAGES or not same_origin(page_url, coop):
            raise MalformedInput(f"{coop}'s roster pages go on too long, or elsewhere")
        page = await node.peers.fetch(page_url)
        items = page.get("orderedItems", page.get("items", []))
        if not isinstance(items, list):
            raise MalformedInput(f"{coop}'s roster page {page_url} has no list of members")
        for item in items:
            elector = _elector(item, coop, opens_at)
            if elector is not None:
                electors.setdefault(elector.voter, elector)
        if len(electors) > MAX_ROSTER:
            raise MalformedInput(f"{coop}'s roster lists more than {MAX_ROSTER} members")
        following = page.get("next")
        page_url = actor_id(following) if following is not None else None
    return list(electors.values())


def _elector(item: Any, coop: str, opens_at: datetime) -> Elector | None:
    """A roster entry, if it names a voting member since the opening or before."""
    if not isinstance(item, dict):
        return None
    voter = item.get("actor")
    since = item.get("memberSince")
    role = item.get("role", "member")
    college = item.get("college")
    if not isinstance(voter, str) or not voter.startswith(("https://", "http://")):
        return None
    if role not in VOTING_ROLES or not isinstance(since, str):
        return None
    try:
        joined = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return None
    if joined.tzinfo is None or joined > opens_at:
        return None
    if college is not None and not isinstance(college, str):
        return None
    return Elector(voter, college, coop)


async def on_reject(node: Node, item: InboxItem) -> bool:
    """A participating co-op declines a shared proposal we host. False if the Reject
    is not about one of our proposals."""
    target = actor_id(item.activity.get("object"))
    if target is None or not target.startswith(node.urls.proposal("")):
        return False
    now = node.clock.now()

    def unit(conn: Connection) -> bool:
        from node.storage.tables import proposals

        pk = conn.execute(select(proposals.c.id).where(proposals.c.uri == target)).scalar()
        if pk is None:
            return False
        conn.execute(
            update(proposal_coops)
            .where(
                proposal_coops.c.proposal_id == pk,
                proposal_coops.c.coop == item.actor,
                proposal_coops.c.state != "host",
            )
            .values(state="declined", reason="the co-op declined to take part", updated_at=now)
        )
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


def _waiting(conn: Connection, host: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(remote_proposals)
            .where(remote_proposals.c.host == host, remote_proposals.c.state == INVITED)
        ).scalar_one()
    )


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
    follow is refused; one from a followed co-op waits for the admin (``invited``), unless
    the admin listed its host in ``accept_shared_from``. Until it is accepted, members do
    not see it and nothing is published or signed for it. Only the co-op that first sent
    a proposal may change it."""
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
    text = json.dumps(document, ensure_ascii=False)
    state = "closed" if shared.closed else "open"

    def unit(conn: Connection) -> str:
        row = conn.execute(
            select(remote_proposals.c.id, remote_proposals.c.state, remote_proposals.c.host).where(
                remote_proposals.c.uri == shared.uri
            )
        ).first()
        if row is None:
            followed = follows.following_state(conn, actor_id=coop_id, followed=item.actor)
            if followed != follows.ACCEPTED:
                raise Refused(
                    f"{item.actor} is not a co-op this co-op follows: "
                    "its shared proposals are not taken"
                )
            # Too late for this co-op's own vote: the admin sees it, and may decline.
            trusted = hindrance is None and _trusted(conn, node, item.actor)
            taken = state if trusted else INVITED
            if taken == INVITED and _waiting(conn, item.actor) >= MAX_INVITATIONS_WAITING:
                raise Refused(
                    f"{item.actor} has {MAX_INVITATIONS_WAITING} shared proposals waiting "
                    "for this co-op's answer already"
                )
            conn.execute(
                insert(remote_proposals).values(
                    key=key_of(shared.uri),
                    uri=shared.uri,
                    host=item.actor,
                    document=text,
                    state=taken,
                    received_at=now,
                    updated_at=now,
                )
            )
            return taken
        if row.host != item.actor:
            raise NotAuthorized(f"{shared.uri} was shared by {row.host}: only it may change it")
        # The admin's answer stands whatever the host says next: a declined proposal
        # stays declined while it is open, an invitation waits for the admin.
        kept = row.state
        if row.state not in (INVITED, "declined") or (row.state == "declined" and shared.closed):
            kept = state
        conn.execute(
            update(remote_proposals)
            .where(remote_proposals.c.id == row.id)
            .values(document=text, state=kept, updated_at=now)
        )
        return str(kept)

    taken = await node.db.write(unit)
    if taken == "open":
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
    from node.governance import proposing, subtotals

    if shared.counting_mode not in ("subtotal", "coop") or shared.closed:
        return None
    now = node.clock.now()
    colleges = await node.db.read(proposing.read_colleges)
    try:
        checked = parse_proposal_input(
            subtotals.mirror_input(document, now),
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
        await mirror(node, document, host)


def invitations(conn: Connection) -> list[dict[str, Any]]:
    """The shared proposals waiting for the admin's answer, newest first."""
    rows = conn.execute(
        select(remote_proposals)
        .where(remote_proposals.c.state == INVITED)
        .order_by(remote_proposals.c.received_at.desc(), remote_proposals.c.id.desc())
        .limit(200)
    ).mappings()
    return [describe_remote(row) for row in rows]


async def accept(node: Node, key: str) -> dict[str, Any]:
    """The admin accepts an invitation: members see the proposal and vote on it."""
    row = await node.db.read(lambda conn: find_remote(conn, key))
    if row is None:
        raise NotFound(f"no shared proposal {key!r} here")
    if row["state"] != INVITED:
        raise Conflict(f"this shared proposal is {row['state']}, not waiting for an answer")
    document = json.loads(row["document"])
    shared = read_question(document)
    state = "closed" if shared.closed else "open"
    hindrance = await _mirror_hindrance(node, document, shared)
    if hindrance is not None:
        raise Conflict(hindrance.reason)
    # The co-op's own vote first: if it cannot open, the invitation still waits.
    await _take_part(node, document, shared, row["host"])
    now = node.clock.now()

    def unit(conn: Connection) -> bool:
        done = conn.execute(
            update(remote_proposals)
            .where(remote_proposals.c.id == row["id"], remote_proposals.c.state == INVITED)
            .values(state=state, updated_at=now)
        )
        return bool(done.rowcount)

    if not await node.db.write(unit):
        raise Conflict("this shared proposal was answered meanwhile")
    return {"id": key, "state": state}


def declined(conn: Connection, uri: str) -> bool:
    """Whether this co-op declined the shared proposal ``uri`` (after taking part, say):
    its own vote then sends the host nothing."""
    state = conn.execute(
        select(remote_proposals.c.state).where(remote_proposals.c.uri == uri)
    ).scalar()
    return state == "declined"


def visible(row: RowMapping) -> bool:
    """Whether members may see a shared proposal: not while it waits for the admin."""
    return bool(row["state"] != INVITED)


def find_remote(conn: Connection, key: str) -> RowMapping | None:
    return (
        conn.execute(select(remote_proposals).where(remote_proposals.c.key == key))
        .mappings()
        .first()
    )


def list_remote(conn: Connection, *, limit: int = 100) -> list[RowMapping]:
    """The shared proposals members see (invitations left out), newest first."""
    return list(
        conn.execute(
            select(remote_proposals)
            .where(remote_proposals.c.state != INVITED)
            .order_by(remote_proposals.c.received_at.desc())
            .limit(limit)
        ).mappings()
    )


def describe_remote(
    row: RowMapping, voted: dict[str, Any] | None = None, mirror: str | None = None
) -> dict[str, Any]:
    described: dict[str, Any] = {
        "id": row["key"],
        "uri": row["uri"],
        "host": row["host"],
        "state": row["state"],
        # Counted by subtotals: members vote on this co-op's own proposal of that key.
        "mirror": mirror,
        "your_ballot": voted,
    }
    try:
        shared = read_question(json.loads(row["document"]))
    except (ValueError, MalformedInput) as exc:
        # Stored before documents were read at receipt: shown for what it is.
        reason = exc.reason if isinstance(exc, MalformedInput) else "not JSON"
        return {**described, "title": None, "malformed": reason}
    return {
        **described,
        "title": shared.title,
        "options": [o.name for o in shared.options],
        "counts": shared.counts,
        "voters": shared.voters,
        "opens_at": iso(shared.starts_at) if shared.starts_at else None,
        "closes_at": iso(shared.ends_at),
        "outcome": shared.outcome,
        "counting_mode": shared.counting_mode,
    }


async def mirror(
    node: Node, document: dict[str, Any], host: str, *, inbox: str | None = None
) -> None:
    """This co-op's own vote on a shared proposal counted by subtotals or by co-op
    ballots, once: its members vote there, and its close sends the host the result."""
    from node.governance import proposing, subtotals

    uri = str(document["id"])
    if await node.db.read(lambda conn: mirror_key(conn, uri)) is not None:
        return
    if inbox is None:
        inbox = remote_actors.delivery_inbox(await node.peers.actor(host))
        if inbox is None:
            raise MalformedInput(f"{host} has no inbox for this co-op's result")
    data = subtotals.mirror_input(document, node.clock.now())
    about = {
        "of": uri,
        "host": host,
        "inbox": inbox,
        "mode": str(document.get("countingMode")),
        "tie": str(document.get("coopTie") or "abstain"),
    }
    try:
        await proposing.create_proposal(node, data, author=None, mirror=about)
    except Invalid as exc:
        raise MalformedInput(f"the shared proposal {uri} cannot be mirrored here: {exc}") from exc


def mirror_key(conn: Connection, uri: str) -> str | None:
    """The key of this co-op's own vote mirroring the shared proposal ``uri``, if any."""
    from node.storage.tables import proposals

    found = conn.execute(
        select(proposals.c.key, proposals.c.mirror).where(
            proposals.c.mirror.contains(json.dumps(uri), autoescape=True)
        )
    ).all()
    for key, mirror in found:
        if json.loads(mirror).get("of") == uri:
            return str(key)
    return None


async def decline(node: Node, key: str) -> dict[str, Any]:
    """This co-op does not take part: the host is told (``Reject``)."""
    now = node.clock.now()
    host_document: dict[str, Any] | None = None
    row = await node.db.read(lambda conn: find_remote(conn, key))
    if row is None:
        raise NotFound(f"no shared proposal {key!r} here")
    if row["state"] == "declined":
        return {"id": key, "state": "declined"}
    host_document = await node.peers.actor(row["host"])
    inbox = host_document.get("inbox")
    if not isinstance(inbox, str):
        raise Conflict(f"{row['host']} has no inbox to tell")
    coop = node.urls.actor(node.settings.handle)
    reject = {
        "@context": AS_CONTEXT_URL,
        "id": node.urls.activity(uuid.uuid4().hex),
        "type": "Reject",
        "actor": coop,
        "to": [row["host"]],
        "object": row["uri"],
    }

    def unit(conn: Connection) -> None:
        done = conn.execute(
            update(remote_proposals)
            .where(
                remote_proposals.c.id == row["id"],
                remote_proposals.c.state.in_([INVITED, "open"]),
            )
            .values(state="declined", updated_at=now)
        )
        if not done.rowcount:
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
    return {"id": key, "state": "declined"}


async def vote_remote(
    node: Node, token: TokenInfo, row: RowMapping, choices: list[str]
) -> dict[str, Any]:
    """A member's ballot on a proposal hosted elsewhere: one ``Note`` per option, each
    with the member's proof, sent to the host in a ``Create`` signed as the member (as
    Mastodon sends votes). The host decides whether it counts."""
    from node.governance.voting import NOTE_CONTEXT, signed_ballot

    if row["state"] == INVITED:
        raise NotFound(f"no shared proposal {row['key']!r} here")
    if row["state"] == "declined":
        raise Conflict("this co-op declined to take part in this proposal")
    if row["state"] == "closed":
        raise Conflict(Reason.AFTER_CLOSE.value)
    try:
        shared = read_question(json.loads(row["document"]))
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
    host = await node.peers.actor(row["host"])
    inbox = host.get("inbox")
    if not isinstance(inbox, str):
        raise Conflict(f"{row['host']} has no inbox to send the ballot to")
    voter, ballot, notes = await signed_ballot(node, token, row["uri"], row["host"], choices, now)
    creates = [
        {
            "@context": NOTE_CONTEXT,
            "id": f"{note['id']}/activity",
            "type": "Create",
            "actor": voter,
            "to": [row["host"]],
            "object": note,
        }
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
                ordering_key=f"{row['uri']} {voter}",
            )
        conn.execute(
            insert(sent_ballots).values(
                proposal_id=row["id"],
                actor_id=member_pk,
                choices=json.dumps(choices, ensure_ascii=False),
                activity_id=creates[0]["id"],
                sent_at=now,
            )
        )

    await node.db.write(unit)
    node.delivery_wakeup.set()
    return {
        "ballot": ballot,
        "choices": choices,
        "cast_at": iso(now),
        "status": f"sent to {row['host']}, which counts it",
        "notes": [c["object"] for c in creates],
    }


def last_sent(conn: Connection, proposal_pk: int, member_pk: int | None) -> dict[str, Any] | None:
    if member_pk is None:
        return None
    row = conn.execute(
        select(sent_ballots.c.choices, sent_ballots.c.sent_at)
        .where(sent_ballots.c.proposal_id == proposal_pk, sent_ballots.c.actor_id == member_pk)
        .order_by(sent_ballots.c.sent_at.desc(), sent_ballots.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {"choices": json.loads(row.choices), "sent_at": iso(row.sent_at)}
