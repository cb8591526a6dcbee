"""The audit report as text: what ``coopnode audit`` prints and the recount page shows.

The proposal, its rule and quorum, the options with the published and recomputed counts
(per college where colleges weigh), the proofs (of ballots, or of each co-op's subtotal),
the discrepancies and the verdict.
"""

from __future__ import annotations

from fractions import Fraction

from node.governance.audit.fields import fraction_text, when
from node.governance.audit.report import PROOF_STATES, AuditReport
from node.governance.rules.tally import Majority, Proposal, Qualified


def _rule_text(proposal: Proposal) -> str:
    rule = proposal.rule
    if rule is None:
        return f"multiple choice, at most {proposal.max_choices}; counts only"
    if isinstance(rule, Majority):
        text = "simple majority (more than half of for + against)"
    elif isinstance(rule, Qualified):
        text = f"qualified majority, at least {fraction_text(rule.fraction)} of for + against"
    else:
        text = f"consent, blocked by {rule.block_at} objection{'s' if rule.block_at != 1 else ''}"
    if proposal.college_weights is not None:
        text += ", colleges weighted"
    return text


def _percent(share: Fraction | None) -> str:
    if share is None:
        return "-"
    tenths = round(share * 1000)
    return f"{tenths // 10}.{tenths % 10} %"


def table(rows: list[list[str]]) -> list[str]:
    """``rows`` as a table: the first row its header, the first column to the left."""
    rows = [row + [""] * (len(rows[0]) - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def render(report: AuditReport) -> str:
    """The report as text: the proposal, its rule and quorum, the options with the
    published and recomputed counts (per college where colleges weigh), the proofs, the
    discrepancies and the verdict."""
    proposal, published, recount = report.proposal, report.published, report.recount
    lines = [
        f"Proposal  {report.name}",
        f"          {report.url}",
        f"Voting    {when(proposal.opens_at)} to {when(proposal.closes_at)}",
        f"Rule      {_rule_text(proposal)}",
        f"Quorum    {fraction_text(proposal.quorum)} of {recount.eligible} eligible = "
        f"{recount.quorum_needed} needed; {recount.quorum_turnout} counted toward it"
        f"{'' if proposal.abstentions_count_for_quorum else ' (abstentions not counted)'}",
        "Changes   "
        + (
            "allowed: the last ballot counts"
            if proposal.replacements_allowed
            else "not allowed: the first ballot counts"
        ),
        "",
    ]
    weights = proposal.college_weights
    header = ["Option", "Role", "Published", "Recomputed"]
    if weights is not None:
        header.append("Weighted share")
    rows = [header]
    shares = recount.weighted_shares or {}
    for option in proposal.options:
        row = [
            option.name,
            option.role.value,
            str(published.counts.get(option.name, "-")),
            str(recount.counts[option.name]),
        ]
        if weights is not None:
            row.append(_percent(shares.get(option.name)))
        rows.append(row)
    rows.append(["Turnout", "", str(published.turnout), str(recount.turnout)])
    rows.append(["Eligible", "", str(published.eligible), str(recount.eligible)])
    lines += table(rows)
    if recount.colleges:
        lines += ["", "Colleges (recomputed; published in brackets where it differs)"]
        college_rows = [["College", "Weight", "Voters", *(o.name for o in proposal.options)]]
        for college in recount.colleges:
            shown = (published.colleges or {}).get(college.name)
            voters = str(college.voters)
            if shown is not None and shown[1] != college.voters:
                voters += f" [{shown[1]}]"
            cells = []
            for option in proposal.options:
                cell = str(college.counts.get(option.name, 0))
                if shown is not None and shown[2].get(option.name) != college.counts.get(
                    option.name
                ):
                    cell += f" [{shown[2].get(option.name, '-')}]"
                cells.append(cell)
            weight = "-" if college.weight is None else fraction_text(college.weight)
            college_rows.append([college.name, weight, voters, *cells])
        lines += table(college_rows)
    if recount.weighted_support is not None:
        lines.append(
            f"  Weighted support: {_percent(recount.weighted_support)} "
            f"({fraction_text(recount.weighted_support)})"
        )
    lines += [
        "",
        f"Outcome   published: {published.result}"
        + (f" ({published.reason})" if published.reason else ""),
        f"          recomputed: {recount.outcome.value} ({recount.reason})",
        "",
    ]
    if report.subtotals or report.shares:
        lines += render_subtotals(report)
        lines += [
            f"          {c.coop}: {c.label} — {'; '.join(c.problems)}"
            for c in report.subtotals
            if c.problems
        ]
        return _ending(lines, report)
    lines += [
        f"Ballots   {len(report.ballots)} published: {report.verified} with proofs verified, "
        f"{report.unverifiable} unverifiable, {report.failed} failed (TAMPERED)"
        + (f", {report.inconsistent} inconsistent" if report.inconsistent else ""),
    ]
    excluded = sum(1 for b in report.ballots if b.excluded)
    if excluded:
        lines.append(
            f"          {excluded} left out of the recount (what the voter signed is not "
            "what was published): the recount is made without them"
        )
    unverifiable = [b for b in report.ballots if b.proof == "unverifiable"]
    if unverifiable:
        lines.append("          Unverifiable (no proof: the host vouches for it):")
        for check in unverifiable[:50]:
            note = f" — {'; '.join(check.problems)}" if check.problems else ""
            lines.append(f"            {check.voter} ({check.activity}){note}")
        if len(unverifiable) > 50:
            lines.append(f"            ... and {len(unverifiable) - 50} more")
    return _ending(lines, report)


def _ending(lines: list[str], report: AuditReport) -> str:
    lines.append("")
    if report.discrepancies:
        lines.append(f"Discrepancies ({len(report.discrepancies)}):")
        lines += [f"  - {d}" for d in report.discrepancies]
    else:
        lines.append("Discrepancies: none")
    lines += ["", f"Verdict: {report.verdict}"]
    return "\n".join(lines) + "\n"


def render_subtotals(report: AuditReport) -> list[str]:
    """The subtotals part of the printed report: one row per co-op."""
    checks = report.subtotals
    counts = {state: sum(1 for c in checks if c.proof == state) for state in PROOF_STATES}
    lines = [
        f"Subtotals {len(checks)} published: {counts['verified']} with proofs verified, "
        f"{counts['unverifiable']} unverifiable, {counts['failed']} failed (TAMPERED)"
        + (f", {counts['inconsistent']} inconsistent" if counts["inconsistent"] else "")
    ]
    rows = [["Co-op", "State", "Eligible", "Voted", "Subtotal"]]
    by_coop = {c.coop: c for c in checks}
    for share in report.shares.values():
        check = by_coop.get(share.coop)
        rows.append(
            [
                share.coop,
                share.state,
                str(share.eligible),
                str(share.voted),
                "none" if check is None else check.label.lower(),
            ]
        )
    lines += ["  " + line for line in table(rows)]
    return lines
