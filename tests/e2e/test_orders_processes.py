"""An order between two real ``coopnode serve`` processes over HTTP with real
signatures, answered from the seller's command line: the food network's member orders
the marketplace's honey, ``coopnode orders accept`` on the marketplace, and the member
sees the acceptance with the seller's note."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import ServeProcess, admin_token, run_coopnode, start_serve

pytestmark = pytest.mark.e2e

HONEY = {
    "title": {"fr": "Miel de lavande"},
    "categories": ["honey"],
    "price": {"amount": "8.50", "currency": "EUR"},
    "quantity": {"available": "40"},
    "delivery_options": ["pickup"],
}


@pytest.fixture
def started() -> Iterator[list[ServeProcess]]:
    processes: list[ServeProcess] = []
    yield processes
    for process in reversed(processes):
        process.stop()


def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def coopnode(*args: str) -> str:
    done = run_coopnode(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_an_order_between_two_processes_answered_from_the_command_line(
    tmp_path: Path, started: list[ServeProcess]
) -> None:
    market, food = start_serve(tmp_path / "market"), start_serve(tmp_path / "food")
    started += [market, food]
    market.wait_ready()
    food.wait_ready()
    food_admin = {"Authorization": f"Bearer {admin_token(food)}"}
    coopnode("follow", f"coop@127.0.0.1:{market.port}", "--data-dir", str(food.data_dir))
    (tmp_path / "honey.json").write_text(json.dumps(HONEY))
    created = coopnode(
        "offers", "create", str(tmp_path / "honey.json"), "--data-dir", str(market.data_dir)
    )
    uri = created.split()[1]

    def in_catalogue() -> bool:
        found = httpx.get(f"{food.base}/api/v1/catalogue", params={"q": "miel"}, headers=food_admin)
        return any(item["uri"] == uri for item in found.json()["items"])

    until(in_catalogue, "the offer in the food network's catalogue")
    added = httpx.post(
        f"{food.base}/api/v1/members",
        json={"username": "paula", "joined_at": "2026-01-01"},
        headers=food_admin,
    )
    assert added.status_code == 201, added.text
    token = httpx.post(
        f"{food.base}/api/v1/members/{added.json()['id']}/tokens", headers=food_admin
    )
    paula = {"Authorization": f"Bearer {token.json()['token']}"}

    placed = httpx.post(
        f"{food.base}/api/v1/orders",
        json={"offer": uri, "quantity": "6", "delivery": "pickup", "note": "Pour samedi"},
        headers=paula,
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["said"] == "waiting for the seller"

    def received() -> str | None:
        listed = coopnode("orders", "list", "--received", "--data-dir", str(market.data_dir))
        lines = [line for line in listed.splitlines() if "\tpending\t" in line]
        return lines[0].split("\t")[0] if lines else None

    key = until(received, "the order at the marketplace")
    shown = coopnode("orders", "show", key, "--data-dir", str(market.data_dir))
    assert "seller\tpending\t6 one\t51.00 EUR\tMiel de lavande" in shown
    assert "  note: Pour samedi" in shown
    assert "  next: accept, reject" in shown

    said = coopnode(
        "orders", "accept", key, "--note", "Samedi 10h", "--data-dir", str(market.data_dir)
    )
    assert said.strip() == f"{key}: accepted: to fulfil"

    def accepted() -> dict[str, Any] | None:
        mine = httpx.get(f"{food.base}/api/v1/orders/{placed.json()['key']}", headers=paula).json()
        return mine if mine["state"] == "accepted" else None

    mine = until(accepted, "the acceptance at the food network")
    assert mine["answer"] == "Samedi 10h"
    assert mine["total"] == "51.00"
    # Twice is refused, in words.
    again = run_coopnode("orders", "accept", key, "--data-dir", str(market.data_dir))
    assert again.returncode == 1
    assert "this order is accepted: it cannot be accepted now" in again.stderr
