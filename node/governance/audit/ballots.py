"""The audit of a proposal counted ballot by ballot.

The host publishes the electorate as of the opening (with its digest in
``rosterSnapshot``) and every ballot with the Notes its voter sent. The audit walks both
collections at once, checks each ballot's Notes and proofs as its page arrives
(:mod:`node.governance.audit.verify`), checks the electorate against its digest, then
recounts with :func:`~node.governance.rules.tally.tally`, the very function the host ran,
over the ballots that verified and those without a proof (which the host vouches for:
Mastodon voters sign nothing), and compares every published figure and every ballot's
published status with the recount.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any

from node.errors import Invalid
from node.governance.audit.compare import compare, recount_statuses
from node.governance.audit.fetch import FetchDocument
from node.governance.audit.fields import AuditError, integer, quoted, required, stamp, string
from node.governance.audit.read import read_outcome, read_proposal
from node.governance.audit.report import AuditReport, BallotCheck
from node.governance.audit.verify import Verifier
from node.governance.audit.walk import Origin, crawl
from node.governance.rules.digest import roster_digest
from node.governance.rules.tally import tally

STATUSES = ("counted", "replaced", "set aside", "refused")


async def audit_ballots(
    question: Mapping[str, Any],
    *,
    url: str,
    origin: Origin,
    fetch: FetchDocument,
    fetch_large: FetchDocument,
    actors: FetchDocument,
) -> AuditReport:
    """The audit of the closed ``question`` (published at ``url`` on ``origin``) from its
    electorate and ballots; ``actors`` fetches the voters' actor documents."""
    if question.get("ballots") is None:
        raise AuditError(
            "the proposal publishes no ballots collection (a secret ballot, or a host "
            "that does not publish them): there is nothing to recount",
            field="ballots",
        )
    proposal_id = string(question.get("id"), "id")
    proposal = read_proposal(question)
    published = read_outcome(question, proposal)
    title = question.get("name")
    name = title if isinstance(title, str) else proposal_id
    problems: list[str] = []

    snapshot = required(question, "rosterSnapshot")
    if not isinstance(snapshot, dict):
        raise AuditError(f"an object, not {quoted(snapshot)}", field="rosterSnapshot")
    electorate_url = string(snapshot.get("id"), "rosterSnapshot.id")
    digest = string(snapshot.get("digest"), "rosterSnapshot.digest", limit=256)
    ballots_url = string(question["ballots"], "ballots")

    checks: list[BallotCheck] = []
    verifier = Verifier(actors, proposal_id)

    def read_ballots(items: list[Any]) -> None:
        for item in items:
            check = read_ballot(len(checks) + 1, item)
            checks.append(check)
            verifier.add(check)

    walks = [
        asyncio.ensure_future(crawl(fetch, fetch_large, electorate_url, origin, "electorate")),
        asyncio.ensure_future(
            crawl(fetch, fetch_large, ballots_url, origin, "ballots", read_ballots)
        ),
    ]
    try:
        walked = await asyncio.gather(*walks)
        await verifier.wait()
    finally:  # one walk failing stops everything still running
        for walk in walks:
            walk.cancel()
        verifier.cancel()
    (electorate_items, electorate_total), (ballot_items, ballots_total) = walked
    eligible = read_electorate(electorate_items, problems)
    _check_electorate(snapshot, digest, eligible, electorate_items, electorate_total, problems)
    if ballots_total is not None and ballots_total != len(ballot_items):
        problems.append(
            f"the ballots collection says totalItems {ballots_total}, "
            f"its pages hold {len(ballot_items)}"
        )
    _check_listing(checks, problems)

    kept = [c for c in checks if not c.excluded]
    try:
        recount = tally(proposal, eligible, (c.ballot for c in kept))
    except Invalid as exc:
        raise AuditError(
            f"the proposal cannot be recounted: {exc.reason}",
            field="colleges" if exc.field == "college_weights" else exc.field,
        ) from None
    statuses = recount_statuses(recount)
    for check in kept:
        check.recount_status = statuses.get(check.ballot, "counted")
        if check.recount_status != check.status:
            problems.append(
                f"ballot {check.position} ({check.voter}, {check.activity}): published "
                f"{check.status}, recount {check.recount_status}"
            )
    for check in checks:
        if check.excluded:
            problems.append(
                f"ballot {check.position} ({check.voter}, {check.activity}) is {check.label}: "
                + "; ".join(check.problems)
            )
    compare(published, recount, problems)
    return AuditReport(
        url=url,
        name=name,
        proposal=proposal,
        published=published,
        recount=recount,
        electorate=eligible,
        ballots=checks,
        discrepancies=problems,
    )


def _check_electorate(
    snapshot: Mapping[str, Any],
    digest: str,
    eligible: dict[str, str | None],
    items: list[Any],
    total: int | None,
    problems: list[str],
) -> None:
    """The electorate served against its published digest and sizes."""
    computed_digest = roster_digest(eligible.items())
    if len(eligible) != len(items):
        computed_digest = roster_digest((i["voter"], i.get("college")) for i in items)
    if computed_digest != digest:
        problems.append(
            f"the electorate does not match its digest: published {digest}, "
            f"the {len(items)} members served give {computed_digest}"
        )
    if snapshot.get("totalItems") is not None:
        shown = integer(snapshot["totalItems"], "rosterSnapshot.totalItems")
        if shown != len(items):
            problems.append(
                f"rosterSnapshot.totalItems is {shown}, "
                f"the electorate collection serves {len(items)}"
            )
    if total is not None and total != len(items):
        problems.append(
            f"the electorate collection says totalItems {total}, its pages hold {len(items)}"
        )


def _check_listing(checks: list[BallotCheck], problems: list[str]) -> None:
    """A ballot listed twice, and a voter with more than one ballot counted."""
    listed = Counter(c.activity for c in checks)
    for activity, times in listed.items():
        if times > 1:
            problems.append(f"the ballot of activity {activity} is listed {times} times")
    counted = Counter(c.voter for c in checks if c.status == "counted")
    for voter, times in counted.items():
        if times > 1:
            problems.append(f"{voter} has {times} ballots published as counted")


def read_electorate(items: list[Any], problems: list[str]) -> dict[str, str | None]:
    """Each voter of the electorate and their college; a voter listed twice is a problem."""
    eligible: dict[str, str | None] = {}
    for index, item in enumerate(items):
        where = f"electorate item {index + 1}"
        if not isinstance(item, dict):
            raise AuditError(f"an object, not {quoted(item)}", field=where)
        voter = string(item.get("voter"), f"{where}.voter")
        college = item.get("college")
        if college is not None:
            college = string(college, f"{where}.college", limit=64)
        if voter in eligible:
            problems.append(f"the electorate lists {voter} more than once")
        eligible[voter] = college
    return eligible


def read_ballot(position: int, item: object) -> BallotCheck:
    """A published ballot, read field by field (its Notes are checked later)."""
    where = f"ballots item {position}"
    if not isinstance(item, dict):
        raise AuditError(f"an object, not {quoted(item)}", field=where)
    if item.get("type", "Ballot") != "Ballot":
        raise AuditError(f"a Ballot, not a {quoted(item.get('type'))}", field=f"{where}.type")
    choices = required(item, "choices", f"{where}.")
    if not isinstance(choices, list) or len(choices) > 256:
        raise AuditError(f"a list of option names, not {quoted(choices)}", field=f"{where}.choices")
    status = required(item, "status", f"{where}.")
    if status not in STATUSES:
        raise AuditError(
            f"one of {', '.join(STATUSES)}, not {quoted(status)}", field=f"{where}.status"
        )
    college = item.get("college")
    votes = item.get("votes", [])
    if not isinstance(votes, list):
        raise AuditError(f"a list of Notes, not {quoted(votes)}", field=f"{where}.votes")
    reason = item.get("reason")
    return BallotCheck(
        position=position,
        voter=string(item.get("voter"), f"{where}.voter"),
        college=None if college is None else string(college, f"{where}.college", limit=64),
        choices=tuple(string(c, f"{where}.choices", limit=512) for c in choices),
        cast_at=stamp(required(item, "castAt", f"{where}."), f"{where}.castAt"),
        activity=string(item.get("activity"), f"{where}.activity"),
        status=status,
        reason=reason if isinstance(reason, str) else None,
        votes=votes,
    )
