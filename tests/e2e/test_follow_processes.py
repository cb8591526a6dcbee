"""Following between two real ``coopnode serve`` processes, from the command line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServeProcess, run_coopnode, start_serve

pytestmark = pytest.mark.e2e


def test_coopnode_follow_waits_for_the_accept(two_nodes: tuple[ServeProcess, ServeProcess]) -> None:
    a, b = two_nodes

    followed = run_coopnode("follow", f"coop@127.0.0.1:{b.port}", "--data-dir", str(a.data_dir))
    following = run_coopnode("following", "--data-dir", str(a.data_dir))
    followers = run_coopnode("followers", "list", "--data-dir", str(b.data_dir))
    collection = httpx.get(
        f"{b.base}/actors/coop/followers", headers={"Accept": "application/activity+json"}
    ).json()

    assert followed.returncode == 0, followed.stderr + a.read_output()
    assert "accepted" in followed.stdout, followed.stdout + a.read_output() + b.read_output()
    assert following.stdout.startswith("accepted\t")
    assert f"http://127.0.0.1:{a.port}/actors/coop" in followers.stdout
    assert collection["totalItems"] == 1
    deliveries = run_coopnode("deliveries", "--data-dir", str(b.data_dir))
    assert "1 delivered" in deliveries.stdout


def test_a_blocked_domain_is_refused_at_the_inbox(tmp_path: Path) -> None:
    import time

    a = start_serve(tmp_path / "a")
    b = start_serve(tmp_path / "b")
    try:
        a.wait_ready()
        b.wait_ready()
        b.stop()
        blocked = run_coopnode("domains", "block", "127.0.0.1", "--data-dir", str(b.data_dir))
        assert blocked.returncode == 0, blocked.stderr
        b = start_serve(b.data_dir, b.port)
        b.wait_ready()

        followed = run_coopnode(
            "follow", f"coop@127.0.0.1:{b.port}", "--wait", "0", "--data-dir", str(a.data_dir)
        )
        assert followed.returncode == 0, followed.stderr
        deadline = time.monotonic() + 15
        while "1 failed" not in (
            summary := run_coopnode("deliveries", "--data-dir", str(a.data_dir)).stdout
        ):
            assert time.monotonic() < deadline, summary + a.read_output()
            time.sleep(0.5)
        followers = run_coopnode("followers", "list", "--data-dir", str(b.data_dir))
        domains = run_coopnode("domains", "list", "--data-dir", str(b.data_dir))
    finally:
        a.stop()
        b.stop()

    assert followers.stdout == "No one follows the co-op yet.\n"  # the refused follow left none
    assert domains.stdout.startswith("127.0.0.1\tblocked")
