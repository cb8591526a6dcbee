"""Two real ``coopnode serve`` processes on loopback ports find each other."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServeProcess, admin_token, run_coopnode, start_serve

pytestmark = pytest.mark.e2e


def test_a_new_data_dir_becomes_a_local_node_at_its_address(
    two_nodes: tuple[ServeProcess, ServeProcess],
) -> None:
    a, _ = two_nodes
    handle = f"coop@127.0.0.1:{a.port}"

    jrd = httpx.get(f"{a.base}/.well-known/webfinger", params={"resource": f"acct:{handle}"})
    actor = httpx.get(
        jrd.json()["links"][0]["href"], headers={"Accept": "application/activity+json"}
    )

    assert jrd.status_code == 200
    assert actor.json()["id"] == f"http://127.0.0.1:{a.port}/actors/coop"
    assert (a.data_dir / "coopnode.sqlite3").exists()


def test_each_node_resolves_the_other_over_http(
    two_nodes: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = two_nodes

    response = httpx.get(
        f"{a.base}/api/v1/lookup",
        params={"resource": f"acct:coop@127.0.0.1:{b.port}"},
        headers={"Authorization": f"Bearer {admin_token(a)}"},
        timeout=10,
    )
    from_b = run_coopnode("lookup", f"coop@127.0.0.1:{a.port}", "--data-dir", str(b.data_dir))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == f"http://127.0.0.1:{b.port}/actors/coop"
    assert from_b.returncode == 0, from_b.stderr
    assert f'"id": "http://127.0.0.1:{a.port}/actors/coop"' in from_b.stdout


def test_a_node_restarts_on_its_data_and_keeps_its_identity(tmp_path: Path) -> None:
    first = start_serve(tmp_path / "a")
    try:
        first.wait_ready()
        key = httpx.get(
            f"{first.base}/actors/coop", headers={"Accept": "application/activity+json"}
        ).json()["publicKey"]
    finally:
        first.stop()
    # Uvicorn re-raises SIGTERM after its graceful shutdown; the log shows it was clean.
    assert "Application shutdown complete" in first.read_output()
    again = start_serve(tmp_path / "a", first.port)
    try:
        again.wait_ready()
        actor = httpx.get(
            f"{again.base}/actors/coop", headers={"Accept": "application/activity+json"}
        ).json()
        assert actor["publicKey"] == key
        assert "Admin API token" not in again.read_output()
    finally:
        again.stop()
