"""Object integrity proofs (eddsa-jcs-2022) signed and verified per second, on a ballot.

The document is the ``Note`` a member's vote is sent as (``node.governance.voting``): an option
name in reply to a proposal, addressed to the co-op's actor. Signing is what a local vote
costs per option; verifying (reading the proof, then checking it) is what every remote
ballot that carries a proof costs in the inbox worker, before any key fetch. Each figure
is the best of a few rounds, on one core.

    .venv/bin/python bench/proofs.py
    .venv/bin/python bench/proofs.py --count 50000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rfc8785  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from federation import proofs  # noqa: E402

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
VOTER = "https://coop-lyon.example/actors/camille"


def ballot(n: int) -> dict[str, Any]:
    return {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/data-integrity/v2",
        ],
        "id": f"{VOTER}/ballots/3f9c2a7e5b1d4c0e8a6f2b9d7c1e5a3{n:06d}/0",
        "type": "Note",
        "name": "Pour",
        "inReplyTo": "https://federation.example/proposals/budget-2027",
        "attributedTo": VOTER,
        "to": ["https://federation.example/actors/assembly"],
        "published": "2027-03-01T09:00:00Z",
    }


def best_rate(action: Callable[[int], object], count: int, rounds: int) -> float:
    """Operations per second over ``count`` calls, the best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for n in range(count):
            action(n)
        best = min(best, time.perf_counter() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    method = f"{VOTER}#ed25519-key"
    documents = [ballot(n) for n in range(args.count)]
    signed = [
        proofs.sign(document, key, verification_method=method, created=NOW)
        for document in documents
    ]
    size = len(rfc8785.dumps(signed[0]))

    def sign_one(n: int) -> object:
        return proofs.sign(documents[n], key, verification_method=method, created=NOW)

    def verify_one(n: int) -> None:
        document = signed[n]
        proofs.verification_method(document)
        proofs.verify(document, public)

    print(f"signed ballot Note: {size} bytes of canonical JSON")
    print(f"verify: {best_rate(verify_one, args.count, args.rounds):,.0f} per second")
    print(f"sign: {best_rate(sign_one, args.count, args.rounds):,.0f} per second")


if __name__ == "__main__":
    main()
