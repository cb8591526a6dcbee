"""Offers between two real ``coopnode serve`` processes, from the command line: a new
follower imports what the other co-op already offers (with a progress bar), and finds
what it publishes next within seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServeProcess, admin_token, run_coopnode

pytestmark = pytest.mark.e2e


def offer(title: str) -> dict[str, object]:
    return {
        "title": {"en": title, "fr": "Pommes bio"},
        "categories": ["apples"],
        "price": {"amount": "3.50", "currency": "EUR"},
        "unit": "kg",
        "quantity": {"available": "40"},
        "location": {"name": "Lyon", "latitude": 45.764, "longitude": 4.8357},
        "claims": ["fair_trade"],
    }


def test_a_follower_imports_existing_offers_then_gets_new_ones(
    two_nodes: tuple[ServeProcess, ServeProcess], tmp_path: Path
) -> None:
    a, b = two_nodes
    token = admin_token(b)
    with httpx.Client(base_url=b.base, headers={"Authorization": f"Bearer {token}"}) as api:
        for n in range(120):
            response = api.post("/api/v1/offers", json=offer(f"Organic apples, crate {n}"))
            assert response.status_code == 201, response.text

    followed = run_coopnode("follow", f"coop@127.0.0.1:{b.port}", "--data-dir", str(a.data_dir))

    assert followed.returncode == 0, followed.stderr + a.read_output()
    assert "120 offers imported." in followed.stdout, followed.stdout + followed.stderr
    found = run_coopnode(
        "catalogue", "search", "pommes", "--limit", "100", "--data-dir", str(a.data_dir)
    )
    assert len(found.stdout.splitlines()) == 100

    new = tmp_path / "honey.json"
    new.write_text(json.dumps({**offer("Lavender honey"), "categories": ["honey"]}))
    published = run_coopnode("offers", "create", str(new), "--data-dir", str(b.data_dir))
    assert published.returncode == 0, published.stderr
    started = time.monotonic()
    while "Lavender honey" not in (
        hits := run_coopnode("catalogue", "search", "miel", "--data-dir", str(a.data_dir)).stdout
    ):
        assert time.monotonic() - started < 15, hits + a.read_output() + b.read_output()
        time.sleep(0.2)
    seconds = time.monotonic() - started
    assert seconds < 15

    key = published.stdout.split("\t")[0]
    withdrawn = run_coopnode("offers", "withdraw", key, "--data-dir", str(b.data_dir))
    assert withdrawn.returncode == 0, withdrawn.stderr
    deadline = time.monotonic() + 15
    while (
        "Lavender honey"
        in run_coopnode("catalogue", "search", "miel", "--data-dir", str(a.data_dir)).stdout
    ):
        assert time.monotonic() < deadline, a.read_output()
        time.sleep(0.2)
