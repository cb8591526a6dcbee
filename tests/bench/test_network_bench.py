"""The networks bench, small: 10 co-ops of 5 offers each, every offer in every member's
catalogue, within a minute (real processes and ports on loopback)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.e2e

SMALL = ["--coops", "10", "--offers", "5", "--timeout", "55"]


def test_ten_co_ops_relay_their_offers_to_each_other() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "network.py"), *SMALL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checked: every member holds every offer" in done.stdout
    assert "every member's catalogue holds all 50 offers" in done.stdout
    # One POST to the hub per offer, one Announce per other member. The newcomers' walks
    # of the members' offers are over before the timed part; the reads of members that
    # may fall in it are the network's, of each newcomer's offers at its admission (two
    # pages each here: 20 for 50 offers), and each member's fetch of another's actor
    # document, for the key that verifies its offers' proofs (at most 9 × 10 here).
    assert "the hub received 1.00 inbox POST" in done.stdout
    found = re.search(
        r"members received 1\.00 API POST, (?:(\d\.\d\d) GET, )?(?:(\d\.\d\d) actor GET, )?"
        r"9\.00 inbox POST",
        done.stdout,
    )
    assert found is not None, done.stdout
    other, actors = (float(value or 0) for value in found.groups())
    assert other <= 20 / 50, done.stdout
    assert actors <= 9 * 10 / 50, done.stdout
