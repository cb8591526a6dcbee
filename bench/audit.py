"""``coopnode audit`` of a 10,000-ballot proposal: the time to recount one honestly.

A separate process plays the host (the test suite's :class:`Scenario`, served by
uvicorn on 127.0.0.1): a co-op of N members in three weighted colleges, every member
on that one server with an Ed25519 key of their own, each voting once with a signed
Note. The audit then fetches the Question, the electorate and ballots collections
(pages of 1,000), the N actor documents (their keys), verifies N proofs and recounts.
The host's documents are serialized before the clock starts, so the figure is the
auditor's: fetching, checking, verifying and counting. Prints the best of ``--runs``.

    .venv/bin/python bench/audit.py
    .venv/bin/python bench/audit.py --ballots 2000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.cli.audit import audit_blocking  # noqa: E402
from node.governance.rules.tally import Qualified  # noqa: E402
from tests.node.governance.audit.host import DocumentServer, Scenario  # noqa: E402

COLLEGES = {"producers": Fraction(1, 2), "workers": Fraction(3, 10), "consumers": Fraction(1, 5)}


def serve(ballots: int, seed: int) -> None:
    """The host: build and sign everything, print the proposal's URL, serve until killed."""
    rng = random.Random(seed)
    server = DocumentServer()
    scenario = Scenario(
        server.base, rule=Qualified(Fraction(2, 3)), college_weights=COLLEGES, page_size=1000
    )
    names = list(COLLEGES)
    for i in range(ballots):
        voter = scenario.voter(f"member{i:06d}", rng.choices(names, (2, 1, 7))[0])
        scenario.vote(voter, rng.choices(("For", "Against", "Abstain"), (6, 3, 1))[0])
    url = scenario.publish(server)
    server.documents = {
        path: json.dumps(document).encode() if isinstance(document, dict) else document
        for path, document in server.documents.items()
    }
    server.start()
    print(url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.ballots, args.seed)
        return

    started = time.perf_counter()
    host = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--ballots", str(args.ballots)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        url = host.stdout.readline().strip()
        if not url:
            raise SystemExit("the host process did not start")
        print(f"host ready in {time.perf_counter() - started:.1f} s: {url}")
        times = []
        for run in range(1, args.runs + 1):
            began, cpu = time.perf_counter(), time.process_time()
            report = audit_blocking(url, allow_http=True)
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
            times.append(elapsed)
            print(
                f"run {run}: {elapsed:.2f} s ({cpu:.2f} s of the auditor's CPU), "
                f"{len(report.ballots) / elapsed:,.0f} ballots/s, "
                f"{report.verified} proofs verified, verdict {report.verdict}"
            )
            if not report.ok:
                raise SystemExit("\n".join(report.discrepancies[:20]))
        best = min(times)
        print(
            f"audit of {args.ballots:,} ballots: best {best:.2f} s "
            f"({args.ballots / best:,.0f} ballots/s) over {args.runs} run(s)"
        )
    finally:
        host.terminate()
        host.wait(timeout=10)


if __name__ == "__main__":
    main()
