"""The pure tally over 1,000,000 ballots held in memory: the budget of the database path.

A multi-stakeholder co-op of 1,000,000 members in three colleges (producers, workers,
consumers, weighing 50/30/20) votes For / Against / Abstain on a proposal that needs two
thirds, allows changes and counts abstentions toward a 25 % quorum. Every member votes;
on top of those ballots, 5 % of members changed their mind later, 2 % of ballots arrive
twice (a peer's redelivery) and a few hundred are refused (late, or from non-members).
Ballots come in a shuffled order. Prints the time of :func:`node.governance.tally` alone,
best of 3: reading the ballots from the database must fit in what is left of the
3 seconds that the whole tally may take.

    .venv/bin/python bench/tally.py
    .venv/bin/python bench/tally.py --members 100000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.governance import (  # noqa: E402
    Ballot,
    Option,
    Proposal,
    Qualified,
    Result,
    Role,
    tally,
)

OPENS = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
CLOSES = OPENS + timedelta(days=14)
COLLEGES = {"producers": Fraction(1, 2), "workers": Fraction(3, 10), "consumers": Fraction(1, 5)}
# The share of each college among members, and how each college leans.
COLLEGE_SIZES = {"producers": 0.2, "workers": 0.1, "consumers": 0.7}
LEANING = {
    "producers": (0.75, 0.2, 0.05),
    "workers": (0.6, 0.3, 0.1),
    "consumers": (0.45, 0.45, 0.1),
}
OPTIONS = ("For", "Against", "Abstain")


def build(members: int, seed: int) -> tuple[Proposal, dict[str, str | None], list[Ballot]]:
    rng = random.Random(seed)
    proposal = Proposal(
        options=(
            Option("For", Role.FOR),
            Option("Against", Role.AGAINST),
            Option("Abstain", Role.ABSTAIN),
        ),
        opens_at=OPENS,
        closes_at=CLOSES,
        rule=Qualified(Fraction(2, 3)),
        quorum=Fraction(1, 4),
        abstentions_count_for_quorum=True,
        replacements_allowed=True,
        college_weights=COLLEGES,
    )
    names = list(COLLEGE_SIZES)
    college_of = rng.choices(names, weights=list(COLLEGE_SIZES.values()), k=members)
    eligible: dict[str, str | None] = {
        f"https://coop{i % 40}.example/actors/m{i}": college for i, college in enumerate(college_of)
    }
    # (member, option, seconds after the opening, activity suffix), in arrival order.
    window = int((CLOSES - OPENS).total_seconds())
    arrivals: list[tuple[int, str, int, str]] = []
    for i, college in enumerate(college_of):
        leaning = LEANING[college]
        at = rng.randrange(window - 3600)
        arrivals.append((i, rng.choices(OPTIONS, weights=leaning)[0], at, "v"))
        if rng.random() < 0.05:
            changed = rng.choices(OPTIONS, weights=leaning)[0]
            arrivals.append((i, changed, at + rng.randrange(1, 3600), "w"))
    arrivals.extend(rng.sample(arrivals, k=len(arrivals) // 50))
    for i in range(300):
        arrivals.append((members + i, "For", 3600, "x"))
        arrivals.append((i * 40, "Against", window + 60 * i, "late"))
    rng.shuffle(arrivals)
    # Built in arrival order with strings of their own, as rows read from storage are.
    ballots = [
        Ballot(
            voter=f"https://coop{i % 40}.example/actors/m{i}",
            choices=(option,),
            cast_at=OPENS + timedelta(seconds=at),
            activity_id=f"https://coop{i % 40}.example/activities/{suffix}{i}",
        )
        for i, option, at, suffix in arrivals
    ]
    return proposal, eligible, ballots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2027)
    args = parser.parse_args()

    started = time.perf_counter()
    proposal, eligible, ballots = build(args.members, args.seed)
    print(
        f"built {len(ballots):,} ballots from {len(eligible):,} members "
        f"in {time.perf_counter() - started:.1f} s"
    )
    timings = []
    result: Result | None = None
    for _ in range(args.rounds):
        started = time.perf_counter()
        result = tally(proposal, eligible, ballots)
        timings.append(time.perf_counter() - started)
    assert result is not None
    print(f"outcome: {result.reason}")
    print(
        f"counted {result.turnout:,}, set aside {len(result.set_aside):,}, "
        f"refused {len(result.refused):,}; counts {dict(result.counts)}"
    )
    print(
        f"tally: best {min(timings):.3f} s of {args.rounds} "
        f"({', '.join(f'{t:.3f}' for t in timings)})"
    )


if __name__ == "__main__":
    main()
