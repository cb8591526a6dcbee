"""Governance proposals: opening one, publishing it as a ``Question``, its live counts,
and its close with the outcome.

A proposal is published to the co-op's followers and to its remote members' servers
(``Create(Question)``), so that members on Mastodon see a poll they can answer. Its
electorate is fixed when it opens: the members who may vote then, with their colleges
(``proposal_voters``). While it is open, a ballot marks the counts as stale and the
governance worker publishes ``Update(Question)`` with new counts at most once a minute.
At ``endTime`` (or as soon as the node is back, if it was down then) the worker counts
the stored ballots once more, stores the result and publishes the final
``Update(Question)`` with the outcome and a reply ``Note`` saying in words whether the
proposal passed and why, for Mastodon users (Mastodon shows counts, not outcomes).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from functools import partial
from typing import Any

from sqlalchemy import Integer, and_, func, insert, literal, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from federation.jsonld import AS_CONTEXT_URL, coop_context
from node import activities
from node.documents import PUBLIC
from node.errors import Invalid, NotFound
from node.follows import store as follows
from node.governance import sharing, stored, subtotals
from node.governance.rules.digest import roster_digest
from node.governance.rules.proposal_input import (
    ProposalInput,
    effective_colleges,
    fraction_text,
    iso,
    parse_fraction,
    parse_proposal_input,
    rule_of,
)
from node.governance.rules.question_text import titled
from node.governance.rules.tally import Option, Proposal, Reason, Result, Role, decide
from node.members import store as members
from node.runtime import Node, Poller
from node.services import outbox
from node.services.remote_actors import delivery_inbox
from node.storage.tables import (
    ballots,
    inbox_activities,
    proposal_coops,
    proposal_voters,
    proposals,
    remote_actors,
)
from node.storage.tables import members as members_table

log = logging.getLogger(__name__)

SCHEDULED, OPEN, CLOSED = "scheduled", "open", "closed"
COUNTS_EVERY = timedelta(minutes=1)
CONTEXT = [AS_CONTEXT_URL, coop_context()]


# --- reading a stored proposal ------------------------------------------------------------


def options_of(row: RowMapping) -> tuple[Option, ...]:
    return tuple(Option(o["name"], Role(o["role"])) for o in json.loads(row["options"]))


def weights_of(row: RowMapping) -> dict[str, Fraction] | None:
    if not row["colleges_weigh"] or not row["college_weights"]:
        return None
    return {name: Fraction(w) for name, w in json.loads(row["college_weights"]).items()}


def tally_proposal(row: RowMapping) -> Proposal:
    """The settings the tally reads, from a stored proposal."""
    return Proposal(
        options=options_of(row),
        opens_at=row["opens_at"],
        closes_at=row["closes_at"],
        rule=rule_of(
            row["rule"],
            None if row["threshold"] is None else Fraction(row["threshold"]),
            row["block_at"],
        ),
        multiple_choice=bool(row["multiple_choice"]),
        max_choices=row["max_choices"],
        quorum=Fraction(row["quorum"]),
        abstentions_count_for_quorum=bool(row["abstentions_count"]),
        replacements_allowed=bool(row["allow_change"]),
        college_weights=weights_of(row),
        weighed_by="co-op" if row["counting_mode"] == "coop" else "college",
    )


def get_row(conn: Connection, key: str) -> RowMapping:
    row = conn.execute(select(proposals).where(proposals.c.key == key)).mappings().first()
    if row is None:
        raise NotFound(f"no proposal {key!r} here")
    return row


def row_by_uri(conn: Connection, uri: str) -> RowMapping | None:
    return conn.execute(select(proposals).where(proposals.c.uri == uri)).mappings().first()


# --- documents -------------------------------------------------------------------------------


def result_json(result: Result) -> dict[str, Any]:
    """The outcome as published: exact shares as "p/q" strings."""
    out: dict[str, Any] = {
        "result": result.outcome.value,
        "passed": result.passed,
        "reason": result.reason,
        "eligible": result.eligible,
        "quorumNeeded": result.quorum_needed,
        "turnout": result.turnout,
        "quorumTurnout": result.quorum_turnout,
        "counts": dict(result.counts),
    }
    if result.support is not None:
        out["support"] = fraction_text(result.support)
    if result.weighted_support is not None:
        out["weightedSupport"] = fraction_text(result.weighted_support)
    if result.weighted_shares is not None:
        out["weightedShares"] = {k: fraction_text(v) for k, v in result.weighted_shares.items()}
    if result.colleges:
        out["colleges"] = [
            {
                "name": c.name,
                **({} if c.weight is None else {"weight": fraction_text(c.weight)}),
                "voters": c.voters,
                "counts": dict(c.counts),
            }
            for c in result.colleges
        ]
    return out


def question(node: Node, row: RowMapping) -> dict[str, Any]:
    """The proposal as a ``Question``: a poll to Mastodon, a proposal with its rules and
    outcome to a coopnode."""
    key = row["key"]
    handle = node.settings.handle
    shown: dict[str, Any] = (
        json.loads(row["counts"]) if row["counts"] else {"counts": {}, "voters": 0}
    )
    counts: dict[str, int] = shown["counts"]
    choices = [
        {
            "type": "Note",
            "name": o.name,
            "optionRole": o.role.value,
            "replies": {"type": "Collection", "totalItems": counts.get(o.name, 0)},
        }
        for o in options_of(row)
    ]
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": row["uri"],
        "type": "Question",
        "attributedTo": node.urls.actor(handle),
        "name": row["title"],
        "content": titled(row["title"], row["content"] or ""),
        "source": {"content": json.loads(row["source"])["text"], "mediaType": "text/markdown"},
        ("anyOf" if row["multiple_choice"] else "oneOf"): choices,
        "startTime": iso(row["opens_at"]),
        "endTime": iso(row["closes_at"]),
        "votersCount": shown["voters"],
        "quorum": row["quorum"],
        "allowBallotChange": bool(row["allow_change"]),
        "abstentionsCountTowardQuorum": bool(row["abstentions_count"]),
        "countingMode": row["counting_mode"],
        "electorate": json.loads(row["source"]).get("electorate") or [node.urls.actor(handle)],
        "published": iso(row["published"]),
        "updated": iso(row["updated"]),
        "url": row["uri"],
        "to": [PUBLIC],
        "cc": [node.urls.followers(handle)],
    }
    language = json.loads(row["source"]).get("language")
    if language:
        doc["contentMap"] = {language: doc["content"]}
    if row["multiple_choice"]:
        doc["maxChoices"] = row["max_choices"]
    elif row["rule"] == "qualified":
        doc["decisionRule"] = {"type": "qualified", "threshold": row["threshold"]}
    elif row["rule"] == "consent":
        doc["decisionRule"] = {"type": "consent", "blockAt": row["block_at"]}
    else:
        doc["decisionRule"] = {"type": row["rule"]}
    weights = weights_of(row)
    if weights is not None:
        doc["colleges"] = [{"name": n, "weight": fraction_text(w)} for n, w in weights.items()]
    tie = json.loads(row["source"]).get("coop_tie")
    if tie:
        doc["coopTie"] = tie
    if row["state"] == CLOSED:
        doc["closed"] = iso(row["closed_at"] or row["closes_at"])
        doc["outcome"] = json.loads(row["outcome"])
        if row["open_ballot"]:
            doc["ballots"] = node.urls.proposal_ballots(key)
            doc["rosterSnapshot"] = {
                "id": node.urls.proposal_electorate(key),
                "totalItems": row["eligible"],
                "digest": row["roster_digest"],
            }
        else:
            doc["rosterSnapshot"] = {"totalItems": row["eligible"], "digest": row["roster_digest"]}
        if row["counting_mode"] == "subtotal":
            doc["subtotals"] = f"{row['uri']}/subtotals"
    return doc


def outcome_note(node: Node, row: RowMapping) -> dict[str, Any]:
    """The reply under the poll that says whether it passed and why, in words."""
    outcome = json.loads(row["outcome"])
    handle = node.settings.handle
    verdict = {
        "passed": "Passed",
        "rejected": "Rejected",
        "no quorum": "Not decided: no quorum",
        "blocked": "Blocked",
        "counted": "Counted",
    }[outcome["result"]]
    lines = [f"<p><strong>{_escape(row['title'])}</strong>: {verdict}.</p>"]
    lines.append(f"<p>{_escape(outcome['reason'])}.</p>")
    counts = ", ".join(f"{_escape(k)} {v}" for k, v in outcome["counts"].items())
    lines.append(
        f"<p>{counts}. {outcome['turnout']} of {outcome['eligible']} eligible members voted.</p>"
    )
    if row["open_ballot"]:
        ballots_url = node.urls.proposal_ballots(row["key"])
        lines.append(
            f'<p>Every ballot: <a href="{ballots_url}">{ballots_url}</a> '
            f"(check it with <code>coopnode audit {row['uri']}</code>).</p>"
        )
    return {
        "@context": AS_CONTEXT_URL,
        "id": node.urls.proposal_outcome(row["key"]),
        "type": "Note",
        "attributedTo": node.urls.actor(handle),
        "inReplyTo": row["uri"],
        "content": "".join(lines),
        "published": iso(row["closed_at"]),
        "to": [PUBLIC],
        "cc": [node.urls.followers(handle)],
    }


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


# --- audiences -------------------------------------------------------------------------------


def _actor_inboxes(conn: Connection, uris: Any) -> list[str]:
    found = []
    rows = conn.execute(
        select(remote_actors.c.document).where(remote_actors.c.uri.in_(uris))
    ).scalars()
    for document in rows:
        inbox = delivery_inbox(json.loads(document))
        if inbox is not None:
            found.append(inbox)
    return found


def audience(conn: Connection, node: Node, proposal_pk: int | None = None) -> list[str]:
    """Where a proposal's activities go: every follower, every current remote member's
    server (members on Mastodon vote from there), and the servers of remote voters."""
    inboxes = follows.follower_inboxes(conn, actor_id=node.peers.coop_id)
    remote_members = select(members_table.c.actor_uri).where(
        members_table.c.local == 0,
        members_table.c.state == "confirmed",
        members_table.c.left_at.is_(None),
    )
    inboxes += _actor_inboxes(conn, remote_members)
    if proposal_pk is not None:
        inboxes += [
            row["inbox"]
            for row in sharing.participants(conn, proposal_pk)
            if row["inbox"] and row["state"] != "declined"
        ]
        voters = select(ballots.c.voter).where(ballots.c.proposal_id == proposal_pk).distinct()
        inboxes += _actor_inboxes(conn, voters)
    return list(dict.fromkeys(inboxes))


def _publish(
    node: Node, conn: Connection, kind: str, document: dict[str, Any], pk: int, now: datetime
) -> None:
    handle = node.settings.handle
    activity = activities.about_object(
        node.urls,
        kind,
        document,
        actor=node.urls.actor(handle),
        followers=node.urls.followers(handle),
    )
    outbox.publish(
        conn,
        activity,
        actor_id=node.peers.coop_id,
        inboxes=audience(conn, node, pk),
        now=now,
        policy=node.peers.policy,
        public=True,
        ordering_key=str(document["id"]),
    )


# --- opening ---------------------------------------------------------------------------------


def read_colleges(conn: Connection) -> dict[str, Fraction] | None:
    found = members.list_colleges(conn)
    if not found:
        return None
    return {c.name: Fraction(c.weight_bp, members.FULL_WEIGHT_BP) for c in found}


def _open(
    conn: Connection,
    pk: int,
    opens_at: datetime,
    *,
    own: str,
    others: Sequence[sharing.Elector] = (),
) -> int:
    """Fix the electorate: the members who may vote at the opening, with their colleges;
    for a shared proposal, also those the other co-ops' rosters list (``others``), an
    actor listed twice being one voter."""
    eligible = select(
        literal(pk, Integer).label("proposal_id"),
        members_table.c.actor_uri,
        members_table.c.college,
        literal(own).label("coop"),
    ).where(
        members_table.c.state == "confirmed",
        members_table.c.role.in_(members.VOTING_ROLES),
        members_table.c.joined_at <= opens_at,
        or_(members_table.c.left_at.is_(None), members_table.c.left_at > opens_at),
    )
    conn.execute(
        insert(proposal_voters).from_select(["proposal_id", "voter", "college", "coop"], eligible)
    )
    listed = {
        voter
        for (voter,) in conn.execute(
            select(proposal_voters.c.voter).where(proposal_voters.c.proposal_id == pk)
        )
    }
    rows = []
    for elector in others:
        if elector.voter not in listed:
            listed.add(elector.voter)
            rows.append(
                {
                    "proposal_id": pk,
                    "voter": elector.voter,
                    "college": elector.college,
                    "coop": elector.coop,
                }
            )
    for start in range(0, len(rows), 1000):
        conn.execute(insert(proposal_voters), rows[start : start + 1000])
    _leave_out_other_colleges(conn, pk)
    pairs = [
        (voter, college)
        for voter, college in conn.execute(
            select(proposal_voters.c.voter, proposal_voters.c.college).where(
                proposal_voters.c.proposal_id == pk
            )
        )
    ]
    conn.execute(
        update(proposals)
        .where(proposals.c.id == pk)
        .values(state=OPEN, eligible=len(pairs), roster_digest=roster_digest(pairs))
    )
    return len(pairs)


def _leave_out_other_colleges(conn: Connection, pk: int) -> None:
    """Where colleges weigh, a voter must belong to one of the proposal's colleges: those
    the rosters give another college (or none) are left out of the electorate, and each
    co-op's participation says how many."""
    row = conn.execute(select(proposals).where(proposals.c.id == pk)).mappings().one()
    weights = weights_of(row)
    if weights is None:
        return
    outside = and_(
        proposal_voters.c.proposal_id == pk,
        or_(
            proposal_voters.c.college.is_(None),
            proposal_voters.c.college.not_in(list(weights)),
        ),
    )
    counts = conn.execute(
        select(proposal_voters.c.coop, func.count()).where(outside).group_by(proposal_voters.c.coop)
    ).all()
    if not counts:
        return
    conn.execute(proposal_voters.delete().where(outside))
    names = ", ".join(sorted(weights))
    for coop, n in counts:
        conn.execute(
            update(proposal_coops)
            .where(proposal_coops.c.proposal_id == pk, proposal_coops.c.coop == coop)
            .values(
                reason=f"{n} member{'' if n == 1 else 's'} in none of the colleges {names} left out"
            )
        )


def _claim_opening(conn: Connection, pk: int, now: datetime) -> bool:
    """Whether this worker opens the proposal: still scheduled (another worker may have
    opened it meanwhile)."""
    return bool(
        conn.execute(
            update(proposals)
            .where(proposals.c.id == pk, proposals.c.state == SCHEDULED)
            .values(updated=now)
        ).rowcount
    )


def _open_coops(conn: Connection, pk: int, coops: list[RowMapping], now: datetime) -> None:
    """Co-op mode: the voters are the co-ops themselves, each its own college, so that
    each co-op's one ballot weighs as the proposal says."""
    voting = [c["coop"] for c in coops if c["state"] in ("host", "invited")]
    conn.execute(
        insert(proposal_voters),
        [{"proposal_id": pk, "voter": c, "college": c, "coop": c} for c in voting],
    )
    for coop in coops:
        if coop["state"] == "invited":
            conn.execute(
                update(proposal_coops)
                .where(proposal_coops.c.proposal_id == pk, proposal_coops.c.coop == coop["coop"])
                .values(state="listed", roster_size=1, updated_at=now)
            )
        elif coop["state"] == "host":
            conn.execute(
                update(proposal_coops)
                .where(proposal_coops.c.proposal_id == pk, proposal_coops.c.coop == coop["coop"])
                .values(roster_size=1, updated_at=now)
            )
    pairs = [(c, c) for c in voting]
    conn.execute(
        update(proposals)
        .where(proposals.c.id == pk)
        .values(state=OPEN, eligible=len(pairs), roster_digest=roster_digest(pairs))
    )


async def _open_shared(node: Node, pk: int, opens_at: datetime, now: datetime) -> bool:
    """Read each participating co-op's roster, then open with them all."""
    coops = await node.db.read(lambda conn: sharing.participants(conn, pk))
    mode = await node.db.read(
        lambda conn: conn.execute(
            select(proposals.c.counting_mode).where(proposals.c.id == pk)
        ).scalar_one()
    )
    if mode == "coop":

        def open_coops(conn: Connection) -> bool:
            still = _claim_opening(conn, pk, now)
            if still:
                _open_coops(conn, pk, coops, now)
            return bool(still)

        return bool(await node.db.write(open_coops))
    read: dict[str, list[sharing.Elector]] = {}
    failed: dict[str, str] = {}
    for coop in coops:
        if coop["state"] != "invited":
            continue
        try:
            read[coop["coop"]] = await sharing.read_roster(node, coop["coop"], opens_at)
        except Exception as exc:  # the proposal opens on time all the same
            log.info("proposal %s: the roster of %s: %s", pk, coop["coop"], exc)
            failed[coop["coop"]] = f"its roster could not be read: {exc}"
    own = node.urls.actor(node.settings.handle)

    def unit(conn: Connection) -> bool:
        if not _claim_opening(conn, pk, now):
            return False
        row = conn.execute(select(proposals).where(proposals.c.id == pk)).mappings().one()
        by_subtotal = row["counting_mode"] == "subtotal"
        # With subtotals the host never sees the other co-ops' voters: it keeps how
        # many each roster had (in the proposal's colleges, where they weigh).
        others = [] if by_subtotal else [e for electors in read.values() for e in electors]
        _open(conn, pk, opens_at, own=own, others=others)
        sizes: dict[str, int] = dict(
            conn.execute(
                select(proposal_voters.c.coop, func.count())
                .where(proposal_voters.c.proposal_id == pk)
                .group_by(proposal_voters.c.coop)
            ).all()
        )
        if by_subtotal:
            weights = weights_of(row)
            for name, electors in read.items():
                sizes[name] = sum(1 for e in electors if weights is None or e.college in weights)
            conn.execute(
                update(proposals).where(proposals.c.id == pk).values(eligible=sum(sizes.values()))
            )
        for coop in coops:
            name = coop["coop"]
            values: dict[str, Any] = {"updated_at": now, "roster_size": sizes.get(name, 0)}
            if name in read:
                values["state"] = "listed"
            elif name in failed:
                values.update(state="failed", reason=failed[name])
            conn.execute(
                update(proposal_coops)
                .where(proposal_coops.c.proposal_id == pk, proposal_coops.c.coop == name)
                .values(values)
            )
        return True

    return bool(await node.db.write(unit))


async def create_proposal(
    node: Node, data: Any, *, author: str | None, mirror: dict[str, str] | None = None
) -> dict[str, Any]:
    """Open a proposal from the JSON API's input and publish it; returns its stored form.
    ``mirror`` makes it this co-op's own vote on a shared proposal counted by subtotals
    or by co-op ballots (see node.governance.subtotals)."""
    now = node.clock.now()
    coop_colleges = await node.db.read(read_colleges)
    checked = parse_proposal_input(
        data, now=now, colleges=coop_colleges, opened_elsewhere=mirror is not None
    )
    weights = effective_colleges(data, coop_colleges)
    shared = await sharing.resolve_electorate(node, data.get("electorate"))
    key = uuid.uuid4().hex
    uri = node.urls.proposal(key)
    own = node.urls.actor(node.settings.handle)
    values = _values(
        checked, weights, key=key, uri=uri, author=author, actor_id=node.peers.coop_id, now=now
    )
    if mirror is not None:
        values["mirror"] = json.dumps(mirror)
    if checked.counting_mode == "coop":
        # Each co-op is a voter and its own college, weighing as the proposal says.
        by_coop = await _coop_weights(
            node, data.get("coop_weights"), [own] + [p.coop for p in shared]
        )
        values["colleges_weigh"] = 1
        values["college_weights"] = json.dumps(
            {coop: fraction_text(w) for coop, w in by_coop.items()}
        )
    if shared:
        source = json.loads(values["source"])
        source["electorate"] = [own] + [p.coop for p in shared]
        values["source"] = json.dumps(source, ensure_ascii=False)

    def unit(conn: Connection) -> dict[str, Any]:
        pk = conn.execute(insert(proposals).values(values).returning(proposals.c.id)).scalar_one()
        if shared:
            # Opened by the governance worker, once it has read the co-ops' rosters.
            sharing.invite(conn, pk, shared, own=own, now=now)
        elif checked.opens_at <= now:
            _open(conn, pk, checked.opens_at, own=own)
        row = conn.execute(select(proposals).where(proposals.c.id == pk)).mappings().one()
        document = question(node, row)
        _publish(node, conn, "Create", document, pk, now)
        return describe(node, row)

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    node.governance_wakeup.set()
    if checked.counting_mode == "coop":
        # The host co-op decides its own ballot like any other: its members vote on a
        # proposal of its own, whose close sends the co-op's ballot here.
        row = await node.db.read(lambda conn: get_row(conn, key))
        await sharing.mirror(node, question(node, row), own, inbox=node.urls.shared_inbox())
    return result


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


def _values(
    checked: ProposalInput,
    weights: dict[str, Fraction] | None,
    *,
    key: str,
    uri: str,
    author: str | None,
    actor_id: int,
    now: datetime,
) -> dict[str, Any]:
    weigh = checked.colleges_weigh and weights is not None
    return {
        "key": key,
        "uri": uri,
        "actor_id": actor_id,
        "author": author,
        "title": checked.title,
        "source": json.dumps(checked.to_source(), ensure_ascii=False),
        "content": checked.content,
        "options": json.dumps(
            [{"name": o.name, "role": o.role.value} for o in checked.options], ensure_ascii=False
        ),
        "multiple_choice": int(checked.multiple_choice),
        "max_choices": checked.max_choices,
        "rule": checked.rule,
        "threshold": None if checked.threshold is None else fraction_text(checked.threshold),
        "block_at": checked.block_at,
        "quorum": fraction_text(checked.quorum),
        "abstentions_count": int(checked.abstentions_count),
        "allow_change": int(checked.allow_change),
        "colleges_weigh": int(weigh),
        "college_weights": json.dumps({n: fraction_text(w) for n, w in weights.items()})
        if weigh and weights
        else None,
        "open_ballot": int(checked.open_ballot),
        "counting_mode": checked.counting_mode,
        "opens_at": checked.opens_at,
        "closes_at": checked.closes_at,
        "state": SCHEDULED,
        "counts_dirty": 0,
        "published": now,
        "updated": now,
    }


def describe(node: Node, row: RowMapping) -> dict[str, Any]:
    """What the API shows of a proposal."""
    shown = json.loads(row["counts"]) if row["counts"] else {"counts": {}, "voters": 0}
    return {
        "id": row["key"],
        "uri": row["uri"],
        "state": row["state"],
        "proposal": json.loads(row["source"]),
        "eligible": row["eligible"],
        "counts": shown["counts"],
        "voters": shown["voters"],
        "outcome": None if row["outcome"] is None else json.loads(row["outcome"]),
    }


def list_proposals(conn: Connection, node: Node, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(proposals).order_by(proposals.c.published.desc(), proposals.c.id.desc()).limit(limit)
    ).mappings()
    return [describe(node, r) for r in rows]


# --- counting, live and at the close ---------------------------------------------------------


def count(conn: Connection, row: RowMapping) -> Result:
    proposal = tally_proposal(row)
    if row["counting_mode"] != "subtotal":
        return stored.count(conn, row["id"], proposal)
    # The host's own ballots, and each co-op's subtotal; the electorate is the host's
    # members and the rosters read at the opening.
    pairs = stored.counted_pairs(conn, row["id"], proposal.replacements_allowed)
    for college, made in subtotals.host_pairs(conn, row).items():
        mine = pairs.setdefault(college, {})
        for choices, n in made.items():
            mine[choices] = mine.get(choices, 0) + n
    roster = set(
        conn.execute(
            select(proposal_voters.c.college).where(proposal_voters.c.proposal_id == row["id"])
        ).scalars()
    ) | set(pairs)
    return decide(proposal, pairs, eligible=row["eligible"] or 0, roster=roster)


def _counts_json(result: Result) -> str:
    return json.dumps({"counts": dict(result.counts), "voters": result.turnout}, ensure_ascii=False)


def _publish_counts(node: Node, conn: Connection, *, pk: int, now: datetime) -> bool:
    """New counts as ``Update(Question)``, if still due (another worker may have done it)."""
    claimed = conn.execute(
        update(proposals)
        .where(
            proposals.c.id == pk,
            proposals.c.state == OPEN,
            proposals.c.counts_dirty == 1,
            or_(
                proposals.c.counts_published_at.is_(None),
                proposals.c.counts_published_at <= now - COUNTS_EVERY,
            ),
        )
        .values(counts_dirty=0, counts_published_at=now)
    ).rowcount
    if not claimed:
        return False
    row = conn.execute(select(proposals).where(proposals.c.id == pk)).mappings().one()
    result = count(conn, row)
    conn.execute(
        update(proposals)
        .where(proposals.c.id == pk)
        .values(counts=_counts_json(result), updated=now)
    )
    row = conn.execute(select(proposals).where(proposals.c.id == pk)).mappings().one()
    _publish(node, conn, "Update", question(node, row), pk, now)
    return True


def _outcome(conn: Connection, pk: int, result: Result) -> dict[str, Any]:
    """The published outcome; for a shared proposal, with each co-op's participation:
    its state, how many voters its roster gave and how many of them voted."""
    outcome = result_json(result)
    coops = sharing.participants(conn, pk)
    if coops:
        sent = subtotals.received(conn, pk)
        voted: dict[str, int] = dict(
            conn.execute(
                select(proposal_voters.c.coop, func.count(ballots.c.voter.distinct()))
                .select_from(
                    ballots.join(
                        proposal_voters,
                        and_(
                            proposal_voters.c.proposal_id == ballots.c.proposal_id,
                            proposal_voters.c.voter == ballots.c.voter,
                        ),
                    )
                )
                .where(ballots.c.proposal_id == pk, ballots.c.state == "valid")
                .group_by(proposal_voters.c.coop)
            ).all()
        )
        outcome["participation"] = [_participation(c, voted, sent) for c in coops]
    return outcome


def _participation(coop: RowMapping, voted: dict[str, int], sent: dict[str, int]) -> dict[str, Any]:
    name = coop["coop"]
    entry: dict[str, Any] = {
        "coop": name,
        "state": coop["state"],
        "eligible": coop["roster_size"] or 0,
        "voted": sent.get(name, voted.get(name, 0)),
    }
    if coop["reason"]:
        entry["reason"] = coop["reason"]
    elif name in sent:
        entry["subtotal"] = True
    return entry


_WHY = {"replaced": Reason.REPLACED.value, "set aside": Reason.ALREADY_VOTED.value}


def _close(node: Node, conn: Connection, *, pk: int, now: datetime) -> bool:
    """Freeze the counts, apply the rules, publish the outcome. Once per proposal."""
    row = (
        conn.execute(select(proposals).where(proposals.c.id == pk, proposals.c.state == OPEN))
        .mappings()
        .first()
    )
    if row is None:
        return False
    claimed = OPEN
    if row["counting_mode"] == "subtotal" and not row["mirror"]:
        # Our own subtotal first, so that the outcome's participation shows it.
        claimed = CLOSED
        if not conn.execute(
            update(proposals)
            .where(proposals.c.id == pk, proposals.c.state == OPEN)
            .values(state=CLOSED)
        ).rowcount:
            return False  # another worker closes it
        subtotals.keep_own_subtotal(conn, node, row, now)
    result = count(conn, row)
    done = conn.execute(
        update(proposals)
        .where(proposals.c.id == pk, proposals.c.state == claimed)
        .values(
            state=CLOSED,
            closed_at=now,
            updated=now,
            counts=_counts_json(result),
            counts_dirty=0,
            counts_published_at=now,
            outcome=json.dumps(_outcome(conn, pk, result), ensure_ascii=False),
        )
    ).rowcount
    if not done:
        return False
    # Frozen: each valid ballot that does not count says why (the counted ones stay
    # "valid"), so that the published ballots need no recount.
    others: dict[str, list[int]] = {}
    for ballot_id, status in stored.statuses(conn, pk, bool(row["allow_change"])):
        if status != "counted":
            others.setdefault(status, []).append(ballot_id)
    for became, ids in others.items():
        for start in range(0, len(ids), 500):
            conn.execute(
                update(ballots)
                .where(ballots.c.id.in_(ids[start : start + 500]))
                .values(state=became, reason=_WHY[became])
            )
    row = conn.execute(select(proposals).where(proposals.c.id == pk)).mappings().one()
    _publish(node, conn, "Update", question(node, row), pk, now)
    _publish(node, conn, "Create", outcome_note(node, row), pk, now)
    mirror = json.loads(row["mirror"]) if row["mirror"] else None
    if mirror is not None and not sharing.declined(conn, mirror["of"]):
        if mirror.get("mode") == "coop":
            subtotals.send_coop_ballot(conn, node, row, result, now)
        else:
            subtotals.send_subtotal(conn, node, row, result, now)
    log.info("proposal %s closed: %s", row["uri"], result.reason)
    return True


# How long a close waits, from when it was due, for activities accepted before the end
# and still in the inbox: the worker takes them in seconds; past this, something holds
# them, and the proposal closes without them rather than never.
CLOSE_WAIT_LIMIT = timedelta(minutes=10)


def _ballots_waiting(conn: Connection, *, closes_at: datetime, now: datetime) -> bool:
    """Whether activities accepted before the close still wait in the inbox, not tried
    yet: they may be ballots, which count (they were cast in time). One that failed once
    is not waited for: its retries may take hours, the close does not. Nor is one whose
    worker took it and never recorded an outcome (its claim expired): a stuck activity
    holds the close for one claim at most, never forever. One nobody took yet is waited
    for: the inbox worker takes it as soon as it runs (after the node was down, say)."""
    waiting = conn.execute(
        select(inbox_activities.c.id)
        .where(
            inbox_activities.c.state == "pending",
            inbox_activities.c.type == "Create",
            inbox_activities.c.received_at < closes_at,
            inbox_activities.c.attempts == 0,
            or_(
                inbox_activities.c.claimed_until.is_(None),
                inbox_activities.c.claimed_until >= now,
            ),
        )
        .limit(1)
    ).first()
    return waiting is not None


async def run_once(node: Node) -> int:
    """Open the proposals whose time has come, close those past their end, and publish
    the counts that changed; returns how many proposals were acted on."""
    now = node.clock.now()

    def due(conn: Connection) -> tuple[list[Any], list[Any], list[Any]]:
        opening = conn.execute(
            select(proposals.c.id, proposals.c.opens_at).where(
                proposals.c.state == SCHEDULED, proposals.c.opens_at <= now
            )
        ).all()
        closing = conn.execute(
            select(proposals.c.id, proposals.c.closes_at, proposals.c.counting_mode).where(
                proposals.c.state == OPEN, proposals.c.closes_at <= now
            )
        ).all()
        stale = conn.execute(
            select(proposals.c.id).where(
                and_(
                    proposals.c.state == OPEN,
                    proposals.c.counts_dirty == 1,
                    or_(
                        proposals.c.counts_published_at.is_(None),
                        proposals.c.counts_published_at <= now - COUNTS_EVERY,
                    ),
                )
            )
        ).all()
        return list(opening), list(closing), list(stale)

    opening, closing, stale = await node.db.read(due)
    acted = 0
    own = node.urls.actor(node.settings.handle)

    async def open_one(pk: int, opens_at: datetime) -> int:
        is_shared = bool(await node.db.read(partial(sharing.participants, pk=pk)))
        if is_shared:
            return int(await _open_shared(node, pk, opens_at, now))

        def open_unit(conn: Connection) -> bool:
            still = _claim_opening(conn, pk, now)
            if still:
                _open(conn, pk, opens_at, own=own)
            return bool(still)

        return int(await node.db.write(open_unit))

    async def close_one(pk: int, closes_at: datetime, mode: str) -> int:
        if mode == "subtotal" and now < closes_at + subtotals.GRACE:
            return 0  # subtotals are taken until the deadline
        waiting = await node.db.read(partial(_ballots_waiting, closes_at=closes_at, now=now))
        if waiting:
            since = node.close_waits.setdefault(pk, now)
            if now - since < CLOSE_WAIT_LIMIT:
                return 0  # the inbox worker handles them first
            log.warning(
                "proposal %s closes with activities from before its end still in the inbox, "
                "after waiting %s for them",
                pk,
                now - since,
            )
        node.close_waits.pop(pk, None)
        return int(await node.db.write(partial(_close, node, pk=pk, now=now)))

    async def publish_one(pk: int) -> int:
        return int(await node.db.write(partial(_publish_counts, node, pk=pk, now=now)))

    # One proposal that cannot be opened, closed or published does not hold the others:
    # it is logged and tried again at the next round.
    for pk, opens_at in opening:
        acted += await _one_proposal("open", pk, open_one(pk, opens_at))
    for pk, closes_at, mode in closing:
        acted += await _one_proposal("close", pk, close_one(pk, closes_at, mode))
    for (pk,) in stale:
        acted += await _one_proposal("publish the counts of", pk, publish_one(pk))
    if acted:
        node.delivery_wakeup.set()
    return acted


async def _one_proposal(what: str, pk: int, work: Awaitable[int]) -> int:
    try:
        return await work
    except Exception:
        log.exception("governance: could not %s proposal %s; trying again later", what, pk)
        return 0


GOVERNANCE_POLLER = Poller(
    name="governance",
    run_once=run_once,
    idle_seconds=2.0,
    wakeup=lambda node: node.governance_wakeup,
)
