"""What the audit found: each ballot or subtotal checked, and the report of the whole.

A check's ``proof`` says what its proof showed; :class:`Judged` says what that means for
the recount. The report holds the proposal as read, the result as published, the
recount, every check and the discrepancies; :mod:`node.governance.audit.render` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from node.governance.audit.read import Published
from node.governance.rules.tally import Ballot, Proposal, Result

PROOF_STATES = ("verified", "unverifiable", "failed", "inconsistent")


class Judged:
    """What a checked ballot or subtotal's ``proof`` state means: ``failed`` (TAMPERED)
    and ``inconsistent`` ones are left out of the recount."""

    proof: str

    @property
    def excluded(self) -> bool:
        return self.proof in ("failed", "inconsistent")

    @property
    def label(self) -> str:
        return "TAMPERED" if self.proof == "failed" else self.proof.upper()


@dataclass
class BallotCheck(Judged):
    """One published ballot and what the audit found about it.

    ``proof`` is ``verified`` (every Note carries a proof that verifies with a key of the
    voter's), ``unverifiable`` (no proof, or the voter's key could not be fetched: the
    host vouches for it), ``failed`` (a proof that does not verify, or made with a key
    that is not the voter's: TAMPERED) or ``inconsistent`` (the Notes do not say what the
    ballot says). Failed and inconsistent ballots are left out of the recount.
    """

    position: int
    voter: str
    college: str | None
    choices: tuple[str, ...]
    cast_at: datetime
    activity: str
    status: str
    reason: str | None
    votes: list[Any]
    proof: str = "unverifiable"
    problems: list[str] = field(default_factory=list)
    recount_status: str | None = None

    @property
    def ballot(self) -> Ballot:
        return Ballot(
            voter=self.voter,
            choices=self.choices,
            cast_at=self.cast_at,
            activity_id=self.activity,
            college=self.college,
        )


@dataclass
class SubtotalCheck(Judged):
    """One published subtotal and what the audit found about it. ``proof`` reads as a
    ballot's does; failed and inconsistent subtotals are left out of the recount."""

    position: int
    coop: str
    voters: int
    colleges: dict[str | None, tuple[int, dict[str, int]]]
    published: datetime | None
    document: dict[str, Any]
    proof: str = "unverifiable"
    problems: list[str] = field(default_factory=list)


@dataclass
class Share:
    """A co-op's participation, as the outcome publishes it."""

    coop: str
    state: str
    eligible: int
    voted: int
    subtotal: bool


@dataclass
class AuditReport:
    """The audit of one closed proposal: what was read, recounted and found."""

    url: str
    name: str
    proposal: Proposal
    published: Published
    recount: Result
    electorate: dict[str, str | None]
    ballots: list[BallotCheck]
    discrepancies: list[str]
    subtotals: list[SubtotalCheck] = field(default_factory=list)
    """In subtotal mode: each co-op's published subtotal (``ballots`` is then empty)."""
    shares: dict[str, Share] = field(default_factory=dict)
    """In subtotal mode: each co-op's participation, as published."""

    @property
    def verified(self) -> int:
        return sum(1 for b in self.ballots if b.proof == "verified")

    @property
    def unverifiable(self) -> int:
        return sum(1 for b in self.ballots if b.proof == "unverifiable")

    @property
    def failed(self) -> int:
        return sum(1 for b in self.ballots if b.proof == "failed")

    @property
    def inconsistent(self) -> int:
        return sum(1 for b in self.ballots if b.proof == "inconsistent")

    @property
    def ok(self) -> bool:
        return (
            not self.discrepancies
            and not self.failed
            and not self.inconsistent
            and not any(s.excluded for s in self.subtotals)
        )

    @property
    def verdict(self) -> str:
        return "VERIFIED" if self.ok else "DOES NOT VERIFY"
