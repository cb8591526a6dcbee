"""The audit of a shared proposal counted by subtotals.

In that mode no individual choice leaves its co-op's node: the host counts one signed
``Subtotal`` per co-op (its own included, made from its members' ballots at the close),
and publishes them as received in the closed ``Question``'s ``subtotals`` collection,
with each co-op's participation (how many members its roster had at the opening, how
many voted) in the outcome. The audit then:

1. walks the collection (on the proposal's host, bounded like every walk);
2. reads each subtotal field by field: this proposal, one co-op, figures that add up,
   options the proposal has, colleges it weighs, published at or before the end;
3. verifies each subtotal's proof with a key that the co-op's own actor document
   publishes (a key of anyone else proves nothing: key confusion), so a host cannot
   alter a co-op's figures, nor make up a co-op's subtotal;
4. holds the subtotals against the published participation: each from a co-op that
   took part, one per co-op, no more voters than its roster had, the same voters as
   published, and every subtotal the outcome says was counted present;
5. adds them up and decides with :func:`~node.governance.rules.tally.decide`, the function
   the host ran, over the electorate the participation adds up to, and compares every
   published figure.

What it cannot see: who voted. A member checks that at home, where each co-op
publishes who of its members voted (not how).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urldefrag

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation import proofs
from federation.errors import FederationError
from node.errors import Invalid
from node.governance.audit.compare import compare
from node.governance.audit.fetch import FetchDocument
from node.governance.audit.fields import AuditError, integer, quoted, stamp, string, when
from node.governance.audit.read import Published
from node.governance.audit.report import AuditReport, Share, SubtotalCheck
from node.governance.audit.verify import keys_of_voter
from node.governance.audit.walk import crawl, url_origin
from node.governance.rules.tally import Proposal, Result, decide

TAKING_PART = ("host", "listed")


def read_participation(outcome: Mapping[str, Any]) -> dict[str, Share]:
    raw = outcome.get("participation")
    if not isinstance(raw, list) or not raw:
        raise AuditError(
            "a list of the co-ops taking part, which a shared proposal publishes",
            field="outcome.participation",
        )
    found: dict[str, Share] = {}
    for index, entry in enumerate(raw):
        at = f"outcome.participation[{index}]"
        if not isinstance(entry, dict):
            raise AuditError(f"an object, not {quoted(entry)}", field=at)
        coop = string(entry.get("coop"), f"{at}.coop")
        if coop in found:
            raise AuditError(f"{coop} is listed twice", field=at)
        found[coop] = Share(
            coop=coop,
            state=string(entry.get("state"), f"{at}.state", limit=32),
            eligible=integer(entry.get("eligible", 0), f"{at}.eligible"),
            voted=integer(entry.get("voted", 0), f"{at}.voted"),
            subtotal=entry.get("subtotal") is True,
        )
    return found


def _read_subtotal(
    position: int, item: object, proposal: Proposal, proposal_id: str
) -> SubtotalCheck:
    """A published subtotal, read; what does not hold together makes it inconsistent
    (a field the audit cannot read at all stops the audit, as a ballot's does)."""
    where = f"subtotals item {position}"
    if not isinstance(item, dict):
        raise AuditError(f"an object, not {quoted(item)}", field=where)
    coop = string(item.get("attributedTo"), f"{where}.attributedTo")
    check = SubtotalCheck(
        position=position, coop=coop, voters=0, colleges={}, published=None, document=item
    )
    problems = check.problems
    if item.get("type") != "Subtotal":
        problems.append(f"a {quoted(item.get('type'))}, not a Subtotal")
    if item.get("inReplyTo") != proposal_id:
        problems.append(f"it counts {quoted(item.get('inReplyTo'))}, not this proposal")
    voters = item.get("voters")
    if isinstance(voters, bool) or not isinstance(voters, int) or voters < 0:
        problems.append(f"voters is {quoted(voters)}, not a whole number")
    else:
        check.voters = voters
    published = item.get("published")
    try:
        check.published = stamp(published, f"{where}.published")
    except AuditError:
        problems.append(f"published is {quoted(published)}, not a date and time")
    if check.published is not None and check.published > proposal.closes_at:
        problems.append(f"published {when(check.published)}, after the vote's end")
    names = {o.name for o in proposal.options}
    weights = proposal.college_weights
    colleges = item.get("colleges")
    if not isinstance(colleges, list) or not colleges or len(colleges) > 50:
        problems.append("its colleges are not a list of 1 to 50 objects")
        colleges = []
    total = 0
    for college in colleges:
        if not isinstance(college, dict):
            problems.append(f"a college is {quoted(college)}, not an object")
            continue
        name = college.get("name")
        if name is not None and not isinstance(name, str):
            problems.append(f"a college is named {quoted(name)}")
            continue
        if name in check.colleges:
            problems.append(f"college {name!r} is listed twice")
            continue
        if weights is not None and name not in weights:
            problems.append(f"college {name!r} is not one of the proposal's colleges")
        in_college = college.get("voters")
        counts = college.get("counts")
        if isinstance(in_college, bool) or not isinstance(in_college, int) or in_college < 0:
            problems.append(f"college {name!r} has {quoted(in_college)} voters")
            continue
        if not isinstance(counts, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()
        ):
            problems.append(f"college {name!r} counts are not whole numbers per option")
            continue
        unknown = sorted(set(counts) - names)
        if unknown:
            problems.append(f"college {name!r} counts options the proposal lacks: {unknown}")
            continue
        if sum(counts.values()) != in_college:
            problems.append(
                f"college {name!r}: {sum(counts.values())} choices for {in_college} voters"
            )
        check.colleges[name] = (in_college, {str(k): int(v) for k, v in counts.items()})
        total += in_college
    if total != check.voters and not problems:
        problems.append(f"its colleges' voters add up to {total}, not {check.voters}")
    if "proof" not in item:
        problems.append("it carries no proof")
    if problems:
        check.proof = "inconsistent"
    return check


def _verify(check: SubtotalCheck, coop_keys: dict[str, Ed25519PublicKey] | str) -> None:
    """The subtotal's proof, against the keys the co-op's own actor publishes (or the
    reason they could not be fetched: then it is unverifiable)."""
    proof = check.document.get("proof")
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(method, str):
        check.proof = "failed"
        check.problems.append("its proof names no verification method")
        return
    if isinstance(coop_keys, str):
        check.problems.append(f"its proof could not be checked: {coop_keys}")
        return
    key = coop_keys.get(method)
    if key is None:
        owner = urldefrag(method).url
        check.proof = "failed"
        if owner != check.coop:
            check.problems.append(
                f"signed with {method}, a key of {owner}, not of the co-op (key confusion)"
            )
        else:
            check.problems.append(f"signed with {method}, which the co-op's actor does not publish")
        return
    try:
        proofs.verify(check.document, key)
    except proofs.ProofError as exc:
        check.proof = "failed"
        check.problems.append(f"the proof does not verify: {exc.reason}")
        return
    check.proof = "verified"


async def _coop_keys(fetch: FetchDocument, coop: str) -> dict[str, Ed25519PublicKey] | str:
    try:
        return keys_of_voter(coop, await fetch(coop))
    except FederationError as exc:
        return f"the co-op's actor document is unavailable ({exc.reason})"


def _leave_out(check: SubtotalCheck, why: str) -> None:
    if check.proof != "failed":
        check.proof = "inconsistent"
    check.problems.append(why)


def _hold_against(
    checks: list[SubtotalCheck], shares: dict[str, Share], problems: list[str]
) -> None:
    """Each subtotal against the published participation; a subtotal that cannot have
    been counted is left out of the recount."""
    seen: set[str] = set()
    for check in checks:
        share = shares.get(check.coop)
        if share is None or share.state not in TAKING_PART:
            _leave_out(
                check,
                f"{check.coop} is not a co-op taking part"
                + ("" if share is None else f" (its state is {share.state})"),
            )
            continue
        if check.coop in seen:
            _leave_out(check, f"a second subtotal of {check.coop}: only one counts")
            continue
        seen.add(check.coop)
        if check.voters > share.eligible:
            _leave_out(
                check, f"{check.voters} voters, but its roster had {share.eligible} at the opening"
            )
        elif check.voters != share.voted:
            problems.append(
                f"{check.coop}: the outcome says {share.voted} voted, its subtotal "
                f"says {check.voters}"
            )
    for share in shares.values():
        if share.subtotal and share.coop not in seen:
            problems.append(
                f"the outcome counts a subtotal of {share.coop}, which is not published"
            )


def recount(proposal: Proposal, checks: list[SubtotalCheck], shares: dict[str, Share]) -> Result:
    """The result from the subtotals kept, over the electorate the rosters made."""
    pairs: dict[str | None, dict[tuple[str, ...], int]] = {}
    for check in checks:
        if check.excluded:
            continue
        for college, (_, counts) in check.colleges.items():
            made = pairs.setdefault(college, {})
            for option, n in counts.items():
                if n:
                    made[(option,)] = made.get((option,), 0) + n
    eligible = sum(s.eligible for s in shares.values() if s.state in TAKING_PART)
    try:
        return decide(proposal, pairs, eligible=eligible, roster=set(pairs))
    except Invalid as exc:
        raise AuditError(
            f"the proposal cannot be recounted: {exc.reason}",
            field="colleges" if exc.field == "college_weights" else exc.field,
        ) from None


async def audit_subtotals(
    question: Mapping[str, Any],
    *,
    url: str,
    proposal: Proposal,
    published: Published,
    fetch: FetchDocument,
    fetch_large: FetchDocument,
    actors: FetchDocument,
) -> AuditReport:
    """The audit of the closed ``question`` (published at ``url``) from its co-ops'
    subtotals; ``actors`` fetches the co-ops' actor documents."""
    proposal_id = string(question.get("id"), "id")
    origin = url_origin(proposal_id)
    shares = read_participation(question["outcome"])
    subtotals_url = string(question.get("subtotals"), "subtotals")
    items, total = await crawl(fetch, fetch_large, subtotals_url, origin, "subtotals")
    problems: list[str] = []
    if total is not None and total != len(items):
        problems.append(f"the subtotals collection says totalItems {total}, it holds {len(items)}")
    checks = [
        _read_subtotal(position, item, proposal, proposal_id)
        for position, item in enumerate(items, start=1)
    ]
    coops = {c.coop for c in checks if c.proof != "inconsistent"}
    loaded = dict(
        zip(
            coops,
            await asyncio.gather(*(_coop_keys(actors, coop) for coop in coops)),
            strict=True,
        )
    )
    for check in checks:
        if check.proof == "unverifiable":  # read without a problem: now its proof
            _verify(check, loaded[check.coop])
    _hold_against(checks, shares, problems)
    snapshot = question.get("rosterSnapshot")
    eligible = sum(s.eligible for s in shares.values() if s.state in TAKING_PART)
    if isinstance(snapshot, dict) and snapshot.get("totalItems") is not None:
        shown = integer(snapshot["totalItems"], "rosterSnapshot.totalItems")
        if shown != eligible:
            problems.append(
                f"rosterSnapshot.totalItems is {shown}, the co-ops' rosters add up to {eligible}"
            )
    result = recount(proposal, checks, shares)
    for check in checks:
        if check.excluded:
            problems.append(
                f"subtotal {check.position} ({check.coop}) is {check.label}: "
                + "; ".join(check.problems)
            )
    compare(published, result, problems)
    title = question.get("name")
    return AuditReport(
        url=url,
        name=title if isinstance(title, str) else proposal_id,
        proposal=proposal,
        published=published,
        recount=result,
        electorate={},
        ballots=[],
        discrepancies=problems,
        subtotals=checks,
        shares=shares,
    )
