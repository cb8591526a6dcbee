"""Ballots: a local member's vote through the API, and a remote member's vote as Mastodon
sends it (``Create`` of a ``Note`` with ``name`` = the option and ``inReplyTo`` = the
question; one activity per option on a multiple choice).

What the host checks before a ballot is stored as valid (PROTOCOL.md, "What the host
guarantees"): the voter is the signer (the ``Note``'s ``attributedTo`` is the actor whose
signature the inbox verified, and a FEP-8b32 proof on the ``Note``, when there is one,
verifies with a key of that same actor); the vote is open; the voter is in the electorate
fixed at the opening; the options exist, are not repeated and not too many. Which of a
voter's valid ballots counts (the first, or the last where changes are allowed) is left
to the count, ordered by the time this node accepted each ballot: so two ballots handled
concurrently, or by two workers in either order, give the same result.

A remote member whose vote is refused gets a direct reply saying why (about their first
few ballots on a proposal, so that a flood of bad votes does not become a flood of replies). A local
member's refused vote is an API error, and nothing is stored.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation import proofs
from federation.errors import MalformedInput, NotAuthorized
from federation.inbox import actor_id, host_of
from federation.origins import same_origin
from node.errors import Conflict, Forbidden, Invalid
from node.governance import documents
from node.governance.rules.proposal_input import MAX_OPTION_NAME, iso
from node.governance.rules.tally import Reason, check_choices
from node.governance.signing import signed_ballot
from node.governance.store import ballots as ballot_store
from node.governance.store import electorate
from node.governance.store import proposals as proposal_store
from node.governance.store.rows import State, StoredProposal
from node.runtime import Node
from node.services import metrics, outbox
from node.services.inbox import InboxItem
from node.services.tokens import TokenInfo

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Refused ballots kept per voter and proposal (for the audit trail); past this, a voter's
# further refused ballots are dropped unrecorded, so that nobody can fill the table.
MAX_REFUSED_PER_VOTER = 10
# A voter gets replies about their first few ballots on a proposal, not about every one.
MAX_REPLIES = 3


class NotTheVoter(NotAuthorized):
    """A ballot whose ``attributedTo`` or proof names someone other than the signer."""


@dataclass(frozen=True)
class Vote:
    voter: str
    choices: tuple[str, ...]
    notes: tuple[dict[str, Any], ...]
    activity_id: str
    cast_at: datetime


@dataclass(frozen=True)
class Verdict:
    stored: bool
    reason: Reason | None = None
    """Why the ballot was refused; None when valid."""
    replaced: bool = False
    """A valid earlier ballot of this voter exists."""
    merged: bool = False
    tell: bool = False
    """Whether the voter is to be answered: about their first few ballots only, so that
    a flood of bad votes does not become a flood of replies."""


# --- the checks ---------------------------------------------------------------------------


def check(
    p: StoredProposal, vote: Vote, voters: dict[str, str | None]
) -> tuple[Reason | None, str | None]:
    """The reason a ballot cannot count, whatever other ballots say; and the voter's
    college (``voters``: the electorate's colleges of the voters concerned). The same
    checks, in the same order, as the tally's."""
    if vote.cast_at < p.opens_at or p.state is State.SCHEDULED:
        return Reason.BEFORE_OPENING, None
    if vote.cast_at >= p.closes_at or p.state is State.CLOSED:
        return Reason.AFTER_CLOSE, None
    if vote.voter not in voters:
        return Reason.NOT_ELIGIBLE, None
    college = voters[vote.voter]
    roles = {o.name: o.role for o in p.options}
    limit = p.max_choices if p.multiple_choice else 1
    return check_choices(vote.choices, roles, limit), college


def record(conn: Connection, p: StoredProposal, votes: list[Vote], *, merge: bool) -> list[Verdict]:
    """Store ballots for one proposal as valid or refused, in the caller's unit of work;
    a verdict per ballot, in order. With ``merge`` (a Mastodon vote on a multiple
    choice, one Note per option), a Note adding an option to the voter's ballot joins
    it rather than starting another."""
    pk = p.id
    voters = {vote.voter for vote in votes}
    colleges = electorate.colleges_of(conn, pk, voters)
    known = ballot_store.voters_so_far(conn, pk, voters)
    rows: list[ballot_store.NewBallot] = []
    verdicts: list[Verdict] = []
    changed = False
    for vote in votes:
        seen = known[vote.voter]
        reason, college = check(p, vote, colleges)
        if reason is None and merge and seen.latest is not None:
            had = seen.latest.choices
            if set(vote.choices) <= set(had):
                verdicts.append(Verdict(stored=False))  # a replay of options chosen
                continue
            joined = had + tuple(c for c in vote.choices if c not in had)
            joined_vote = Vote(vote.voter, joined, vote.notes, vote.activity_id, vote.cast_at)
            reason, _ = check(p, joined_vote, colleges)
            if reason is None:
                seen.latest = ballot_store.join(conn, seen.latest, joined, vote.notes)
                changed = True
                verdicts.append(Verdict(stored=True, merged=True))
                continue
        # Only a voter's first few ballots are answered, so that a flood of bad votes
        # does not become a flood of replies.
        tell = seen.ballots < MAX_REPLIES
        replaced = seen.latest is not None
        if reason is not None and seen.refused >= MAX_REFUSED_PER_VOTER:
            verdicts.append(Verdict(stored=False, reason=reason))
            continue
        new = ballot_store.new_ballot(
            voter=vote.voter,
            college=college,
            choices=vote.choices,
            activity_id=vote.activity_id,
            cast_at=vote.cast_at,
            reason=None if reason is None else reason.value,
            notes=vote.notes,
        )
        seen.ballots += 1
        if reason is not None:
            seen.refused += 1
        elif merge:
            # Later Notes of this batch join this ballot: it needs its id now.
            ballot_id = ballot_store.insert_one(conn, pk, new)
            seen.latest = ballot_store.LatestBallot(ballot_id, new.choices_text, new.notes_text)
            changed = True
            verdicts.append(Verdict(stored=True, reason=None, replaced=replaced, tell=tell))
            continue
        else:
            seen.latest = ballot_store.LatestBallot(None, new.choices_text, new.notes_text)
            changed = True
        rows.append(new)
        verdicts.append(Verdict(stored=True, reason=reason, replaced=replaced, tell=tell))
    if rows:
        ballot_store.insert_many(conn, pk, rows)
    if changed:
        proposal_store.mark_counts_changed(conn, pk)
    return verdicts


# --- a local member's vote ------------------------------------------------------------------


_API_ERRORS = {
    Reason.BEFORE_OPENING: Conflict,
    Reason.AFTER_CLOSE: Conflict,
    Reason.NOT_ELIGIBLE: Forbidden,
}


def choices_of(token: TokenInfo, data: Any) -> list[str]:
    """The options a member's API request names, checked for shape."""
    if token.actor_id is None:
        raise Forbidden("this token is not a member's: log in as the member to vote")
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise Invalid('send {"choices": ["option name", ...]}', field="choices")
    choices = data["choices"]
    if not all(isinstance(c, str) for c in choices) or len(choices) > 50:
        raise Invalid("choices are option names", field="choices")
    return [" ".join(c.split()) for c in choices]


async def cast_local(node: Node, token: TokenInfo, key: str, data: Any) -> dict[str, Any]:
    """A member of this node votes through the API. The node signs each ballot ``Note``
    as the member, with a FEP-8b32 ``eddsa-jcs-2022`` proof made with the member's
    Ed25519 key, so that an audit can check it came from the member's node."""
    choices = choices_of(token, data)
    now = node.clock.now()
    p = await node.db.read(lambda conn: proposal_store.get(conn, key))
    voter, ballot_url, notes = await signed_ballot(
        node, token.actor_id, p.uri, node.urls.actor(node.settings.handle), choices, now
    )
    vote = Vote(voter, tuple(choices), notes, ballot_url, now)

    def unit(conn: Connection) -> Verdict:
        fresh = proposal_store.get(conn, key)
        reason, _ = check(fresh, vote, electorate.colleges_of(conn, fresh.id, {voter}))
        if reason is not None:
            raise _API_ERRORS.get(reason, Invalid)(reason.value)
        [verdict] = record(conn, fresh, [vote], merge=False)
        return verdict

    verdict = await node.db.write(unit)
    node.governance_wakeup.set()
    if verdict.reason is None:
        metrics.VOTES_CAST.labels("local").inc()
    counted = "counted"
    if verdict.replaced:
        counted = (
            "replaces your earlier ballot"
            if p.allow_change
            else ("not counted: your first ballot counts, this proposal does not allow changes")
        )
    return {
        "ballot": ballot_url,
        "choices": list(choices),
        "cast_at": iso(now),
        "status": counted,
        "notes": list(notes),
    }


# --- a remote member's vote -------------------------------------------------------------------


def looks_like_vote(value: Any) -> bool:
    """A cheap look at a Create's object, at receipt: a Note with a name, in reply to
    something, and no content (Mastodon's vote)."""
    return (
        isinstance(value, dict)
        and value.get("type") == "Note"
        and isinstance(value.get("name"), str)
        and value.get("inReplyTo") is not None
        and not value.get("content")
    )


def _target(node: Node, item: InboxItem) -> str | None:
    """The proposal of ours a Create answers, if it looks like a vote; else None."""
    if item.type != "Create":
        return None
    note = item.activity.get("object")
    if not looks_like_vote(note):
        return None
    assert isinstance(note, dict)
    target = actor_id(note.get("inReplyTo"))
    if target is None or not same_origin(target, node.urls.base + "/"):
        return None
    return target


async def _vote_of(node: Node, item: InboxItem) -> Vote:
    """The ballot an activity carries, once its signer is shown to be its voter."""
    note = item.activity["object"]
    author = actor_id(note.get("attributedTo"))
    if author != item.actor or actor_id(item.activity.get("actor")) != item.actor:
        raise NotTheVoter(f"the ballot is attributed to {author}, but {item.actor} signed it")
    if isinstance(note.get("id"), str) and not same_origin(note["id"], item.actor):
        raise NotTheVoter(f"{item.actor} sent a ballot {note['id']} its host does not serve")
    if "proof" in note:
        await _verify_proof(node, note, item.actor)
    name = " ".join(str(note["name"]).split())
    if len(name) > MAX_OPTION_NAME:
        # No option is that long: refused unrecorded, so that nobody stores megabytes.
        raise MalformedInput(f"a ballot names an option of {len(name)} characters")
    cast_at = item.received_at or node.clock.now()
    return Vote(item.actor, (name,), (note,), item.activity_id, cast_at)


async def take_votes(node: Node, items: list[InboxItem]) -> dict[int, Exception | None]:
    """Handle the votes on our proposals among ``items``, all in one unit of work (ballots
    arrive by the thousand when a vote is busy). Returns, for each item that was such a
    vote, None (handled) or the exception that refused it; other items are not in it."""
    targets = {item.id: t for item in items if (t := _target(node, item)) is not None}
    if not targets:
        return {}
    uris = set(targets.values())
    found = await node.db.read(lambda conn: proposal_store.by_uris(conn, uris))
    outcome: dict[int, Exception | None] = {}
    votes: list[tuple[InboxItem, Vote]] = []
    for item in items:
        if targets.get(item.id) not in found:
            continue  # not a vote, or on nothing of ours: the other handlers decide
        try:
            votes.append((item, await _vote_of(node, item)))
        except Exception as exc:
            outcome[item.id] = exc
    if not votes:
        return outcome

    def unit(conn: Connection) -> list[Verdict]:
        fresh = proposal_store.by_uris(conn, uris)
        by_proposal: dict[str, list[int]] = {}
        for n, (item, _) in enumerate(votes):
            by_proposal.setdefault(targets[item.id], []).append(n)
        verdicts: list[Verdict | None] = [None] * len(votes)
        for uri, positions in by_proposal.items():
            p = fresh[uri]
            made = record(conn, p, [votes[n][1] for n in positions], merge=p.multiple_choice)
            for n, verdict in zip(positions, made, strict=True):
                verdicts[n] = verdict
        return [v for v in verdicts if v is not None]

    verdicts = await node.db.write(unit)
    node.governance_wakeup.set()
    metrics.VOTES_CAST.labels("remote").inc(sum(v.reason is None for v in verdicts))
    for (item, _), verdict in zip(votes, verdicts, strict=True):
        outcome[item.id] = None
        p = found[targets[item.id]]
        note = item.activity["object"]
        if not verdict.tell:
            continue
        if verdict.reason is not None:
            text = f"your vote was not counted: {verdict.reason.value}"
        elif verdict.replaced and not verdict.merged and not p.allow_change:
            text = f"your vote was not counted: {Reason.ALREADY_VOTED.value}"
        else:
            continue
        try:
            await _reply(node, p, item, note, text)
        except Exception as exc:  # the ballot is recorded; a reply that fails is logged
            log.warning("vote reply to %s failed: %s", item.actor, exc)
    return outcome


async def _verify_proof(node: Node, note: dict[str, Any], voter: str) -> None:
    """A proof on a remote ballot must verify with a key of the voter's own."""
    try:
        method = proofs.verification_method(note)
    except proofs.ProofError as exc:
        raise NotTheVoter(f"the ballot's proof is unusable: {exc}") from exc
    key = await node.peers.keys.get(method)
    if key.owner != voter:
        raise NotTheVoter(f"the ballot's proof uses a key of {key.owner}, not of {voter}")
    if not isinstance(key.public_key, Ed25519PublicKey):
        raise NotTheVoter("the ballot's proof names a key that is not Ed25519")
    try:
        proofs.verify(note, key.public_key)
    except proofs.ProofError as exc:
        raise NotTheVoter(f"the ballot's proof does not verify: {exc}") from exc


async def _reply(
    node: Node, p: StoredProposal, item: InboxItem, note: dict[str, Any], text: str
) -> None:
    """A direct reply to the voter, saying why the vote did not count."""
    voter = item.actor
    try:
        document = await node.peers.actor(voter)
    except Exception as exc:  # the voter's server is gone: nobody to tell
        log.info("vote reply to %s: no actor (%s)", voter, exc)
        return
    inbox = document.get("inbox")
    if not isinstance(inbox, str):
        return
    username = document.get("preferredUsername") or "member"
    now = node.clock.now()
    reply = documents.vote_reply(
        node.urls,
        node.settings.handle,
        key=uuid.uuid4().hex,
        voter=voter,
        mention=f"@{username}@{host_of(voter)}",
        answering=note.get("id") or p.uri,
        title=p.title,
        text=text,
        now=now,
    )

    def unit(conn: Connection) -> None:
        outbox.publish(
            conn,
            reply,
            actor_id=node.peers.coop_id,
            inboxes=[inbox],
            now=now,
            policy=node.peers.policy,
        )

    await node.db.write(unit)
    node.delivery_wakeup.set()
