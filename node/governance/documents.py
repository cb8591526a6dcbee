"""The documents governance publishes and answers with: a proposal as a ``Question``, the
outcome ``Note`` under it, ballots (a ``Note`` per option, as Mastodon votes), subtotals,
a reply to a voter, the published ballots, and a proposal as the JSON API shows it.

Pure functions of stored rows, results and addresses: ids that are random and keys that
sign are the caller's, so the same input always gives the same document.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from federation.errors import MalformedInput
from federation.jsonld import AS_CONTEXT_URL, DATA_INTEGRITY_V2_CONTEXT_URL, coop_context
from node.documents import PUBLIC
from node.governance.rules.proposal_input import fraction_text, iso
from node.governance.rules.question_text import titled
from node.governance.rules.tally import Result
from node.governance.store.rows import (
    Mode,
    RemoteProposal,
    SentBallot,
    State,
    StoredBallot,
    StoredProposal,
)
from node.urls import Urls

CONTEXT = [AS_CONTEXT_URL, coop_context()]
NOTE_CONTEXT = [AS_CONTEXT_URL, DATA_INTEGRITY_V2_CONTEXT_URL]
SUBTOTAL_CONTEXT = [AS_CONTEXT_URL, coop_context(), DATA_INTEGRITY_V2_CONTEXT_URL]


# --- a proposal and its outcome ------------------------------------------------------------


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


def question(urls: Urls, handle: str, p: StoredProposal) -> dict[str, Any]:
    """The proposal as a ``Question``: a poll to Mastodon, a proposal with its rules and
    outcome to a coopnode."""
    counts = p.shown.counts
    choices = [
        {
            "type": "Note",
            "name": o.name,
            "optionRole": o.role.value,
            "replies": {"type": "Collection", "totalItems": counts.get(o.name, 0)},
        }
        for o in p.options
    ]
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": p.uri,
        "type": "Question",
        "attributedTo": urls.actor(handle),
        "name": p.title,
        "content": titled(p.title, p.content),
        "source": {"content": p.text, "mediaType": "text/markdown"},
        ("anyOf" if p.multiple_choice else "oneOf"): choices,
        "startTime": iso(p.opens_at),
        "endTime": iso(p.closes_at),
        "votersCount": p.shown.voters,
        "quorum": fraction_text(p.quorum),
        "allowBallotChange": p.allow_change,
        "abstentionsCountTowardQuorum": p.abstentions_count,
        "countingMode": p.counting_mode.value,
        "electorate": p.electorate or [urls.actor(handle)],
        "published": iso(p.published),
        "updated": iso(p.updated),
        "url": p.uri,
        # Its discussion: the comments under it, for servers that show a thread.
        "replies": urls.proposal_replies(p.key),
        "to": [PUBLIC],
        "cc": [urls.followers(handle)],
    }
    if p.network:
        doc["network"] = p.network
    if p.language:
        doc["contentMap"] = {p.language: doc["content"]}
    if p.multiple_choice:
        doc["maxChoices"] = p.max_choices
    elif p.rule == "qualified":
        assert p.threshold is not None
        doc["decisionRule"] = {"type": "qualified", "threshold": fraction_text(p.threshold)}
    elif p.rule == "consent":
        doc["decisionRule"] = {"type": "consent", "blockAt": p.block_at}
    else:
        doc["decisionRule"] = {"type": p.rule}
    if p.college_weights is not None:
        doc["colleges"] = [
            {"name": n, "weight": fraction_text(w)} for n, w in p.college_weights.items()
        ]
    if p.coop_tie:
        doc["coopTie"] = p.coop_tie
    if p.state is State.CLOSED:
        doc["closed"] = iso(p.closed_at or p.closes_at)
        doc["outcome"] = p.outcome
        if p.open_ballot:
            doc["ballots"] = urls.proposal_ballots(p.key)
            doc["rosterSnapshot"] = {
                "id": urls.proposal_electorate(p.key),
                "totalItems": p.eligible,
                "digest": p.roster_digest,
            }
        else:
            doc["rosterSnapshot"] = {"totalItems": p.eligible, "digest": p.roster_digest}
        if p.counting_mode is Mode.SUBTOTAL:
            doc["subtotals"] = subtotals_id(p)
    return doc


def subtotals_id(p: StoredProposal) -> str:
    """The collection of the subtotals a proposal counted by subtotals was decided by."""
    return f"{p.uri}/subtotals"


def voters_id(p: StoredProposal) -> str:
    """The collection of who voted on a secret ballot."""
    return f"{p.uri}/voters"


_VERDICTS = {
    "passed": "Passed",
    "rejected": "Rejected",
    "no quorum": "Not decided: no quorum",
    "blocked": "Blocked",
    "counted": "Counted",
}


def outcome_note(urls: Urls, handle: str, p: StoredProposal) -> dict[str, Any]:
    """The reply under the poll that says whether it passed and why, in words."""
    outcome = p.outcome
    assert outcome is not None
    lines = [f"<p><strong>{_escape(p.title)}</strong>: {_VERDICTS[outcome['result']]}.</p>"]
    lines.append(f"<p>{_escape(outcome['reason'])}.</p>")
    counts = ", ".join(f"{_escape(k)} {v}" for k, v in outcome["counts"].items())
    lines.append(
        f"<p>{counts}. {outcome['turnout']} of {outcome['eligible']} eligible members voted.</p>"
    )
    if p.open_ballot:
        ballots_url = urls.proposal_ballots(p.key)
        lines.append(
            f'<p>Every ballot: <a href="{ballots_url}">{ballots_url}</a> '
            f"(check it with <code>coopnode audit {p.uri}</code>).</p>"
        )
    assert p.closed_at is not None
    return {
        "@context": AS_CONTEXT_URL,
        "id": urls.proposal_outcome(p.key),
        "type": "Note",
        "attributedTo": urls.actor(handle),
        "inReplyTo": p.uri,
        "content": "".join(lines),
        "published": iso(p.closed_at),
        "to": [PUBLIC],
        "cc": [urls.followers(handle)],
    }


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


# --- ballots ------------------------------------------------------------------------------


def ballot_note(
    *, note_id: str, option: str, proposal: str, voter: str, to: str, now: datetime
) -> dict[str, Any]:
    """One option of a ballot, as Mastodon sends a vote (to be signed by the voter)."""
    return {
        "@context": NOTE_CONTEXT,
        "id": note_id,
        "type": "Note",
        "name": option,
        "inReplyTo": proposal,
        "attributedTo": voter,
        "to": [to],
        "published": iso(now),
    }


def ballot_create(note: dict[str, Any], *, activity_id: str, actor: str, to: str) -> dict[str, Any]:
    """The ``Create`` a ballot's ``Note`` travels in."""
    return {
        "@context": NOTE_CONTEXT,
        "id": activity_id,
        "type": "Create",
        "actor": actor,
        "to": [to],
        "object": note,
    }


def ballot_item(ballot: StoredBallot) -> dict[str, Any]:
    """A ballot as the published ballots collection lists it: what became of it, and
    its Notes as received, proofs included."""
    item: dict[str, Any] = {
        "type": "Ballot",
        "voter": ballot.voter,
        "college": ballot.college,
        "choices": list(ballot.choices),
        "castAt": iso(ballot.cast_at),
        "activity": ballot.activity_id,
        "status": {"valid": "counted"}.get(ballot.state, ballot.state),
    }
    if ballot.reason:
        item["reason"] = ballot.reason
    item["votes"] = list(ballot.notes)
    return item


def vote_reply(
    urls: Urls,
    handle: str,
    *,
    key: str,
    voter: str,
    mention: str,
    answering: str,
    title: str,
    text: str,
    now: datetime,
) -> dict[str, Any]:
    """A direct reply to a voter, saying why the vote did not count; ``key`` makes its
    ids."""
    coop = urls.actor(handle)
    return {
        "@context": AS_CONTEXT_URL,
        "id": urls.activity(key),
        "type": "Create",
        "actor": coop,
        "to": [voter],
        "object": {
            "id": urls.ballot(key) + "/reply",
            "type": "Note",
            "attributedTo": coop,
            "inReplyTo": answering,
            "to": [voter],
            "published": iso(now),
            "content": (
                f'<p><span class="h-card"><a href="{html.escape(voter)}" class="u-url mention">'
                f"{html.escape(mention)}</a></span> “{html.escape(title)}”: "
                f"{html.escape(text)}.</p>"
            ),
            "tag": [{"type": "Mention", "href": voter, "name": mention}],
        },
    }


# --- subtotals ------------------------------------------------------------------------------


def subtotal(
    *, subtotal_id: str, coop: str, of: str, to: str, result: Result, published: datetime
) -> dict[str, Any]:
    """A ``Subtotal`` of ``result`` for the shared proposal ``of`` (to be signed by the
    co-op): per college, its voters and their choices."""
    if result.colleges:
        colleges = [
            {"name": c.name, "voters": c.voters, "counts": dict(c.counts)} for c in result.colleges
        ]
    else:
        colleges = [{"name": None, "voters": result.turnout, "counts": dict(result.counts)}]
    return {
        "@context": SUBTOTAL_CONTEXT,
        "id": subtotal_id,
        "type": "Subtotal",
        "attributedTo": coop,
        "inReplyTo": of,
        "published": iso(published),
        "voters": result.turnout,
        "colleges": colleges,
        "to": [to],
    }


def subtotal_create(document: dict[str, Any], *, activity_id: str, actor: str) -> dict[str, Any]:
    return {
        "@context": SUBTOTAL_CONTEXT,
        "id": activity_id,
        "type": "Create",
        "actor": actor,
        "to": document["to"],
        "object": document,
    }


# --- the API's view -------------------------------------------------------------------------


# Said of an opened proposal whose electorate is empty: nobody can vote, and it will
# close without a vote (no quorum, or a tie of nothing).
NO_VOTERS = (
    "no member may vote on it: nobody was eligible when it opened (check that members "
    "are confirmed, hold a voting role and, where colleges weigh, belong to one)"
)


def warnings(p: StoredProposal) -> list[str]:
    """What the admin should hear about a proposal as it stands: an opened proposal
    that nobody may vote on."""
    return [NO_VOTERS] if p.state is not State.SCHEDULED and p.eligible == 0 else []


def describe(p: StoredProposal) -> dict[str, Any]:
    """What the API shows of a proposal."""
    return {
        "id": p.key,
        "uri": p.uri,
        "state": p.state.value,
        "proposal": p.source,
        "eligible": p.eligible,
        "counts": p.shown.counts,
        "voters": p.shown.voters,
        "outcome": p.outcome,
        "warnings": warnings(p),
    }


def describe_sent(sent: SentBallot | None) -> dict[str, Any] | None:
    """A member's ballot sent to the host of a shared proposal, as the API shows it."""
    if sent is None:
        return None
    return {"choices": sent.choices, "sent_at": iso(sent.sent_at)}


def describe_remote(
    row: RemoteProposal, voted: SentBallot | None = None, mirror: str | None = None
) -> dict[str, Any]:
    """What the API shows of a shared proposal hosted elsewhere, with the member's
    ballot and, counted at home, the key of this co-op's own vote on it."""
    described: dict[str, Any] = {
        "id": row.key,
        "uri": row.uri,
        "host": row.host,
        "state": row.state,
        # Counted by subtotals: members vote on this co-op's own proposal of that key.
        "mirror": mirror,
        "your_ballot": describe_sent(voted),
    }
    try:
        shared = row.question()
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
