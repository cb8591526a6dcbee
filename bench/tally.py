"""The pure tally over 1,000,000 ballots held in memory: the budget of the database path.

A multi-stakeholder co-op of 1,000,000 members in three colleges (producers, workers,
consumers, weighing 50/30/20) votes For / Against / Abstain on a proposal that needs two
thirds, allows changes and counts abstentions toward a 25 % quorum. Every member votes;
on top of those ballots, 5 % of members changed their mind later, 2 % of ballots arrive
twice (a peer's redelivery) and a few hundred are refused (late, or from non-members).
Ballots come in a shuffled order. Prints the time of :func:`node.governance.rules.tally` alone,
best of 3: reading the ballots from the database must fit in what is left of the
3 seconds that the whole tally may take.

``--stored`` loads the same ballots into a fresh, migrated database instead, as the
host stores them (replays skipped by their activity id, late ballots and non-members'
stored as refused, the electorate in ``proposal_voters``), runs ANALYZE, and times
:func:`node.governance.store.tally.count` from the rows to the result, best of 3; it checks
that result against the pure tally's. ``--compare`` also times other ways of picking
the counted ballots in SQL, to show why the module uses the one it does.

    .venv/bin/python bench/tally.py
    .venv/bin/python bench/tally.py --members 100000
    .venv/bin/python bench/tally.py --stored                      # SQLite
    .venv/bin/python bench/tally.py --stored --backend postgres --compare
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.governance.rules import (  # noqa: E402
    Ballot,
    Option,
    Proposal,
    Qualified,
    Result,
    Role,
    tally,
)
from node.governance.store import tally as stored  # noqa: E402
from node.storage import migrate  # noqa: E402
from node.storage.database import Database  # noqa: E402
from node.storage.engine import create_null_pool_engine  # noqa: E402
from node.storage.tables import actors, proposal_voters, proposals  # noqa: E402
from node.storage.tables import ballots as ballot_rows  # noqa: E402

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


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'tally.sqlite3'}"
        return
    from tests.support.postgres import PostgresCluster

    with PostgresCluster(durable=True) as cluster:
        yield cluster.create_database("tally")


def load(
    db: Database, proposal: Proposal, eligible: dict[str, str | None], arrived: list[Ballot]
) -> int:
    """Store the proposal, its electorate and its ballots as the host would have, and
    return the proposal's id. Replays are skipped (the activity id is unique); a ballot
    from outside the electorate or outside the window is stored as refused."""
    weights = proposal.college_weights or {}

    def setup(conn: Connection) -> int:
        actor_id = conn.execute(
            actors.insert()
            .values(
                username="coop",
                type="Organization",
                name="Co-op",
                summary="",
                created_at=OPENS,
                updated_at=OPENS,
            )
            .returning(actors.c.id)
        ).scalar_one()
        options = [{"name": o.name, "role": o.role.value} for o in proposal.options]
        row = proposals.insert().values(
            key="tariff",
            uri="https://host.example/proposals/tariff",
            actor_id=actor_id,
            title="Tariff",
            source="",
            content="",
            options=json.dumps(options),
            rule="qualified",
            threshold="2/3",
            quorum=str(proposal.quorum),
            abstentions_count=int(proposal.abstentions_count_for_quorum),
            allow_change=int(proposal.replacements_allowed),
            colleges_weigh=int(bool(weights)),
            college_weights=json.dumps({c: str(w) for c, w in weights.items()}),
            opens_at=proposal.opens_at,
            closes_at=proposal.closes_at,
            state="closed",
            eligible=len(eligible),
            published=OPENS,
            updated=OPENS,
        )
        return int(conn.execute(row.returning(proposals.c.id)).scalar_one())

    pk = db.write_sync(setup)
    voters = [{"proposal_id": pk, "voter": v, "college": c} for v, c in eligible.items()]
    rows = []
    seen: set[str] = set()
    for b in arrived:
        if b.activity_id in seen:
            continue
        seen.add(b.activity_id)
        valid = b.voter in eligible and proposal.opens_at <= b.cast_at < proposal.closes_at
        rows.append(
            {
                "proposal_id": pk,
                "voter": b.voter,
                "college": eligible.get(b.voter),
                "choices": json.dumps(list(b.choices), ensure_ascii=False, separators=(",", ":")),
                "activity_id": b.activity_id,
                "cast_at": b.cast_at,
                "state": "valid" if valid else "refused",
                "reason": None if valid else "refused at receipt",
                "notes": "[]",
            }
        )
    step = 50_000
    for table, values in ((proposal_voters, voters), (ballot_rows, rows)):
        for start in range(0, len(values), step):
            chunk = values[start : start + step]
            db.write_sync(lambda c, t=table, v=chunk: c.execute(t.insert(), v))  # type: ignore[misc]
    return pk


def analyze(url: str, backend: str) -> None:
    engine = create_null_pool_engine(url)
    with engine.connect() as conn:
        if backend == "postgres":
            conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
            conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    engine.dispose()


# Other ways of picking each voter's counted ballot, timed by --compare: the query alone,
# from the rows to the grouped counts.
WINDOW = """
SELECT college, choices, count(*) FROM (
    SELECT college, choices, row_number() OVER (
        PARTITION BY voter ORDER BY cast_at DESC, activity_id{collate} DESC) AS rank
    FROM ballots WHERE proposal_id = :proposal AND state = 'valid'
) AS ranked WHERE rank = 1 GROUP BY college, choices
"""
NOT_EXISTS = """
SELECT college, choices, count(*) FROM ballots AS b
WHERE proposal_id = :proposal AND state = 'valid' AND NOT EXISTS (
    SELECT 1 FROM ballots AS o
    WHERE o.proposal_id = b.proposal_id AND o.voter = b.voter AND o.state = 'valid'
      AND (o.cast_at > b.cast_at OR (o.cast_at = b.cast_at
           AND o.activity_id{collate} > b.activity_id{collate})))
GROUP BY college, choices
"""
ALTERNATIVES = {"window": WINDOW, "not exists": NOT_EXISTS}


def timed(rounds: int, fn: Callable[[], Any]) -> tuple[str, Any]:
    """Best of ``rounds`` wall times, each with this process's CPU time: on a busy
    machine the CPU time (all of the work with SQLite, which runs in this process; the
    client's share only with PostgreSQL) says more than the wall time."""
    timings, value = [], None
    for _ in range(rounds):
        started, cpu = time.perf_counter(), time.process_time()
        value = fn()
        timings.append((time.perf_counter() - started, time.process_time() - cpu))
    wall, used = min(timings)
    each = ", ".join(f"{w:.3f}" for w, _ in timings)
    return f"best {wall:.3f} s (CPU {used:.3f} s) of {rounds} ({each})", value


def run_stored(
    args: argparse.Namespace,
    proposal: Proposal,
    eligible: dict[str, str | None],
    arrived: list[Ballot],
    expected: Result,
) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(args.backend, Path(tmp)) as url:
        engine = create_null_pool_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        db = Database(url, readers=1)
        try:
            started = time.perf_counter()
            pk = load(db, proposal, eligible, arrived)
            for sql in args.index:
                db.write_sync(lambda c, s=sql: c.exec_driver_sql(s))  # type: ignore[misc]
            analyze(url, args.backend)
            print(f"{args.backend}: stored in {time.perf_counter() - started:.1f} s")
            summary, result = timed(
                args.rounds, lambda: db.read_sync(lambda c: stored.count(c, pk, proposal))
            )
            print(f"stored.count: {summary}")
            assert result == dataclasses.replace(expected, refused=(), set_aside=()), result
            print("same result as the pure tally")
            if args.compare:
                collate = ' COLLATE "C"' if args.backend == "postgres" else ""
                dialect = "postgresql" if args.backend == "postgres" else "sqlite"
                queries = {
                    "stored.count's": stored.counted_query(dialect, last=True),
                    **{name: sql.format(collate=collate) for name, sql in ALTERNATIVES.items()},
                }
                for name, sql in queries.items():
                    query = text(sql)
                    summary, rows = timed(
                        args.rounds,
                        lambda q=query: db.read_sync(  # type: ignore[misc]
                            lambda c: c.execute(q, {"proposal": pk}).all()
                        ),
                    )
                    print(f"{name} (query alone): {summary}, {len(rows)} groups")
        finally:
            db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--stored", action="store_true", help="count from database rows")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--compare", action="store_true", help="time other SQL pickings too")
    parser.add_argument(
        "--index", action="append", default=[], help="extra CREATE INDEX to try (repeatable)"
    )
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
    if args.stored:
        run_stored(args, proposal, eligible, ballots, result)


if __name__ == "__main__":
    main()
