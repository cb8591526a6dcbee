"""A proposal's life: created, then opened, then closed, each move made once.

A proposal is published to the co-op's followers and to its remote members' servers
(``Create(Question)``), so that members on Mastodon see a poll they can answer. It is
*scheduled* until its opening time, when its electorate is fixed: the members who may
vote then, with their colleges (and, for a shared proposal, the voters the other
co-ops' rosters list). While it is *open*, a ballot marks the counts as changed and
their ``Update(Question)`` goes out at most once a minute. At ``endTime`` (or as soon as
the node is back, if it was down then) it is *closed*: the stored ballots are counted
once more, the result is stored and published (the final ``Update(Question)`` and a
reply ``Note`` saying in words whether it passed and why, for Mastodon users, who see
counts, not outcomes). The governance worker (:mod:`node.governance.worker`) makes the
moves when they are due; each claims the proposal first, so that two workers never
make the same move.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from federation.errors import MalformedInput
from node.errors import Invalid
from node.governance import audience, documents, rosters, subtotals
from node.governance.mirrors import mirror_input
from node.governance.rules.proposal_input import (
    effective_colleges,
    parse_fraction,
    parse_proposal_input,
)
from node.governance.rules.tally import Reason, Result
from node.governance.store import ballots as ballot_store
from node.governance.store import coops, electorate, tally
from node.governance.store import proposals as proposal_store
from node.governance.store import remote as remote_store
from node.governance.store.rows import (
    NEXT,
    CoopTakingPart,
    Mirror,
    Mode,
    State,
    StoredProposal,
)
from node.members import store as members
from node.networks import joining
from node.runtime import Node
from node.services import remote_actors

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

COUNTS_EVERY = timedelta(minutes=1)


def read_colleges(conn: Connection) -> dict[str, Fraction] | None:
    """The co-op's colleges and their weights, if it has colleges."""
    found = members.list_colleges(conn)
    if not found:
        return None
    return {c.name: Fraction(c.weight_bp, members.FULL_WEIGHT_BP) for c in found}


def _question(node: Node, p: StoredProposal) -> dict[str, Any]:
    return documents.question(node.urls, node.settings.handle, p)


# --- created (scheduled) -----------------------------------------------------------------


async def create_proposal(
    node: Node, data: Any, *, author: str | None, mirror: Mirror | None = None
) -> dict[str, Any]:
    """Create a proposal from the JSON API's input and publish it; returns it as the API
    shows it. It opens at once if its time has come and it is not shared (a shared one
    opens once the governance worker has read the other co-ops' rosters). ``mirror``
    makes it this co-op's own vote on a shared proposal hosted elsewhere."""
    now = node.clock.now()
    coop_colleges = await node.db.read(read_colleges)
    checked = parse_proposal_input(
        data, now=now, colleges=coop_colleges, opened_elsewhere=mirror is not None
    )
    weights = effective_colleges(data, coop_colleges)
    weigh = checked.colleges_weigh and weights is not None
    network = await _network_of(node, data, opens_at=checked.opens_at)
    if network is None:
        shared = await rosters.resolve_electorate(node, data.get("electorate"))
    else:
        shared = await rosters.resolve_electorate(
            node, network.coops, limit=rosters.MAX_NETWORK_COOPS, field="network"
        )
    key = uuid.uuid4().hex
    own = node.urls.actor(node.settings.handle)
    if checked.counting_mode == Mode.COOP:
        # Each co-op is a voter and its own college, weighing as the proposal says.
        weights = await _coop_weights(
            node, data.get("coop_weights"), [own] + [p.coop for p in shared]
        )
        weigh = True

    def unit(conn: Connection) -> StoredProposal:
        pk = proposal_store.insert_proposal(
            conn,
            checked,
            key=key,
            uri=node.urls.proposal(key),
            author=author,
            actor_id=node.peers.coop_id,
            weigh=weigh,
            weights=weights,
            electorate=[own] + [p.coop for p in shared] if shared else None,
            network=None if network is None else network.id,
            mirror=mirror,
            now=now,
        )
        if shared:
            coops.invite(conn, pk, [(p.coop, p.inbox) for p in shared], own=own, now=now)
        elif checked.opens_at <= now:
            _open(conn, proposal_store.by_id(conn, pk), own=own)
        created = proposal_store.by_id(conn, pk)
        audience.publish(node, conn, "Create", _question(node, created), pk, now)
        return created

    created = await node.db.write(unit)
    node.delivery_wakeup.set()
    node.governance_wakeup.set()
    node.mail_wakeup.set()
    if checked.counting_mode == Mode.COOP:
        # The host co-op decides its own ballot like any other: its members vote on a
        # proposal of its own, whose close sends the co-op's ballot here.
        fresh = await node.db.read(lambda conn: proposal_store.get(conn, key))
        await open_mirror(node, _question(node, fresh), own, inbox=node.urls.shared_inbox())
    return documents.describe(created)


@dataclass(frozen=True, slots=True)
class NetworkElectorate:
    """A network-wide proposal's electorate: the network, and the co-ops it lists."""

    id: str
    coops: list[str]


async def _network_of(node: Node, data: Any, *, opens_at: datetime) -> NetworkElectorate | None:
    """The network a proposal names as its electorate (``network``: its actor URL or
    handle), with the co-ops it lists as members at the opening; None if it names none."""
    target = data.get("network") if isinstance(data, dict) else None
    if target is None:
        return None
    if data.get("electorate"):
        raise Invalid("name the co-ops (electorate) or a network, not both", field="network")
    if not isinstance(target, str) or not target.strip():
        raise Invalid("network is a network's handle or actor URL", field="network")
    try:
        document = await node.peers.resolve(target.strip())
    except Exception as exc:
        raise Invalid(f"{target}: {exc}", field="network") from exc
    network = str(document["id"])
    coops = await joining.network_coops(node, network, at=opens_at)
    own = node.urls.actor(node.settings.handle)
    if own not in coops:
        raise Invalid(f"this co-op is not on {network}'s members list", field="network")
    return NetworkElectorate(network, [c for c in coops if c != own])


async def _coop_weights(node: Node, raw: Any, coops: list[str]) -> dict[str, Fraction]:
    """Co-op mode: each co-op's weight, equal unless ``coop_weights`` names them all
    (by handle or actor URL) with shares summing to 100 %."""
    if raw is None:
        return {coop: Fraction(1, len(coops)) for coop in coops}
    if not isinstance(raw, dict):
        raise Invalid("coop_weights maps each co-op to its share", field="coop_weights")
    own = coops[0]
    weights: dict[str, Fraction] = {}
    for target, share in raw.items():
        where = f"coop_weights.{target}"
        if target in (own, f"{node.settings.handle}@{node.settings.domain}"):
            coop = own
        else:
            try:
                coop = str((await node.peers.resolve(str(target)))["id"])
            except Exception as exc:
                raise Invalid(f"{target}: {exc}", field=where) from exc
        weights[coop] = parse_fraction(share, where)
    if set(weights) != set(coops):
        raise Invalid("coop_weights names every co-op of the electorate", field="coop_weights")
    if sum(weights.values()) != 1 or not all(weights.values()):
        raise Invalid("co-op weights are above 0 and sum to 100 %", field="coop_weights")
    return weights


async def open_mirror(
    node: Node, document: dict[str, Any], host: str, *, inbox: str | None = None
) -> None:
    """This co-op's own vote on a shared proposal counted by subtotals or by co-op
    ballots, once: its members vote there, and its close sends the host the result."""
    uri = str(document["id"])
    if await node.db.read(lambda conn: proposal_store.mirror_key(conn, uri)) is not None:
        return
    if inbox is None:
        inbox = remote_actors.delivery_inbox(await node.peers.actor(host))
        if inbox is None:
            raise MalformedInput(f"{host} has no inbox for this co-op's result")
    data = mirror_input(document, node.clock.now())
    about = Mirror(
        of=uri,
        host=host,
        inbox=inbox,
        mode=str(document.get("countingMode")),
        tie=str(document.get("coopTie") or "abstain"),
    )
    try:
        await create_proposal(node, data, author=None, mirror=about)
    except Invalid as exc:
        raise MalformedInput(f"the shared proposal {uri} cannot be mirrored here: {exc}") from exc


# --- scheduled -> open -------------------------------------------------------------------


def _open(
    conn: Connection, p: StoredProposal, *, own: str, others: Sequence[electorate.Elector] = ()
) -> None:
    """Fix the electorate as of the opening, and open."""
    assert NEXT[p.state] is State.OPEN
    electorate.fix(conn, p.id, p.opens_at, own=own, weights=p.college_weights, others=others)


async def open_due(node: Node, pk: int, now: datetime) -> bool:
    """Open the scheduled proposal ``pk``; False if another worker did. A shared one
    reads each co-op's roster first (a co-op whose roster cannot be read has no voters,
    and the proposal says why)."""
    takers = await node.db.read(lambda conn: coops.participants(conn, pk))
    own = node.urls.actor(node.settings.handle)
    if not takers:

        def open_unit(conn: Connection) -> bool:
            if not proposal_store.claim_opening(conn, pk, now):
                return False
            _open(conn, proposal_store.by_id(conn, pk), own=own)
            return True

        return await node.db.write(open_unit)
    p = await node.db.read(lambda conn: proposal_store.by_id(conn, pk))
    if p.counting_mode is Mode.COOP:
        return await node.db.write(lambda conn: _open_coops(conn, p, takers, now))
    read: dict[str, list[electorate.Elector]] = {}
    failed: dict[str, str] = {}
    for coop in takers:
        if coop.state != coops.INVITED:
            continue
        try:
            read[coop.coop] = await rosters.read_roster(node, coop.coop, p.opens_at)
        except Exception as exc:  # the proposal opens on time all the same
            log.info("proposal %s: the roster of %s: %s", pk, coop.coop, exc)
            failed[coop.coop] = f"its roster could not be read: {exc}"

    def unit(conn: Connection) -> bool:
        if not proposal_store.claim_opening(conn, pk, now):
            return False
        by_subtotal = p.counting_mode is Mode.SUBTOTAL
        # With subtotals the host never sees the other co-ops' voters: it keeps how
        # many each roster had (in the proposal's colleges, where they weigh).
        others = [] if by_subtotal else [e for electors in read.values() for e in electors]
        _open(conn, p, own=own, others=others)
        sizes = electorate.sizes(conn, pk)
        if by_subtotal:
            weights = p.college_weights
            for name, electors in read.items():
                sizes[name] = sum(1 for e in electors if weights is None or e.college in weights)
            proposal_store.set_eligible(conn, pk, sum(sizes.values()))
        for coop in takers:
            name = coop.coop
            size = sizes.get(name, 0)
            if name in read:
                coops.settle(conn, pk, name, now=now, roster_size=size, state=coops.LISTED)
            elif name in failed:
                coops.settle(
                    conn, pk, name, now=now, roster_size=size, state=coops.FAILED,
                    reason=failed[name],
                )  # fmt: skip
            else:
                coops.settle(conn, pk, name, now=now, roster_size=size)
        return True

    return await node.db.write(unit)


def _open_coops(
    conn: Connection, p: StoredProposal, takers: list[CoopTakingPart], now: datetime
) -> bool:
    """Co-op mode: the voters are the co-ops themselves (the host and those invited)."""
    if not proposal_store.claim_opening(conn, p.id, now):
        return False
    assert NEXT[p.state] is State.OPEN
    electorate.fix_coops(
        conn, p.id, [c.coop for c in takers if c.state in (coops.HOST, coops.INVITED)]
    )
    for coop in takers:
        if coop.state == coops.INVITED:
            coops.settle(conn, p.id, coop.coop, now=now, roster_size=1, state=coops.LISTED)
        elif coop.state == coops.HOST:
            coops.settle(conn, p.id, coop.coop, now=now, roster_size=1)
    return True


# --- open: the live counts ---------------------------------------------------------------


def publish_counts(node: Node, conn: Connection, *, pk: int, now: datetime) -> bool:
    """New counts as ``Update(Question)``, if still due (another worker may have done it)."""
    if not proposal_store.claim_counts(conn, pk, now, COUNTS_EVERY):
        return False
    result = tally.count_proposal(conn, proposal_store.by_id(conn, pk))
    proposal_store.set_counts(conn, pk, dict(result.counts), result.turnout, now)
    audience.publish(node, conn, "Update", _question(node, proposal_store.by_id(conn, pk)), pk, now)
    return True


# --- open -> closed ----------------------------------------------------------------------

_WHY = {"replaced": Reason.REPLACED.value, "set aside": Reason.ALREADY_VOTED.value}


def close(node: Node, conn: Connection, *, pk: int, now: datetime) -> bool:
    """Freeze the counts, apply the rules, publish the outcome; a co-op's own vote on a
    shared proposal sends the host its result. Once per proposal: False if it is not
    open (another worker closed it)."""
    p = proposal_store.open_by_id(conn, pk)
    if p is None:
        return False
    assert NEXT[p.state] is State.CLOSED
    claimed = State.OPEN
    if p.shared_by_subtotals:
        # Our own subtotal first, so that the outcome's participation shows it.
        claimed = State.CLOSED
        if not proposal_store.claim_close(conn, pk):
            return False  # another worker closes it
        subtotals.keep_own_subtotal(conn, node, p, now)
    result = tally.count_proposal(conn, p)
    if not proposal_store.record_close(
        conn,
        pk,
        was=claimed,
        counts=dict(result.counts),
        voters=result.turnout,
        outcome=_outcome(conn, pk, result),
        now=now,
    ):
        return False
    # Frozen: each valid ballot that does not count says why (the counted ones stay
    # "valid"), so that the published ballots need no recount.
    others: dict[str, list[int]] = {}
    for ballot_id, status in tally.statuses(conn, pk, p.allow_change):
        if status != "counted":
            others.setdefault(status, []).append(ballot_id)
    for became, ids in others.items():
        ballot_store.settle(conn, became, _WHY[became], ids)
    closed = proposal_store.by_id(conn, pk)
    handle = node.settings.handle
    audience.publish(node, conn, "Update", _question(node, closed), pk, now)
    audience.publish(
        node, conn, "Create", documents.outcome_note(node.urls, handle, closed), pk, now
    )
    mirror = closed.mirror
    if mirror is not None and not remote_store.declined(conn, mirror.of):
        if mirror.mode == Mode.COOP:
            subtotals.send_coop_ballot(conn, node, closed, mirror, result, now)
        else:
            subtotals.send_subtotal(conn, node, closed, mirror, result, now)
    log.info("proposal %s closed: %s", closed.uri, result.reason)
    return True


def _outcome(conn: Connection, pk: int, result: Result) -> dict[str, Any]:
    """The published outcome; for a shared proposal, with each co-op's participation:
    its state, how many voters its roster gave and how many of them voted."""
    outcome = documents.result_json(result)
    takers = coops.participants(conn, pk)
    if takers:
        sent = coops.received(conn, pk)
        voted = ballot_store.voted_per_coop(conn, pk)
        outcome["participation"] = [_participation(c, voted, sent) for c in takers]
    return outcome


def _participation(
    coop: CoopTakingPart, voted: dict[str, int], sent: dict[str, int]
) -> dict[str, Any]:
    name = coop.coop
    entry: dict[str, Any] = {
        "coop": name,
        "state": coop.state,
        "eligible": coop.roster_size or 0,
        "voted": sent.get(name, voted.get(name, 0)),
    }
    if coop.reason:
        entry["reason"] = coop.reason
    elif name in sent:
        entry["subtotal"] = True
    return entry
