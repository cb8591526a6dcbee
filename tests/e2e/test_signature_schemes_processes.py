"""Two real ``coopnode serve`` processes sign to each other with Ed25519 (RFC 9421)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from federation.origins import origin_of
from tests.support.processes import ServeProcess, run_coopnode

pytestmark = pytest.mark.e2e


def schemes(node: ServeProcess) -> list[tuple[str, str, int]]:
    with sqlite3.connect(node.data_dir / "coopnode.sqlite3") as db:
        rows = db.execute("SELECT host, scheme, confirmed FROM signature_schemes").fetchall()
    return [(str(host), str(scheme), int(confirmed)) for host, scheme, confirmed in rows]


def test_coopnodes_sign_their_deliveries_to_each_other_with_ed25519(
    two_nodes: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = two_nodes

    # a's Follow goes to b, b's Accept comes back: each node verifies the other's
    # RFC 9421 signature, made with the Ed25519 key its actor publishes.
    followed = run_coopnode("follow", f"coop@127.0.0.1:{b.port}", "--data-dir", str(a.data_dir))
    assert "accepted" in followed.stdout, followed.stdout + a.read_output() + b.read_output()
    # Each remembers the other by its origin: one host, two servers on two ports.
    deadline = time.monotonic() + 15
    while schemes(b) != [(origin_of(a.base), "rfc9421-ed25519", 1)]:
        assert time.monotonic() < deadline, schemes(b)
        time.sleep(0.2)

    assert schemes(a) == [(origin_of(b.base), "rfc9421-ed25519", 1)]
    for node in (a, b):
        deliveries = run_coopnode("deliveries", "--data-dir", str(node.data_dir))
        assert "1 delivered" in deliveries.stdout, deliveries.stdout
