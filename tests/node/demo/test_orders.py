"""The demo's orders between its co-ops, on its real nodes over HTTP: each ends in the
state the data file describes, on the buyer's side and on the seller's, and the one
left waiting is there for the food network's admin to answer when she logs in."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.demo.coops import DemoOrder, load_seed, offer_titled
from node.offers import store as offers_store
from node.orders import store as orders_store
from node.settings import DATABASE_FILE
from node.storage.database import Database
from tests.support.demo import DemoInfo, DemoLogin, DemoNodeInfo, login, start_demo

_ORDER = re.compile(r"^\s*order\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.+?)\s*$")


def member_login(info: DemoInfo, handle: str, username: str) -> DemoLogin:
    return next(x for x in info.logins if x.handle == handle and x.username == username)


def buyer_of(node: DemoNodeInfo, order: DemoOrder) -> str:
    return f"{node.base}actors/{order.member}"


def received_from(
    http: httpx.Client, node: DemoNodeInfo, admin: dict[str, str], buyer: str
) -> dict[str, Any]:
    received = http.get(
        node.base + "api/v1/orders", params={"received": "1"}, headers=admin
    ).json()["received"]
    [found] = [r for r in received if r["buyer"] == buyer]
    return dict(found)


def stock_at(data_dir: Path, uri: str) -> Decimal | None:
    """The stock the seller's node counts for its offer ``uri``, read from its
    database."""
    db = Database(f"sqlite:///{data_dir / DATABASE_FILE}", readers=1)
    try:

        def read(conn: Any) -> Decimal | None:
            shown = offers_store.shown_local(conn, uri)
            assert shown is not None
            return orders_store.stock_of(conn, shown.id)[0]

        return db.read_sync(read)
    finally:
        db.close()


@pytest.mark.e2e
def test_the_demos_orders_end_as_described_and_one_waits_for_the_food_admin() -> None:
    seed = load_seed()
    # The trades the demo shows: the tourism co-op's honey from the marketplace,
    # delivered; the marketplace's vegetables from the food network, accepted; its eggs,
    # waiting for the food network's admin.
    assert [(o.buyer, o.seller, o.state.value) for o in seed.orders] == [
        ("tourism", "marche", "fulfilled"),
        ("marche", "food", "accepted"),
        ("marche", "food", "pending"),
    ]
    demo = start_demo(None)
    try:
        info = demo.wait_ready()
        printed = [
            m.groups() for line in demo.read_output().splitlines() if (m := _ORDER.match(line))
        ]
        assert printed == [
            (o.seller, o.state.value, o.buyer, o.member, o.data["quantity"], o.offer)
            for o in seed.orders
        ]
        with httpx.Client(timeout=10) as http:
            admins = {h: login(http, n, info.login(h)) for h, n in info.nodes.items()}
            for order in seed.orders:
                buyer, seller = info.nodes[order.buyer], info.nodes[order.seller]
                member = login(http, buyer, member_login(info, order.buyer, order.member))
                # The member's own order, as she sees it at home.
                [mine] = http.get(buyer.base + "api/v1/orders", headers=member).json()["orders"]
                assert mine["state"] == order.state.value, mine
                assert mine["seller"] == seller.actor
                assert mine["buyer"] == buyer_of(buyer, order)
                position = offer_titled(seed.coop(order.seller), order.offer)
                assert position is not None
                titles = seed.coop(order.seller).offers[position]["title"].values()
                assert mine["offer"]["title"] in titles
                for field in ("quantity", "delivery", "payment", "note"):
                    assert mine[field] == order.data[field], field
                assert mine["answer"] == order.reply
                assert mine["currency"] == "EUR"
                # The same order at the seller's, for its admin.
                theirs = received_from(http, seller, admins[order.seller], mine["buyer"])
                assert theirs["state"] == order.state.value, theirs
                assert (theirs["quantity"], theirs["total"]) == (mine["quantity"], mine["total"])
                assert theirs["note"] == order.data["note"]
                if order.answers:
                    assert theirs["agreement"] == mine["agreement"]
                    assert theirs["agreement"].startswith(seller.base + "agreements/")
                # The quantity ordered is out of the seller's stock, for good or held.
                available = seed.coop(order.seller).offers[position]["quantity"]["available"]
                assert info.data_dir is not None
                assert stock_at(info.data_dir / order.seller, theirs["offer"]["uri"]) == Decimal(
                    available
                ) - Decimal(order.data["quantity"])

            marche, food, tourism = (info.nodes[h] for h in ("marche", "food", "tourism"))
            honey = received_from(http, marche, admins["marche"], f"{tourism.base}actors/marie")
            assert (honey["quantity"], honey["total"]) == ("12", "114.00")
            assert honey["actions"] == []

            # The food network's admin logs in and finds the eggs waiting for her answer;
            # she accepts, and the marketplace's member sees it.
            joao = f"{marche.base}actors/joao"
            eggs = received_from(http, food, admins["food"], joao)
            assert eggs["said"] == "waiting for your answer"
            assert eggs["actions"] == ["accept", "reject"]
            assert eggs["total"] == "42.00"
            accepted = http.post(
                f"{food.base}api/v1/orders/{eggs['key']}/accept",
                json={"note": "Avec les paniers. With the boxes."},
                headers=admins["food"],
            )
            assert accepted.status_code == 200, accepted.text
            member = login(http, marche, member_login(info, "marche", "joao"))
            deadline = time.monotonic() + 30
            while True:
                [mine] = http.get(marche.base + "api/v1/orders", headers=member).json()["orders"]
                if mine["state"] == "accepted":
                    break
                assert time.monotonic() < deadline, mine
                time.sleep(0.2)
            assert mine["answer"] == "Avec les paniers. With the boxes."
    finally:
        code = demo.stop()
    output = demo.read_output()
    assert code == 0, output
    assert "Traceback" not in output
