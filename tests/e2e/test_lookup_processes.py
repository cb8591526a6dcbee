"""`coopnode lookup` against a real server that answers only signed fetches (Mastodon's
secure mode, GoToSocial, bovine): the lookup signs as the co-op, and the server checks
that signature against the key the co-op's running node serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.processes import free_port, run_coopnode, start_serve
from tests.support.scripted_peer import start_scripted_peer

pytestmark = pytest.mark.e2e


def test_coopnode_lookup_signs_its_fetches(tmp_path: Path) -> None:
    node = start_serve(tmp_path / "node")
    peer = start_scripted_peer("202", port=free_port(), authorized_fetch=True)
    try:
        node.wait_ready()
        found = run_coopnode(
            "lookup", f"peer@127.0.0.1:{peer.port}", "--data-dir", str(node.data_dir)
        )
        by_url = run_coopnode("lookup", peer.actor_id, "--data-dir", str(node.data_dir))
        stats = peer.stats()
    finally:
        peer.stop()
        node.stop()

    assert found.returncode == 0, found.stderr + node.read_output()
    assert json.loads(found.stdout)["id"] == peer.actor_id
    assert by_url.returncode == 0, by_url.stderr
    assert stats["signed_fetches"], stats
    assert set(stats["signed_fetches"]) == {f"{node.base}/actors/coop#main-key"}
    assert stats["refused_fetches"] == 0
